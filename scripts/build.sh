#!/usr/bin/env bash
# Builds the worker (build/) with the project-local tools from scripts/setup.sh.
# Nothing is downloaded: wasm-bindgen comes from .tools/, esbuild and wasm-opt
# from node_modules/.
#
# These are the steps of `worker-build` 0.8.7 in its default mode, done here
# so that no machine has to `cargo install` that tool (minutes on a cold one):
#   1. cargo builds the crate for wasm32-unknown-unknown (release: panic=abort);
#   2. wasm-bindgen writes the JS glue (index.js) and the module
#      (index_bg.wasm), with the reset and abort hooks the shim needs;
#   3. esbuild bundles scripts/worker-shim.js (the entry points and the
#      recovery after a wasm trap; see there) with the glue into one module;
#   4. wasm-opt strips the function-name section.
# Output: build/index.js, build/index_bg.wasm and build/worker/shim.mjs (it
# only re-exports ../index.js; wrangler.toml's `main`, the tests and the
# benches start there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WASM_BINDGEN="$ROOT/.tools/bin/wasm-bindgen"
ESBUILD="$ROOT/node_modules/.bin/esbuild"
WASM_OPT="$ROOT/node_modules/.bin/wasm-opt"
for tool in "$WASM_BINDGEN" "$ESBUILD" "$WASM_OPT"; do
  [ -x "$tool" ] || { echo "[build] $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done
# Skip the rebuild when no input changed since the last build.
stamp=build/.hubgate-inputs
inputs=$( (cat Cargo.toml Cargo.lock scripts/build.sh scripts/worker-shim.js; find src -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f build/worker/shim.mjs ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  echo "[build] worker is up to date" >&2
  exit 0
fi

echo "[build] cargo build --release --target wasm32-unknown-unknown" >&2
# As worker-build does: wasm-bindgen's macros then turn async exports (the
# fetch handler, the Durable Object's methods) into promises with js-sys's
# futures support instead of wasm-bindgen-futures'. (The macros read it when
# they expand; cargo does not track it, so every wasm build here sets it.
# On this crate, checked with wasm-bindgen 0.2.130, the module is the same
# either way.)
WASM_BINDGEN_USE_JS_SYS=1 cargo build --lib --release --target wasm32-unknown-unknown

mkdir -p build
stage=$(mktemp -d build/.stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
echo "[build] wasm-bindgen" >&2
# --target module: the glue imports the wasm as an ES module.
# --experimental-reset-state-function: exports __wbg_reset_state, which
#   replaces the wasm instance (the shim calls it after a trap).
# --force-enable-abort-handler: the glue catches a trap at every call into
#   wasm, marks the instance dead and calls the `worker` crate's abort hook,
#   which schedules that reset.
"$WASM_BINDGEN" "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/hubgate.wasm" \
  --out-dir "$stage" --out-name index --target module --no-typescript \
  --experimental-reset-state-function --force-enable-abort-handler

# The shim spells out what it wires (a fetch handler, the OneTime class); stop
# here if the glue exports anything else, e.g. after a new `#[event(...)]` or
# `#[durable_object]` (wire it in scripts/worker-shim.js, then list it here).
# The three other classes belong to the `worker` crate's API, not entry points.
expected='class ContainerStartupOptions
class MinifyConfig
class OneTime
class R2Range
function __wbg_reset_state
function __worker_init_state
function fetch'
actual=$(grep -E '^export ' "$stage/index.js" | sed -E 's/^export (async )?(function|class) +([A-Za-z0-9_$]+).*/\2 \3/' | LC_ALL=C sort)
if [ "$actual" != "$expected" ]; then
  echo "[build] wasm-bindgen's exports are not the ones scripts/worker-shim.js wires:" >&2
  diff <(echo "$expected") <(echo "$actual") >&2 || true
  exit 1
fi

echo "[build] esbuild" >&2
cp scripts/worker-shim.js "$stage/shim.js"
(cd "$stage" && "$ESBUILD" ./shim.js --bundle --format=esm --minify \
  --external:./index_bg.wasm '--external:cloudflare:*' \
  --outfile=index.js --allow-overwrite --log-level=warning)
# The glue loads the wasm with a source-phase import (`import source m from
# "./index_bg.wasm"`, a WebAssembly.Module); workerd, given the .wasm as a
# compiled-wasm module, answers a plain default import with that same
# WebAssembly.Module, so the import becomes a plain one (as worker-build does).
[ "$(grep -o 'import source [A-Za-z0-9_$]* *from *"./index_bg.wasm"' "$stage/index.js" | wc -l)" -eq 1 ] ||
  { echo "[build] the bundle does not import ./index_bg.wasm once by \`import source\`" >&2; exit 1; }
sed -i 's/import source \([A-Za-z0-9_$]* *from *"\.\/index_bg\.wasm"\)/import \1/' "$stage/index.js"

# The function-name section is a third of the module and only serves stack
# traces; strip it (no optimisation passes: -Oz saved little gzipped, see README).
"$WASM_OPT" --all-features --strip-debug --strip-producers "$stage/index_bg.wasm" -o "$stage/index_bg.stripped.wasm" >/dev/null

mkdir -p build/worker
mv "$stage/index_bg.stripped.wasm" build/index_bg.wasm
mv "$stage/index.js" build/index.js
cat > build/worker/shim.mjs <<'EOF'
// The worker's entry (wrangler.toml `main`); the bundle is ../index.js.
export * from "../index.js";
export { default } from "../index.js";
EOF
echo "$inputs" > "$stamp"
wasm=build/index_bg.wasm
raw=$(wc -c < "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "[build] $(basename "$wasm"): $raw bytes raw, $gz bytes gzipped" >&2

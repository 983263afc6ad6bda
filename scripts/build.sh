#!/usr/bin/env bash
# Builds the worker (build/) with the project-local tools from scripts/setup.sh.
# Nothing is downloaded: wasm-bindgen comes from .tools/, esbuild and wasm-opt
# from node_modules/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.tools/bin:$PATH"
export WASM_BINDGEN_BIN="$ROOT/.tools/bin/wasm-bindgen"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
# Skip the rebuild when no input changed since the last build.
stamp=build/.hubgate-inputs
inputs=$( (cat Cargo.toml Cargo.lock; find src -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f build/worker/shim.mjs ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  echo "[build] worker is up to date" >&2
  exit 0
fi
echo "[build] worker-build --release" >&2
worker-build --release
wasm=$(ls build/*.wasm | head -n1)
# The function-name section is a third of the module and only serves stack
# traces; strip it (no optimisation passes: -Oz saved little gzipped, see README).
"$WASM_OPT_BIN" --all-features --strip-debug --strip-producers "$wasm" -o "$wasm.stripped" >/dev/null
mv "$wasm.stripped" "$wasm"
echo "$inputs" > "$stamp"
raw=$(wc -c < "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "[build] $(basename "$wasm"): $raw bytes raw, $gz bytes gzipped" >&2

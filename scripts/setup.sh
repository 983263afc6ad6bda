#!/usr/bin/env bash
# Installs every tool the build and the tests need into project-local,
# git-ignored folders. Idempotent: a second run only checks versions.
# Nothing here downloads a binary from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS="$ROOT/.tools"
# Must equal the `wasm-bindgen` pinned by the `worker` crate in Cargo.toml.
WASM_BINDGEN_VERSION=0.2.130
WORKER_BUILD_VERSION=0.8.7

mkdir -p "$TOOLS"
log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# Cargo-installed tools live in a per-user cache keyed by tool and version (as
# cargo keeps its registry), so a fresh clone on a machine that has built
# hubgate before links them instead of spending minutes rebuilding them.
TOOL_CACHE="${HUBGATE_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hubgate/tools}"
cargo_tool() { # crate version binary
  local crate=$1 version=$2 bin=$3
  local root="$TOOL_CACHE/$crate-$version"
  if ! { [ -x "$root/bin/$bin" ] && "$root/bin/$bin" --version 2>/dev/null | grep -q "$version"; }; then
    log "cargo install $crate $version into $root (several minutes on a cold machine)"
    # Without --locked: the published lock files of these tools do not build with
    # the current toolchain (checked on these machines).
    cargo install "$crate" --version "$version" --root "$root.partial" --quiet
    rm -rf "$root" && mv "$root.partial" "$root"
  fi
  mkdir -p "$TOOLS/bin"
  ln -sfn "$root/bin/$bin" "$TOOLS/bin/$bin"
}
cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build

# npm: reinstall only when package-lock.json changed since the last install.
stamp="$ROOT/node_modules/.hubgate-lock-stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" package-lock.json; then
  log "npm ci"
  WRANGLER_SEND_METRICS=false npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
# The LTI 1.3 platform peer of the e2e tests (PyPI lti1p3platform), pinned,
# in its own venv; reinstalled only when its requirements (or Python) change.
LTIVENV="$TOOLS/ltivenv"
LTIREQ="$ROOT/tests/e2e/support/lti-platform-requirements.txt"
[ -x "$LTIVENV/bin/python" ] || { log "creating $LTIVENV"; python3 -m venv "$LTIVENV"; }
lti_want="$( { sha256sum "$LTIREQ" | cut -d' ' -f1; "$LTIVENV/bin/python" -V; } | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$LTIVENV/.hubgate-stamp" 2>/dev/null || true)" != "$lti_want" ]; then
  log "pip install the LTI platform peer (lti1p3platform)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$LTIVENV/bin/python" -m pip install -q -r "$LTIREQ"
  echo "$lti_want" > "$LTIVENV/.hubgate-stamp"
fi
log "tools ready in .tools/ and node_modules/"

#!/usr/bin/env bash
# Installs every tool the build and the tests need into project-local,
# git-ignored folders. Idempotent: a second run only checks versions.
# Nothing here downloads a binary from outside the package registries.
#
#   bash scripts/setup.sh          # everything
#   bash scripts/setup.sh tools    # only the cargo-installed tool, wasm-bindgen
#                                  # (the slow part on a cold machine: `npm test`
#                                  # runs it in the background beside the native
#                                  # checks)
#   bash scripts/setup.sh base     # everything but that tool
set -euo pipefail
PART="${1:-all}"
case "$PART" in all|tools|base) ;; *) echo "usage: setup.sh [all|tools|base]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS="$ROOT/.tools"
# Must equal the `wasm-bindgen` pinned by the `worker` crate in Cargo.toml.
# (No `worker-build`: scripts/build.sh does its steps with this CLI, esbuild
# and wasm-opt, and so saves a second `cargo install` of minutes.)
WASM_BINDGEN_VERSION=0.2.130

mkdir -p "$TOOLS"
log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$PART" != tools ] && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
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
    log "cargo install $crate $version into $root (minutes on a cold machine)"
    # Without --locked: the published lock files of these tools do not build with
    # the current toolchain (checked on these machines). Optimisation level 1:
    # these tools run for about a second per build, and -O1 halves their
    # compile time on a cold machine (README, "Test time").
    rm -rf "$root.partial"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_LTO=false \
      cargo install "$crate" --version "$version" --root "$root.partial" --quiet
    rm -rf "$root" && mv "$root.partial" "$root"
  fi
  mkdir -p "$TOOLS/bin"
  ln -sfn "$root/bin/$bin" "$TOOLS/bin/$bin"
}
if [ "$PART" != base ]; then
  cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
  [ "$PART" = tools ] && { log "cargo tools ready in .tools/bin"; exit 0; }
fi

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

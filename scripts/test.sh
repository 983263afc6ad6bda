#!/usr/bin/env bash
# `npm test`: install what is missing, build, run every suite.
#
# On a cold machine most of the time is compiling (the cargo-installed
# wasm-bindgen CLI, then this crate four ways) and pip/npm installs; on 2
# cores the installs run in the background beside the native checks, which
# need neither. Background steps write to a log that is shown when they are
# joined, and a failed one stops the run with its log.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
start=$(date +%s)
LOGS=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$LOGS"' EXIT
step() { echo "== $* ($(( $(date +%s) - start )) s)" >&2; }
background() { # name command...
  local name=$1; shift
  ( "$@" ) >"$LOGS/$name.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$LOGS/$name.pid"
}
join() { # name
  local name=$1
  if ! wait "$(cat "$LOGS/$name.pid")"; then
    echo "== $name failed:" >&2
    cat "$LOGS/$name.log" >&2
    exit 1
  fi
  cat "$LOGS/$name.log" >&2
}

background tools bash scripts/setup.sh tools
background python bash -c 'bash scripts/setup-jupyterhub.sh && bash hub/run_tests.sh --collect-only -q >/dev/null'
# Debian's chromium for the real-browser suite (apt-get as root when missing;
# otherwise it fails with the command that installs it; never skipped).
background browser bash -c 'bash scripts/setup-browser.sh >/dev/null'
bash scripts/setup.sh base

step "cargo fmt --check, layering, clippy (native, native with eddsa, wasm32)"
cargo fmt --check
node scripts/check-layers.mjs
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --all-targets --features eddsa -- -D warnings
cargo clippy --quiet --target wasm32-unknown-unknown -- -D warnings
step "cargo test (core, native)"
cargo test --quiet
# The opt-in EdDSA code (README, "Size"): the suites that exercise it.
cargo test --quiet --features eddsa --test jwks_cache --test config_and_assertion --test fuzz_regressions

join tools
step "build the worker"
bash scripts/build.sh
step "examples: hubgate-check and wrangler deploy --dry-run of each (examples/*)"
bash scripts/check-examples.sh
join python
step "hub-side authenticator (pytest) beside the end-to-end suite in workerd (node:test)"
# pytest is one process; the e2e files run two at a time (each starts its own
# servers on free loopback ports).
background pytest bash hub/run_tests.sh -q
node --test --test-concurrency=2 tests/e2e/
join pytest
join browser
step "real-browser suite (Chromium: the LMS frame, a real JupyterHub)"
# After the others, alone: beside the e2e files on two cores its waits for a
# page in the frame ran past their limits (tried: one of 17 timed out), and a
# suite that fails by load is worse than 2 minutes.
node --test tests/browser/
step "all suites passed"

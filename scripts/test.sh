#!/usr/bin/env bash
# `npm test`: install what is missing, build, run every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
start=$(date +%s)
bash scripts/setup.sh
bash scripts/setup-jupyterhub.sh
echo "== cargo fmt --check, clippy (native and wasm32)" >&2
cargo fmt --check
node scripts/check-layers.mjs
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --target wasm32-unknown-unknown -- -D warnings
echo "== cargo test (core, native)" >&2
cargo test --quiet
bash scripts/build.sh
echo "== hub-side authenticator (pytest)" >&2
bash hub/run_tests.sh -q
echo "== end-to-end in workerd (node:test)" >&2
# Two files at a time: each suite starts its own servers on free loopback
# ports, and the 2-core machines finish in about 95 s instead of 150 s.
node --test --test-concurrency=2 tests/e2e/
echo "== all suites passed in $(( $(date +%s) - start )) s" >&2

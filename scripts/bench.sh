#!/usr/bin/env bash
# `npm run bench`: figures, not assertions. Wasm size, core CPU per operation
# natively, and proxy overhead in workerd against a bare pass-through worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
echo "== wasm size"
wasm=build/index_bg.wasm
echo "$(basename "$wasm"): $(wc -c < "$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzipped"
echo "== core, native (release)"
cargo run --quiet --release --example core_bench
echo "== LTI launch validation, native (release)"
cargo run --quiet --release --example lti_bench
echo "== LTI launches in workerd against lti1p3platform (time per launch, JWKS fetch count)"
HUBGATE_LTI_BULK="${HUBGATE_LTI_BULK:-1000}" node --test --test-concurrency=1 --test-name-pattern="launches fetch the platform JWKS" tests/e2e/lti.test.mjs 2>&1 | grep -E "\[lti bench\]|^# (pass|fail)"
echo "== wasm size per crate (twiggy on the unstripped module; README, \"Size\")"
bash scripts/size-by-crate.sh
echo "== workerd: cold start, per-request latency and CPU against a bare worker, upstream and storage counts per 10,000"
node bench/workerd-cost.mjs
echo "== side by side: hubgate against ltiauthenticator and OAuthenticator inside JupyterHub, without and with injected latency"
bash scripts/setup-jupyterhub.sh
bash scripts/setup-anchors.sh
node bench/side-by-side.mjs

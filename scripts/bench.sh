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
echo "== proxy overhead in workerd"
node bench/proxy-overhead.mjs

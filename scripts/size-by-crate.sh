#!/usr/bin/env bash
# What each crate costs in the worker's wasm: a release wasm32 build run
# through wasm-bindgen but not stripped (twiggy needs the name section), then
# `twiggy top`'s shallow sizes summed per crate (the leading path segment of
# each demangled symbol). twiggy is cargo-installed once into the per-user
# tool cache, like the build tools (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TWIGGY_VERSION=0.7.0
TOOL_CACHE="${HUBGATE_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hubgate/tools}"
twiggy="$TOOL_CACHE/twiggy-$TWIGGY_VERSION/bin/twiggy"
if ! [ -x "$twiggy" ]; then
  echo "[size] cargo install twiggy $TWIGGY_VERSION into $TOOL_CACHE (once)" >&2
  rm -rf "$TOOL_CACHE/twiggy-$TWIGGY_VERSION.partial"
  cargo install twiggy --version "$TWIGGY_VERSION" --root "$TOOL_CACHE/twiggy-$TWIGGY_VERSION.partial" --quiet
  mv "$TOOL_CACHE/twiggy-$TWIGGY_VERSION.partial" "$TOOL_CACHE/twiggy-$TWIGGY_VERSION"
fi
cargo build --quiet --release --lib --target wasm32-unknown-unknown
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$ROOT/.tools/bin/wasm-bindgen" --target bundler --out-dir "$out" --keep-debug \
  target/wasm32-unknown-unknown/release/hubgate.wasm
"$twiggy" top -n 100000 -f csv "$out/hubgate_bg.wasm" > "$out/top.csv"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").slice(1);
const by = new Map();
let total = 0;
for (const line of rows) {
  const m = line.match(/^(.*),(\d+),([\d.]+),([\d.]*),([\d.]*)$/);
  if (!m) continue;
  let name = m[1].replace(/^"|"$/g, "");
  const size = Number(m[2]);
  total += size;
  let crate = "(other: tables, glue)";
  const sym = name.replace(/^<+/, "").replace(/^(impl |dyn )/, "").replace(/\[[0-9a-f]+\]/g, "");
  const c = sym.match(/^([a-z_][a-z0-9_]*)::/);
  if (/function names/.test(name)) crate = "(name section: stripped by the build)";
  if (c) crate = c[1];
  else if (/function names/.test(name)) {}
  else if (/^data\[/.test(name)) crate = "(data segments)";
  by.set(crate, (by.get(crate) ?? 0) + size);
}
const list = [...by].sort((a, b) => b[1] - a[1]).slice(0, 20);
console.log(`unstripped module ${total} bytes; shallow size per crate (top 20):`);
for (const [k, v] of list) console.log(`  ${k.padEnd(32)} ${String(v).padStart(9)}  ${(100 * v / total).toFixed(1)}%`);
' "$out/top.csv"

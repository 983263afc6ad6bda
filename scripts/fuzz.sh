#!/usr/bin/env bash
# Fuzzes every parser that sees bytes a browser, an LMS or an upstream sends
# (fuzz/: one cargo-fuzz target each, invariants in fuzz/src/checks/), each
# for a bounded time, and prints per target: executions, execs/s, corpus
# size, crashes.
#
#   bash scripts/fuzz.sh                 # every target, FUZZ_SECONDS each
#   bash scripts/fuzz.sh jwt request     # only these
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh
#
# Environment:
#   FUZZ_SECONDS    time per target (default 180)
#   FUZZ_TOLERATE   comma-separated finding ids (the `[id]` a check panics
#                   with) to look past: findings already reported, whose
#                   reproducers are committed (default: none; e.g.
#                   FUZZ_TOLERATE=json-array). `cargo test` never does.
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default none: the code is safe Rust
#                   and the invariants are logic, so speed wins; `address`
#                   for ASan)
#
# Seeds are committed under fuzz/corpus/<target>/; what the fuzzer finds is
# kept in fuzz/.work/corpus/<target>/ (git-ignored, reused by the next run).
# A crash reproducer lands in fuzz/artifacts/<target>/: commit it, and
# tests/fuzz_regressions.rs replays it under `cargo test` from then on.
# Exit status 1 when any target crashed.
#
# cargo-fuzz's nightly-only flags run on the stable toolchain with
# RUSTC_BOOTSTRAP=1 (DESIGN.md, build facts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${FUZZ_SECONDS:-180}
SANITIZER=${FUZZ_SANITIZER:-none}
export RUSTC_BOOTSTRAP=1
export HUBGATE_FUZZ_TOLERATE=${FUZZ_TOLERATE-}

log() { printf '[fuzz] %s\n' "$*" >&2; }

# The same per-user tool cache as scripts/setup.sh: keyed by tool and version.
TOOL_CACHE="${HUBGATE_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hubgate/tools}"
FUZZ_ROOT="$TOOL_CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION"
CARGO_FUZZ="$FUZZ_ROOT/bin/cargo-fuzz"
if ! { [ -x "$CARGO_FUZZ" ] && "$CARGO_FUZZ" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; }; then
  log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION into $FUZZ_ROOT (a few minutes on a cold machine)"
  rm -rf "$FUZZ_ROOT.partial"
  if ! cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$FUZZ_ROOT.partial" --quiet; then
    log "--locked failed; installing without it"
    rm -rf "$FUZZ_ROOT.partial"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$FUZZ_ROOT.partial" --quiet
  fi
  rm -rf "$FUZZ_ROOT" && mv "$FUZZ_ROOT.partial" "$FUZZ_ROOT"
fi
fuzz() { "$CARGO_FUZZ" fuzz "$@"; }

# Every target, in the order of fuzz/src/checks/mod.rs, with its -max_len:
# enough for the largest realistic input (key sets and whole requests with
# several upstream answers are the big ones).
ALL_TARGETS=(
  bindings:8192
  request_cookies:4096
  session_cookie:8192
  flow_cookie:4096
  jwt:4096
  jwks:16384
  discovery:4096
  token_response:4096
  userinfo:4096
  form:4096
  redirect_targets:1024
  proxy_plan:4096
  request:16384
  lti_services:8192
  session_end:4096
)
if [ $# -gt 0 ]; then
  selected=()
  for want in "$@"; do
    found=""
    for t in "${ALL_TARGETS[@]}"; do [ "${t%%:*}" = "$want" ] && found=$t; done
    [ -n "$found" ] || { log "unknown target $want"; exit 2; }
    selected+=("$found")
  done
else
  selected=("${ALL_TARGETS[@]}")
fi

log "building the fuzz targets (sanitizer: $SANITIZER)"
fuzz build -O -a --sanitizer "$SANITIZER" >&2

WORK="$ROOT/fuzz/.work"
mkdir -p "$WORK/logs"
started=$(date +%s)
summary=()
total_execs=0
any_crash=0
for entry in "${selected[@]}"; do
  t=${entry%%:*}
  max_len=${entry##*:}
  corpus="$WORK/corpus/$t"
  artifacts="$ROOT/fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | sort)
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
  log "$t: ${SECONDS_PER_TARGET}s, -max_len=$max_len"
  t0=$(date +%s)
  set +e
  fuzz run -O -a --sanitizer "$SANITIZER" "$t" "$corpus" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" >"$WORK/logs/$t.log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - t0 ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/logs/$t.log" | awk '{s+=$2} END {print s+0}')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$WORK/logs/$t.log" | awk '{s+=$2} END {print s+0}')
  corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$WORK/logs/$t.log" | tail -1 | cut -d' ' -f2)
  new=$(comm -13 <(printf '%s\n' "$before") <(find "$artifacts" -type f | sort) | grep -c . || true)
  if [ "$new" -gt 0 ] || { [ "$rc" -ne 0 ] && grep -qE 'ERROR: libFuzzer|panicked|deadly signal' "$WORK/logs/$t.log"; }; then
    any_crash=1
    comm -13 <(printf '%s\n' "$before") <(find "$artifacts" -type f | sort) | sed "s|^$ROOT/|  new reproducer: |" >&2
    grep -m3 -E 'panicked at|ERROR: libFuzzer' "$WORK/logs/$t.log" | sed 's/^/  /' >&2 || true
  elif [ "$rc" -ne 0 ]; then
    log "$t: libFuzzer exited $rc without a reproducer; see $WORK/logs/$t.log"
    any_crash=1
  fi
  total_execs=$(( total_execs + execs ))
  summary+=("$(printf '%-17s %12s %10s %10s %8s %6ss' "$t" "$execs" "$rate" "${corp:-?}" "$new" "$elapsed")")
done

printf '\n%-17s %12s %10s %10s %8s %7s\n' target executions execs/s corpus crashes time
printf '%s\n' "${summary[@]}"
printf 'total: %s executions in %s s (logs in fuzz/.work/logs/)\n' "$total_execs" "$(( $(date +%s) - started ))"
if [ "$any_crash" -ne 0 ]; then
  log "crashes found: commit fuzz/artifacts/ and see tests/fuzz_regressions.rs"
  exit 1
fi

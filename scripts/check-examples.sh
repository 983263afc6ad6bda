#!/usr/bin/env bash
# Check every examples/*/wrangler.toml, the configurations operators copy:
#
#  1. the file itself: no secret is assigned in it, and every [vars] value
#     is a quoted string (the worker reads bindings only as strings, while
#     hubgate-check turns a bare number, boolean or table into text);
#  2. hubgate-check on it, with placeholder secrets in the environment: one
#     for each secret the example tells the operator to set (its
#     `wrangler secret put NAME` lines) and no binding from the caller's
#     environment, so a missing line fails. It must pass without warnings,
#     and an example named after a preset (or generic-oidc, lti) must
#     configure that login;
#  3. `wrangler deploy --dry-run --outdir` from the example's directory,
#     offline (no metrics, no error reports, no update check): exit 0, no
#     warning, and a bundle (script and wasm) in the outdir.
#
# One line per example; the first failure stops the run with the tool's
# output. The dry runs go CHECK_EXAMPLES_JOBS at a time (default: the
# number of CPUs). Needs the built worker (`npm run build`) and
# node_modules.
# Usage: bash scripts/check-examples.sh   (from any directory)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
START_NS=$(date +%s%N)

fail() {
    echo "check-examples: $*" >&2
    exit 1
}

[[ -f "$ROOT/build/worker/shim.mjs" && -f "$ROOT/build/index_bg.wasm" ]] ||
    fail "no built worker in $ROOT/build: run \`npm run build\` first"
[[ -x "$ROOT/node_modules/.bin/wrangler" ]] ||
    fail "wrangler is not installed in $ROOT/node_modules: run \`npm ci\` first"
shopt -s nullglob
EXAMPLES=("$ROOT"/examples/*/wrangler.toml)
shopt -u nullglob
((${#EXAMPLES[@]} > 0)) || fail "no examples/*/wrangler.toml"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hubgate-examples.XXXXXX")"
# .wrangler/ directories that wrangler creates in an example's directory
# (its temporary files always go there): removed on exit.
CREATED=()
cleanup() {
    local d
    # Dry runs still going (an interrupted run): stop and reap them first.
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    for d in "${CREATED[@]+"${CREATED[@]}"}"; do rm -rf "$d"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Placeholder secrets. The keys are made here, for this run only: an EC
# P-256 private JWK (ASSERTION_SIGNING_KEY) and an RSA tool key
# (LTI13_PRIVATE_KEY). The same node run seeds wrangler's update-check
# cache (in the TMPDIR wrangler gets below) with its own version, so no
# code path of wrangler asks the npm registry for a newer one.
mkdir -p "$WORK/tmp/update-check" "$WORK/logs"
node - "$WORK" "$ROOT/node_modules/wrangler/package.json" <<'EOF'
const fs = require("fs");
const crypto = require("crypto");
const [work, wranglerPkg] = process.argv.slice(2);
const ec = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
fs.writeFileSync(`${work}/assertion.jwk`,
    JSON.stringify({ ...ec.privateKey.export({ format: "jwk" }), kid: "check-examples" }));
const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
fs.writeFileSync(`${work}/lti.pem`, rsa.privateKey.export({ type: "pkcs8", format: "pem" }));
const { version } = JSON.parse(fs.readFileSync(wranglerPkg, "utf8"));
fs.writeFileSync(`${work}/tmp/update-check/wrangler-latest.json`,
    JSON.stringify({ latest: version, lastUpdate: Date.now() }));
EOF

placeholder() {
    case "$1" in
        ASSERTION_SIGNING_KEY | ASSERTION_SIGNING_KEY_PREVIOUS) cat "$WORK/assertion.jwk" ;;
        LTI13_PRIVATE_KEY) cat "$WORK/lti.pem" ;;
        *) printf 'placeholder-%s-0123456789abcdefghijklmnopqrstuvwxyz' "$1" ;;
    esac
}

# What hubgate-check may see of the caller's environment: enough for cargo
# to run the already-built CLI, and no binding.
KEEP_ENV=()
for v in $(compgen -e); do
    case "$v" in
        PATH | HOME | USER | LOGNAME | SHELL | TERM | LANG | LC_* | CARGO* | RUSTUP* | RUSTC* | RUSTFLAGS | RUSTDOCFLAGS)
            KEEP_ENV+=("$v=${!v}") ;;
    esac
done

SECRET_NAMES='SESSION_SECRET|SESSION_SECRET_PREVIOUS|OAUTH_CLIENT_SECRET|ASSERTION_SIGNING_KEY|ASSERTION_SIGNING_KEY_PREVIOUS|LTI13_PRIVATE_KEY|LTI13_SERVICE_SECRET|LTI13_REGISTRATION_SECRET'

strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

# Steps 1 and 2, one example after the other (a fraction of a second each).
declare -A LOGIN
for toml in "${EXAMPLES[@]}"; do
    dir="$(dirname "$toml")"
    name="$(basename "$dir")"
    rel="examples/$name/wrangler.toml"

    # 1. The file.
    if grep -nE "^[[:space:]]*($SECRET_NAMES)[[:space:]]*=" "$toml" >"$WORK/found"; then
        echo "FAIL $name: $rel assigns a secret (set it with \`wrangler secret put\`):" >&2
        cat "$WORK/found" >&2
        exit 1
    fi
    if awk '
        /^[[:space:]]*\[/ { in_vars = ($0 ~ /^[[:space:]]*\[vars\][[:space:]]*(#.*)?$/); next }
        in_vars && /^[[:space:]]*[A-Za-z0-9_]+[[:space:]]*=/ {
            v = $0; sub(/^[^=]*=[[:space:]]*/, "", v)
            if (v !~ /^["\047]/) { print NR ": " $0; bad = 1 }
        }
        END { exit bad ? 0 : 1 }' "$toml" >"$WORK/found"; then
        echo "FAIL $name: $rel has [vars] values that are not strings (the worker ignores them; quote them):" >&2
        cat "$WORK/found" >&2
        exit 1
    fi

    # 2. hubgate-check, with a placeholder for each secret the example names.
    secrets=()
    while read -r s; do
        secrets+=("$s=$(placeholder "$s")")
    done < <(grep -oE 'wrangler secret put [A-Z0-9_]+' "$toml" | awk '{ print $4 }' | sort -u)
    if ! (cd "$ROOT" && env -i "${KEEP_ENV[@]}" "${secrets[@]+"${secrets[@]}"}" \
        cargo run --quiet --bin hubgate-check -- "$toml") >"$WORK/check.json" 2>"$WORK/check.err"; then
        echo "FAIL $name: hubgate-check $rel" >&2
        cat "$WORK/check.err" "$WORK/check.json" >&2
        exit 1
    fi
    if grep -q '^warning:' "$WORK/check.err"; then
        echo "FAIL $name: hubgate-check $rel passes with warnings (an example should have none):" >&2
        cat "$WORK/check.err" >&2
        exit 1
    fi
    if ! LOGIN[$name]="$(node - "$name" "$WORK/check.json" <<'EOF'
const fs = require("fs");
const [name, file] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(file, "utf8")).login_methods;
const parts = [];
if (m.oauth) parts.push(`oauth ${m.oauth.provider}${m.oauth.oidc_issuer ? " (OIDC)" : ""}`);
if (m.oauth_providers.length) parts.push(`+${m.oauth_providers.length} providers`);
if (m.lti13) parts.push(`lti13 (${m.lti13.platforms.length} platform${m.lti13.platforms.length === 1 ? "" : "s"})`);
const presets = ["github", "gitlab", "google", "azuread", "auth0", "cilogon", "keycloak"];
const ok =
    presets.includes(name) ? m.oauth?.provider === name :
    name === "generic-oidc" ? m.oauth?.provider === "generic" && !!m.oauth.oidc_issuer :
    name === "lti" ? !!m.lti13 : true;
console.log(parts.join(", "));
process.exit(ok ? 0 : 1);
EOF
)"; then
        echo "FAIL $name: $rel configures \"${LOGIN[$name]}\", not what its directory name says" >&2
        exit 1
    fi
done

# 3. wrangler deploy --dry-run, from each example's directory, JOBS at a
# time (bundling is most of the run's time). Offline: --dry-run needs no
# login; metrics and error reports are off; the banner is hidden because
# printing it asks the npm registry for wrangler's latest version (other
# paths that ask, such as a warning about unknown fields, find the cache
# seeded above); CLOUDFLARE_ENV would pick an [env.*] the examples lack.
JOBS="${CHECK_EXAMPLES_JOBS:-$(nproc 2>/dev/null || echo 2)}"
dry_run() {
    local dir="$1" name="$2" rc=0
    (cd "$dir" && env -u CLOUDFLARE_ENV \
        WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false \
        WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$WORK/logs" TMPDIR="$WORK/tmp" \
        CI=true \
        npx --no-install wrangler deploy --dry-run --outdir "$WORK/bundle-$name") \
        >"$WORK/wrangler-$name.log" 2>&1 || rc=$?
    echo "$rc" >"$WORK/wrangler-$name.rc"
}
running=0
for toml in "${EXAMPLES[@]}"; do
    dir="$(dirname "$toml")"
    [[ -e "$dir/.wrangler" ]] || CREATED+=("$dir/.wrangler")
    if ((running >= JOBS)); then
        wait -n
        running=$((running - 1))
    fi
    dry_run "$dir" "$(basename "$dir")" &
    running=$((running + 1))
done
wait

# Results, in order: the first failure stops with wrangler's output.
count=0
for toml in "${EXAMPLES[@]}"; do
    name="$(basename "$(dirname "$toml")")"
    log="$WORK/wrangler-$name.log"
    out="$WORK/bundle-$name"
    if [[ "$(cat "$WORK/wrangler-$name.rc")" != 0 ]]; then
        echo "FAIL $name: wrangler deploy --dry-run in examples/$name" >&2
        strip_ansi <"$log" >&2
        exit 1
    fi
    if strip_ansi <"$log" | grep -qE '\[WARNING\]|\[ERROR\]'; then
        echo "FAIL $name: wrangler deploy --dry-run in examples/$name warns:" >&2
        strip_ansi <"$log" >&2
        exit 1
    fi
    js=0 wasm=0
    for f in "$out"/*; do
        [[ -f "$f" ]] || continue
        size=$(wc -c <"$f")
        case "$f" in
            *.js | *.mjs) js=$((js + size)) ;;
            *.wasm) wasm=$((wasm + size)) ;;
        esac
    done
    if ((js == 0 || wasm == 0)); then
        echo "FAIL $name: wrangler left no bundle (script and wasm) in its outdir:" >&2
        ls -la "$out" >&2 || true
        strip_ansi <"$log" >&2
        exit 1
    fi
    gzip="$(strip_ansi <"$log" | sed -n 's/.*gzip: *\([0-9.]* [KMG]*i*B\).*/\1/p' | head -n 1)"
    printf 'ok    %-13s %-22s bundle %s KiB (script %s KiB + wasm %s KiB; gzip %s)\n' \
        "$name" "${LOGIN[$name]}" "$(kib $((js + wasm)))" "$(kib "$js")" "$(kib "$wasm")" "${gzip:-?}"
    count=$((count + 1))
done

elapsed=$(awk -v ns=$(($(date +%s%N) - START_NS)) 'BEGIN { printf "%.1f", ns / 1e9 }')
echo "$count examples passed in ${elapsed}s"

#!/usr/bin/env bash
# The browser for the real-browser suite (tests/browser/): Debian's `chromium`,
# driven by npm `playwright-core` (a devDependency, installed by `npm ci`)
# through `executablePath`. Playwright's own browser download is never used
# (it fetches from outside the package registries).
#
# Idempotent: a chromium already on the PATH (or at /usr/bin/chromium) is used
# as is (about 10 ms). Otherwise, as root, `apt-get install -y chromium`
# (with `apt-get update` first only when apt does not know the package yet).
# When it cannot install, it exits 1 with the command to run.
#
# Prints the path of the browser on stdout. HUBGATE_CHROMIUM=/path overrides.
set -euo pipefail

find_chromium() {
  if [[ -n "${HUBGATE_CHROMIUM:-}" ]]; then
    [[ -x "$HUBGATE_CHROMIUM" ]] && { echo "$HUBGATE_CHROMIUM"; return 0; }
    echo "setup-browser: HUBGATE_CHROMIUM=$HUBGATE_CHROMIUM is not an executable" >&2
    return 1
  fi
  local c
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  if [[ -x /usr/bin/chromium ]]; then
    echo /usr/bin/chromium
    return 0
  fi
  return 1
}

if path=$(find_chromium); then
  echo "$path"
  exit 0
fi
if [[ -n "${HUBGATE_CHROMIUM:-}" ]]; then
  exit 1
fi

INSTALL_CMD="sudo apt-get update && sudo apt-get install -y chromium"
if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: chromium not found on the PATH nor at /usr/bin/chromium." >&2
  echo "setup-browser: install it with:  $INSTALL_CMD" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup-browser: installing Debian's chromium (apt-get install -y chromium) ..." >&2
# apt-get update only when apt has no candidate for chromium yet.
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq >&2 || true
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get install -y -qq --no-install-recommends chromium >"$log" 2>&1; then
  # a stale package list (404 on a superseded .deb) is fixed by an update
  apt-get update -qq >&2 || true
  if ! apt-get install -y -qq --no-install-recommends chromium >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "setup-browser: apt-get install failed; run:  apt-get update && apt-get install -y chromium" >&2
    exit 1
  fi
fi
if path=$(find_chromium); then
  echo "setup-browser: $("$path" --version 2>/dev/null || echo chromium) at $path" >&2
  echo "$path"
  exit 0
fi
echo "setup-browser: chromium still not found after apt-get install; run:  $INSTALL_CMD" >&2
exit 1

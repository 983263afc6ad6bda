#!/usr/bin/env bash
# Run the hub authenticator's tests in a project-local venv (.tools/hubvenv).
# The venv is created on first use and reinstalled only when hub/pyproject.toml
# (or the checkout's path, or the Python version) changed: a warm run skips pip.
# Extra arguments go to pytest, e.g.  bash hub/run_tests.sh -k jwks
set -euo pipefail

HUB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HUB_DIR/.." && pwd)"
VENV="${HUBGATE_HUBVENV:-$ROOT/.tools/hubvenv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.hubgate-stamp"

if [ ! -x "$VENV/bin/python" ]; then
  echo "hub: creating venv $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

want="$( { sha256sum "$HUB_DIR/pyproject.toml" | cut -d' ' -f1; echo "$HUB_DIR"; "$VENV/bin/python" -V; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "hub: installing hubgate-authenticator and test dependencies" >&2
  rm -f "$STAMP"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -e "$HUB_DIR[test]"
  echo "$want" > "$STAMP"
fi

cd "$HUB_DIR"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"

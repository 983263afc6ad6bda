#!/usr/bin/env bash
# The Python "anchors" for the side-by-side benchmark (bench/side-by-side.mjs):
# JupyterHub with jupyterhub-ltiauthenticator (LTI 1.3) and OAuthenticator's
# GenericOAuthenticator (OIDC), in their own project-local venv
# (.tools/anchorvenv, git-ignored), pinned. configurable-http-proxy comes from
# node_modules (package.json), as for scripts/setup-jupyterhub.sh.
#
# Idempotent: pip runs only when the pins, the checkout's path or the Python
# version changed since the last install (a stamp file in the venv).
#
#   bash scripts/setup-anchors.sh              # install or check
#   HUBGATE_ANCHORVENV=/path bash scripts/...  # another venv location
#   PYTHON=python3.12 bash scripts/...         # another interpreter for a new venv
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="${HUBGATE_ANCHORVENV:-$ROOT/.tools/anchorvenv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.hubgate-anchor-stamp"
log() { printf '[setup-anchors] %s\n' "$*" >&2; }

# Pinned: JupyterHub as in scripts/setup-jupyterhub.sh; the newest
# jupyterhub-ltiauthenticator 1.6.x and the newest oauthenticator (17.x
# supports JupyterHub 6).
PINS=(
  "jupyterhub==6.1.1"
  "jupyterhub-ltiauthenticator==1.6.3"
  "oauthenticator==17.4.0"
)

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

want="$( { printf '%s\n' "${PINS[@]}"; echo "$ROOT"; "$VENV/bin/python" -V; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
  log "anchor venv is up to date ($VENV)"
  exit 0
fi

log "pip install ${PINS[*]} (a minute or two on a cold machine)"
rm -f "$STAMP"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install -q "${PINS[@]}"
"$VENV/bin/python" -m pip check >&2 || { log "pip check found conflicts"; exit 1; }

# Smoke: the authenticators and versions the bench relies on.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import jupyterhub
assert jupyterhub.__version__ == "6.1.1", jupyterhub.__version__
assert md.version("jupyterhub-ltiauthenticator") == "1.6.3", md.version("jupyterhub-ltiauthenticator")
assert md.version("oauthenticator") == "17.4.0", md.version("oauthenticator")
from ltiauthenticator.lti13.auth import LTI13Authenticator  # noqa: F401
from oauthenticator.generic import GenericOAuthenticator  # noqa: F401
PY
[ -x "$VENV/bin/jupyterhub" ] || { log "missing $VENV/bin/jupyterhub"; exit 1; }
echo "$want" > "$STAMP"
log "ready: $VENV"

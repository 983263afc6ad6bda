#!/usr/bin/env bash
# A real JupyterHub for the end-to-end suite (tests/e2e/jupyterhub.test.mjs)
# and `npm run dev:jupyterhub`, in a project-local venv (.tools/jhvenv,
# git-ignored): JupyterHub, the single-user server (jupyter_server +
# JupyterLab + ipykernel), jhub-remote-user-authenticator, and this
# repository's hub-side authenticator (./hub). configurable-http-proxy comes
# from node_modules (package.json).
#
# Idempotent: pip runs only when the pins below, hub/ (its pyproject.toml and
# sources), the checkout's path or the Python version changed since the last
# install (a stamp file in the venv), so a warm run takes well under a second.
#
#   bash scripts/setup-jupyterhub.sh          # install or check
#   HUBGATE_JHVENV=/path bash scripts/...      # another venv location
#   PYTHON=python3.12 bash scripts/...         # another interpreter for a new venv
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="${HUBGATE_JHVENV:-$ROOT/.tools/jhvenv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.hubgate-jh-stamp"
log() { printf '[setup-jupyterhub] %s\n' "$*" >&2; }

# Pinned: the versions the real-hub suite is tested with. ipykernel provides
# the python3 kernel the tests run `1 + 1` in.
PINS=(
  "jupyterhub==6.1.1"
  "jupyter_server==2.21.1"
  "jupyterlab==4.6.6"
  "ipykernel==7.4.0"
  "jhub-remote-user-authenticator==0.1.0"
)

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

hub_sources() {
  # pyproject plus every tracked-or-not source file of the package (sorted, so
  # the hash is stable), without caches and build leftovers.
  find hub/pyproject.toml hub/README.md hub/hubgate_authenticator -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
}
want="$( { printf '%s\n' "${PINS[@]}"; hub_sources; echo "$ROOT"; "$VENV/bin/python" -V; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
  log "jupyterhub venv is up to date ($VENV)"
  exit 0
fi

log "pip install ${PINS[*]} ./hub (a minute or two on a cold machine)"
rm -f "$STAMP"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Built from a copy of hub/: setuptools would leave hub/build/ in the tree.
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
cp -R hub/pyproject.toml hub/README.md hub/hubgate_authenticator "$src/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
"$VENV/bin/python" -m pip install -q "${PINS[@]}" "$src"
# pip keeps an installed hubgate-authenticator 0.1.0 even when hub/ changed:
# put the current sources in place.
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$src"
"$VENV/bin/python" -m pip check >&2 || { log "pip check found conflicts"; exit 1; }

# Smoke: the entry points the suite relies on exist.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
eps = {e.name for e in md.entry_points(group="jupyterhub.authenticators")}
assert "hubgate" in eps, eps
import jhub_remote_user_authenticator.remote_user_auth  # noqa: F401
import jupyter_server, jupyterlab, ipykernel, jupyterhub  # noqa: F401
assert jupyterhub.__version__ == "6.1.1", jupyterhub.__version__
PY
for bin in jupyterhub jupyterhub-singleuser; do
  [ -x "$VENV/bin/$bin" ] || { log "missing $VENV/bin/$bin"; exit 1; }
done
echo "$want" > "$STAMP"
log "ready: $VENV"

"""A real JupyterHub 6 process with authenticator_class = "hubgate".

Requests go straight to the hub's port (an in-memory Proxy stands in for
configurable-http-proxy); the JWKS comes from the test's server on 127.0.0.1.
Each request here plays the worker's own login subrequest. A second hub runs
with ``c.JupyterHub.base_url = "/jh/"`` for the login_path rule.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from conftest import ISSUER, SigningKey, claims

HERE = Path(__file__).parent / "hub_e2e"
H = "X-Hubgate-Assertion"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def request(url, headers=None, data=None, method=None):
    req = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def cookies(headers) -> str:
    return "; ".join(headers.get_all("Set-Cookie") or [])


def run_hub(tmp_path_factory, jwks, es_key, ed_key, base_url="/"):
    work = tmp_path_factory.mktemp("hub")
    hub_port, public_port = free_port(), free_port()
    base = f"http://127.0.0.1:{hub_port}"
    token = secrets.token_hex(16)
    env = dict(
        os.environ,
        HUBGATE_TEST_WORKDIR=str(work),
        HUBGATE_TEST_HUB_PORT=str(hub_port),
        HUBGATE_TEST_PUBLIC_PORT=str(public_port),
        HUBGATE_TEST_ISSUER=ISSUER,
        HUBGATE_TEST_AUDIENCE=base,
        HUBGATE_TEST_JWKS_URL=jwks.url,
        HUBGATE_TEST_API_TOKEN=token,
        HUBGATE_TEST_BASE_URL=base_url,
        JUPYTERHUB_CRYPT_KEY=Fernet.generate_key().decode(),
    )
    log = open(work / "hub.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(HERE / "jupyterhub_config.py")],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("jupyterhub exited:\n" + (work / "hub.log").read_text()[-4000:])
            try:
                status, _, _ = request(f"{base}{base_url}hub/api/")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("jupyterhub did not start:\n" + (work / "hub.log").read_text()[-4000:])
            time.sleep(0.2)
        jwks.keys = [es_key.public_jwk, ed_key.public_jwk]
        yield {"base": base, "token": token, "log": work / "hub.log", "base_url": base_url}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, _jwks_server_process, es_key, ed_key):
    yield from run_hub(tmp_path_factory, _jwks_server_process, es_key, ed_key)


@pytest.fixture(scope="module")
def hub_under_jh(tmp_path_factory, _jwks_server_process, es_key, ed_key):
    yield from run_hub(tmp_path_factory, _jwks_server_process, es_key, ed_key, base_url="/jh/")


def assertion(key, **overrides):
    return key.sign(claims(**overrides))


def test_hub_login_sets_cookie_admin_groups_auth_state(hub, es_key):
    base = hub["base"]
    tok = assertion(
        es_key, aud=base, sub="dora", admin=True, groups=["course-101"],
        method="lti", email="dora@example.org", auth_state={"context": {"id": "c1"}},
    )
    status, headers, _ = request(f"{base}/hub/login?next=/hub/token", {H: tok})
    assert status == 302, headers
    assert headers["Location"] == "/hub/token"
    assert "jupyterhub-hub-login=" in cookies(headers)

    status, _, body = request(
        f"{base}/hub/api/users/dora", {"Authorization": f"token {hub['token']}"}
    )
    assert status == 200, body
    user = json.loads(body)
    assert user["admin"] is True
    assert user["groups"] == ["course-101"]
    assert user["auth_state"]["method"] == "lti"
    assert user["auth_state"]["email"] == "dora@example.org"
    assert user["auth_state"]["auth_state"] == {"context": {"id": "c1"}}


def test_hub_login_refuses_missing_assertion_with_401(hub):
    status, headers, _ = request(f"{hub['base']}/hub/login?next=/hub/home")
    assert status == 401
    assert "Location" not in headers


def test_hub_login_refuses_wrong_audience_with_401(hub, es_key):
    tok = assertion(es_key, aud="https://elsewhere.example")
    status, _, _ = request(f"{hub['base']}/hub/login", {H: tok})
    assert status == 401


def test_hub_login_refuses_blocked_user_with_403(hub, ed_key):
    tok = assertion(ed_key, aud=hub["base"], sub="mallory")
    status, _, _ = request(f"{hub['base']}/hub/login", {H: tok})
    assert status == 403


def test_hub_login_ignores_offsite_next(hub, ed_key):
    tok = assertion(ed_key, aud=hub["base"], sub="erin")
    status, headers, _ = request(f"{hub['base']}/hub/login?next=//evil.example/x", {H: tok})
    assert status == 302
    assert headers["Location"] in ("/hub/spawn", "/hub/home")


def test_hub_login_switches_identity_in_same_browser(hub, es_key):
    base = hub["base"]
    _, headers, _ = request(f"{base}/hub/login", {H: assertion(es_key, aud=base, sub="frank")})
    cookie = "; ".join(c.split(";")[0] for c in headers.get_all("Set-Cookie"))
    _, headers, _ = request(
        f"{base}/hub/login", {H: assertion(es_key, aud=base, sub="grace"), "Cookie": cookie}
    )
    assert "jupyterhub-hub-login=" in cookies(headers)
    new_cookie = "; ".join(c.split(";")[0] for c in headers.get_all("Set-Cookie"))
    # the hub now sees grace, not frank, in this browser
    status, _, body = request(f"{base}/hub/home", {"Cookie": new_cookie})
    assert status == 200
    assert b"grace" in body and b"frank" not in body


def test_an_assertion_captured_and_replayed_is_refused(hub, es_key):
    """An assertion captured and replayed is refused: the first use logs in,
    a second identical request gets 401 and no hub cookie."""
    base = hub["base"]
    tok = assertion(es_key, aud=base, sub="heidi")
    status, headers, _ = request(f"{base}/hub/login?next=/hub/home", {H: tok})
    assert status == 302
    assert "jupyterhub-hub-login=" in cookies(headers)

    status, headers, body = request(f"{base}/hub/login?next=/hub/home", {H: tok})
    assert status == 401, body
    assert "Location" not in headers
    assert "jupyterhub-hub-login=" not in cookies(headers)
    assert b"assertion already used" in body or "assertion already used" in hub["log"].read_text()


def test_hub_token_api_refuses_assertion_presented_there(hub, es_key):
    """JupyterHub's POST /hub/api/users/:name/tokens without a token asks the
    authenticator; an assertion there must not mint an API token."""
    base = hub["base"]
    status, _, _ = request(f"{base}/hub/login", {H: assertion(es_key, aud=base, sub="ivan")})
    assert status == 302  # ivan exists now

    tok = assertion(es_key, aud=base, sub="ivan")
    status, _, body = request(
        f"{base}/hub/api/users/ivan/tokens",
        {H: tok, "Content-Type": "application/json"},
        data=b"{}",
        method="POST",
    )
    assert status == 403, body
    assert b"token" not in body
    assert "only accepted at '/hub/login'" in hub["log"].read_text()
    # refused before its jti was recorded: the login handler still takes it
    status, _, _ = request(f"{base}/hub/login", {H: tok})
    assert status == 302


def test_hub_refuses_assertion_for_another_login_path(hub, es_key):
    base = hub["base"]
    tok = assertion(es_key, aud=base, sub="judy", login_path="/jh/hub/login")
    status, headers, _ = request(f"{base}/hub/login", {H: tok})
    assert status == 401
    assert "jupyterhub-hub-login=" not in cookies(headers)


def test_hub_under_base_url_takes_only_its_own_login_path(hub_under_jh, es_key):
    base = hub_under_jh["base"]
    plain = assertion(es_key, aud=base, sub="kim")  # login_path /hub/login
    status, _, _ = request(f"{base}/jh/hub/login", {H: plain})
    assert status == 401
    tok = assertion(es_key, aud=base, sub="kim", login_path="/jh/hub/login")
    status, headers, _ = request(f"{base}/jh/hub/login?next=/jh/hub/home", {H: tok})
    assert status == 302, headers
    assert headers["Location"] == "/jh/hub/home"
    assert "jupyterhub-hub-login=" in cookies(headers)
    status, _, _ = request(f"{base}/jh/hub/login", {H: tok})
    assert status == 401

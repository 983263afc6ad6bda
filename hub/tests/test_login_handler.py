"""The /hub/login handler: 401 for a bad assertion, 403 for a refused user,
redirect to `next` only for same-origin paths. Runs the real handler code with
the JupyterHub plumbing (database, cookies, settings) replaced by small fakes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tornado import web

from hubgate_authenticator import AssertionRefused, HubgateLoginHandler, safe_next_path

from conftest import claims, fake_handler, make_authenticator

H = "X-Hubgate-Assertion"


class FakeLogin(HubgateLoginHandler):
    """HubgateLoginHandler with the hub's plumbing faked out."""

    default_url = ""
    redirect_to_server = False
    hub = SimpleNamespace(base_url="/hub/")

    def __init__(self, authenticator, headers=None, args=None):  # no tornado init
        fake = fake_handler(headers or {})
        self.request = fake.request
        self._authenticator = authenticator
        self._args = args or {}
        self.redirected_to = None
        self.response_headers = {}
        self.cookie_set_for = None

    def get_argument(self, name, default=None, strip=True):
        return self._args.get(name, default)

    def set_header(self, name, value):
        self.response_headers[name] = value

    def redirect(self, url, permanent=False, status=None):
        self.redirected_to = url

    async def login_user(self, data=None):
        # as BaseHandler.login_user: authenticate, then persist + cookie
        model = await self._authenticator.get_authenticated_user(self, data)
        if not model:
            return None
        self.cookie_set_for = model["name"]
        return SimpleNamespace(name=model["name"], url=f"/user/{model['name']}/",
                               spawner=SimpleNamespace(active=False))


@pytest.fixture
def login(jwks_server, es_key):
    def make(token=None, sub="alice", next_url=None, **settings):
        a = make_authenticator(jwks_server.url, **settings)
        headers = {}
        if token is not False:
            headers[H] = token or es_key.sign(claims(sub=sub))
        args = {} if next_url is None else {"next": next_url}
        return FakeLogin(a, headers, args)

    return make


async def test_login_redirects_to_next_path(login):
    h = login(next_url="/user/alice/lab/tree/x.ipynb?kernel=1#cell")
    await h.get()
    assert h.cookie_set_for == "alice"
    assert h.redirected_to == "/user/alice/lab/tree/x.ipynb?kernel=1#cell"
    assert h.response_headers["Cache-Control"] == "no-store"


async def test_login_without_next_goes_to_hub_home(login):
    h = login()
    await h.get()
    assert h.redirected_to == "/hub/home"


async def test_login_missing_assertion_is_401_not_a_login_page(login):
    h = login(token=False)
    with pytest.raises(AssertionRefused) as info:
        await h.get()
    assert info.value.status_code == 401
    assert h.redirected_to is None and h.cookie_set_for is None


async def test_login_wrongly_signed_assertion_is_401(login):
    from conftest import SigningKey

    h = login(token=SigningKey("es-1", "ES256").sign(claims()))
    with pytest.raises(web.HTTPError) as info:
        await h.get()
    assert info.value.status_code == 401


async def test_login_blocked_user_is_403(login):
    h = login(Authenticator__blocked_users={"alice"})
    with pytest.raises(web.HTTPError) as info:
        await h.get()
    assert info.value.status_code == 403
    assert h.cookie_set_for is None


async def test_login_user_outside_allowed_users_is_403(login):
    h = login(sub="mallory", Authenticator__allowed_users={"alice"})
    with pytest.raises(web.HTTPError) as info:
        await h.get()
    assert info.value.status_code == 403


async def test_login_post_is_405(login):
    with pytest.raises(web.HTTPError) as info:
        await login().post()
    assert info.value.status_code == 405


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "http://evil.example",
        "//evil.example/path",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " /hub/home",
        "javascript:alert(1)",
        "user/alice",
        "",
    ],
)
async def test_next_only_same_origin_path(login, next_url):
    assert safe_next_path(next_url) == ""
    h = login(next_url=next_url)
    await h.get()
    assert h.redirected_to == "/hub/home"


@pytest.mark.parametrize("path", ["/hub/home", "/user/alice/", "/hub/spawn?x=%2F%2Fa", "/a/b#c"])
def test_next_same_origin_paths_are_kept(path):
    assert safe_next_path(path) == path


async def test_login_replayed_assertion_is_401(login, es_key):
    token = es_key.sign(claims())
    first = login(token=token)
    await first.get()
    assert first.cookie_set_for == "alice"
    # the same handler object's authenticator: a second request with the same token
    replay = FakeLogin(first._authenticator, {H: token})
    with pytest.raises(AssertionRefused) as info:
        await replay.get()
    assert info.value.status_code == 401
    assert info.value.why == "assertion already used"
    assert replay.cookie_set_for is None and replay.redirected_to is None


@pytest.mark.parametrize("base_url", ["/", "/jh/", "/a/b/"])
def test_handler_is_mounted_at_the_path_assertions_name(base_url):
    # JupyterHub mounts get_handlers() under its hub prefix ({base_url}hub/);
    # login_path_of() must name exactly that route, which the worker puts in
    # the login_path claim as {BASE_URL}hub/login.
    from jupyterhub.app import JupyterHub
    from jupyterhub.utils import url_path_join

    a = make_authenticator()
    hub_prefix = url_path_join(base_url, "hub/")
    routes = JupyterHub.add_url_prefix(hub_prefix, list(a.get_handlers(None)))
    assert routes == [(base_url + "hub/login", HubgateLoginHandler)]
    handler = fake_handler(path=base_url + "hub/login", base_url=hub_prefix)
    assert a.login_path_of(handler) == base_url + "hub/login"

"""JWKS fetching and caching rules."""

from __future__ import annotations

import pytest
from tornado import web

from hubgate_authenticator import AssertionRefused, JwksCache, JwksUnavailable

from conftest import ISSUER, SigningKey, claims, fake_handler, make_authenticator

H = "X-Hubgate-Assertion"


async def login(a, token):
    return await a.authenticate(fake_handler({H: token}))


def test_default_jwks_url_is_under_issuer():
    a = make_authenticator()
    assert a.effective_jwks_url() == ISSUER + "/_hubgate/jwks.json"


async def test_jwks_fetched_once_and_cached(authenticator, jwks_server, es_key, ed_key):
    for _ in range(3):
        await login(authenticator, es_key.sign(claims()))
        await login(authenticator, ed_key.sign(claims()))
    assert jwks_server.hits == 1


async def test_refuses_unknown_kid_after_one_refetch(authenticator, jwks_server, es_key):
    await login(authenticator, es_key.sign(claims()))  # warm the cache
    assert jwks_server.hits == 1
    stranger = SigningKey("never-published", "ES256")
    with pytest.raises(AssertionRefused) as info:
        await login(authenticator, stranger.sign(claims()))
    assert info.value.why == "unknown key"
    assert jwks_server.hits == 2  # exactly one refetch
    # within 30 s, further unknown kids do not hit the JWKS again
    for _ in range(3):
        with pytest.raises(AssertionRefused):
            await login(authenticator, stranger.sign(claims()))
    assert jwks_server.hits == 2


async def test_refetches_jwks_once_on_rotated_kid(authenticator, jwks_server, es_key):
    await login(authenticator, es_key.sign(claims()))
    assert jwks_server.hits == 1
    rotated = SigningKey("es-2", "ES256")
    jwks_server.keys = [rotated.public_jwk]  # the worker rotated its key
    model = await login(authenticator, rotated.sign(claims(sub="carol")))
    assert model["name"] == "carol"
    assert jwks_server.hits == 2
    await login(authenticator, rotated.sign(claims()))
    assert jwks_server.hits == 2


async def test_initial_fetch_does_not_start_the_refetch_clock(es_key):
    # a key rotated just after the first fetch is still picked up
    keysets = [{"keys": []}, {"keys": [es_key.public_jwk]}]
    calls = []

    def fetch(url):
        calls.append(url)
        return keysets[min(len(calls) - 1, 1)]

    a = make_authenticator(HubgateAuthenticator__jwks_fetcher=fetch)
    # first call: initial fetch (empty set) -> no second fetch in the same call
    with pytest.raises(AssertionRefused):
        await login(a, es_key.sign(claims()))
    # second call: the forced refetch is allowed although a fetch just happened
    assert (await login(a, es_key.sign(claims())))["name"] == "alice"
    assert len(calls) == 2


async def test_unknown_kid_refetch_allowed_again_after_interval(es_key):
    now = [1000.0]
    calls = []

    def fetch(url):
        calls.append(url)
        return {"keys": [es_key.public_jwk]}

    cache = JwksCache(url=lambda: "u", fetcher=fetch, ttl=3600, refetch_interval=30, clock=lambda: now[0])
    assert await cache.get_key("es-1", "ES256") is not None
    assert await cache.get_key("x", "ES256") is None
    assert await cache.get_key("x", "ES256") is None
    assert len(calls) == 2
    now[0] += 31
    assert await cache.get_key("x", "ES256") is None
    assert len(calls) == 3


async def test_jwks_refetched_after_ttl(es_key):
    now = [0.0]
    calls = []

    async def fetch(url):
        calls.append(url)
        return {"keys": [es_key.public_jwk]}

    cache = JwksCache(url=lambda: "u", fetcher=fetch, ttl=300, clock=lambda: now[0])
    await cache.get_key("es-1", "ES256")
    now[0] = 299
    await cache.get_key("es-1", "ES256")
    assert len(calls) == 1
    now[0] = 301
    await cache.get_key("es-1", "ES256")
    assert len(calls) == 2


async def test_stale_jwks_used_when_fetch_fails(es_key):
    now = [0.0]
    state = {"fail": False}

    def fetch(url):
        if state["fail"]:
            raise OSError("connection refused")
        return {"keys": [es_key.public_jwk]}

    cache = JwksCache(url=lambda: "u", fetcher=fetch, ttl=300, stale_max_age=86400, clock=lambda: now[0])
    await cache.get_key("es-1", "ES256")
    state["fail"] = True
    now[0] = 3600
    assert await cache.get_key("es-1", "ES256") is not None
    now[0] = 86401
    with pytest.raises(JwksUnavailable):
        await cache.get_key("es-1", "ES256")


async def test_jwks_unreachable_is_502(es_key):
    def fetch(url):
        raise OSError("connection refused")

    a = make_authenticator(HubgateAuthenticator__jwks_fetcher=fetch)
    with pytest.raises(web.HTTPError) as info:
        await login(a, es_key.sign(claims()))
    assert info.value.status_code == 502


async def test_jwks_http_error_is_502(authenticator, jwks_server, es_key):
    jwks_server.status = 500
    with pytest.raises(web.HTTPError) as info:
        await login(authenticator, es_key.sign(claims()))
    assert info.value.status_code == 502


async def test_jwks_not_a_key_set_is_502(es_key):
    a = make_authenticator(HubgateAuthenticator__jwks_fetcher=lambda url: ["not", "an", "object"])
    with pytest.raises(web.HTTPError) as info:
        await login(a, es_key.sign(claims()))
    assert info.value.status_code == 502


async def test_jwks_larger_than_cap_is_refused(authenticator, jwks_server, es_key):
    jwks_server.keys = [es_key.public_jwk] + [{"kid": f"pad-{i}", "x": "A" * 1000} for i in range(100)]
    with pytest.raises(web.HTTPError) as info:
        await login(authenticator, es_key.sign(claims()))
    assert info.value.status_code == 502


async def test_keys_for_encryption_are_ignored(es_key):
    enc = dict(es_key.public_jwk, use="enc")
    a = make_authenticator(HubgateAuthenticator__jwks_fetcher=lambda url: {"keys": [enc]})
    with pytest.raises(AssertionRefused):
        await login(a, es_key.sign(claims()))

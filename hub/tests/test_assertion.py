"""Verification of the worker's identity assertion, one rule per test."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from tornado import web

from hubgate_authenticator import AssertionRefused, HubgateAuthenticator

from conftest import (
    AUDIENCE,
    DROP,
    ISSUER,
    LOGIN_PATH,
    SigningKey,
    claims,
    fake_handler,
    make_authenticator,
    new_jti,
)

H = "X-Hubgate-Assertion"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(authenticator, token, why_part=None):
    with pytest.raises(AssertionRefused) as info:
        await authenticator.authenticate(fake_handler({H: token}))
    assert info.value.status_code == 401
    if why_part:
        assert why_part in info.value.why
    return info.value


# -- refusals -------------------------------------------------------------------


async def test_refuses_missing_assertion(authenticator):
    with pytest.raises(AssertionRefused) as info:
        await authenticator.authenticate(fake_handler({}))
    assert info.value.status_code == 401
    assert info.value.why == "missing"


async def test_refuses_empty_assertion(authenticator):
    await refused(authenticator, "", "missing")


async def test_refuses_assertion_header_sent_twice(authenticator, es_key):
    token = es_key.sign(claims())
    with pytest.raises(AssertionRefused) as info:
        await authenticator.authenticate(fake_handler([(H, token), (H, token)]))
    assert "more than once" in info.value.why


async def test_refuses_malformed_assertion(authenticator):
    await refused(authenticator, "not-a-jwt", "malformed")


async def test_refuses_expired_assertion(authenticator, es_key):
    now = int(time.time())
    await refused(authenticator, es_key.sign(claims(iat=now - 90, exp=now - 40)), "expired")


async def test_refuses_iat_in_the_future(authenticator, es_key):
    now = int(time.time())
    await refused(authenticator, es_key.sign(claims(iat=now + 40, exp=now + 60)), "not yet valid")


async def test_rejects_exp_more_than_60s_after_iat(authenticator, es_key):
    now = int(time.time())
    await refused(authenticator, es_key.sign(claims(iat=now, exp=now + 61)), "lifetime")


async def test_accepts_exp_exactly_60s_after_iat(authenticator, es_key):
    now = int(time.time())
    model = await authenticator.authenticate(
        fake_handler({H: es_key.sign(claims(iat=now, exp=now + 60))})
    )
    assert model["name"] == "alice"


async def test_refuses_wrong_audience(authenticator, es_key):
    await refused(authenticator, es_key.sign(claims(aud="https://other-hub.example")), "audience")


async def test_refuses_wrong_issuer(authenticator, es_key):
    await refused(authenticator, es_key.sign(claims(iss="https://evil.example")), "issuer")


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
async def test_refuses_missing_registered_claim(authenticator, es_key, claim):
    await refused(authenticator, es_key.sign(claims(**{claim: DROP})))


async def test_refuses_alg_none(authenticator):
    header = b64(json.dumps({"alg": "none", "kid": "es-1", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    await refused(authenticator, f"{header}.{payload}.", "algorithm 'none'")


async def test_refuses_hs256_signed_with_public_key(authenticator, es_key, jwks_server):
    # classic algorithm confusion: HMAC keyed with the published public key
    pem = es_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, json.dumps(es_key.public_jwk).encode()):
        header = b64(json.dumps({"alg": "HS256", "kid": "es-1", "typ": "JWT"}).encode())
        payload = b64(json.dumps(claims()).encode())
        sig = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        await refused(authenticator, f"{header}.{payload}.{sig}", "algorithm 'HS256'")
    assert jwks_server.hits == 0  # refused before any key lookup


@pytest.mark.parametrize("alg", ["RS256", "ES384", "PS256", "HS512"])
async def test_refuses_other_algorithms(authenticator, alg):
    header = b64(json.dumps({"alg": alg, "kid": "es-1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    await refused(authenticator, f"{header}.{payload}.AAAA", f"algorithm {alg!r}")


async def test_refuses_tampered_payload(authenticator, es_key):
    token = es_key.sign(claims())
    header, _, sig = token.split(".")
    payload = b64(json.dumps(claims(sub="root", admin=True)).encode())
    await refused(authenticator, f"{header}.{payload}.{sig}", "bad signature")


async def test_refuses_signature_by_unpublished_key_with_known_kid(authenticator):
    impostor = SigningKey("es-1", "ES256")  # same kid, different key
    await refused(authenticator, impostor.sign(claims()), "bad signature")


async def test_refuses_eddsa_header_on_ec_kid(authenticator, ed_key):
    # an Ed25519 signature presented under the EC key's kid: key type must match alg
    token = jwt.encode(claims(), ed_key.private, algorithm="EdDSA", headers={"kid": "es-1"})
    await refused(authenticator, token, "unknown key")


async def test_refuses_missing_kid(authenticator, es_key):
    token = jwt.encode(claims(), es_key.private, algorithm="ES256")
    await refused(authenticator, token, "no kid")


async def test_refuses_crit_header(authenticator, es_key):
    # PyJWT already rejects unknown crit headers while parsing; either way a 401
    await refused(authenticator, es_key.sign(claims(), {"crit": ["exp"]}))


@pytest.mark.parametrize(
    "overrides, why",
    [
        ({"method": DROP}, "method"),
        ({"method": "password"}, "method"),
        ({"groups": "staff"}, "groups"),
        ({"groups": ["ok", 3]}, "groups"),
        ({"admin": "true"}, "admin"),
        ({"email": ["a@b"]}, "email"),
        ({"auth_state": "x"}, "auth_state"),
        ({"sub": ""}, "sub"),
        ({"sub": 42}, "sub"),
    ],
)
async def test_refuses_ill_typed_claims(authenticator, es_key, overrides, why):
    await refused(authenticator, es_key.sign(claims(**overrides)))


async def test_refuses_key_published_with_private_material(es_key):
    leaked = dict(es_key.public_jwk)
    priv = jwt.algorithms.ECAlgorithm.to_jwk(es_key.private, as_dict=True)
    leaked["d"] = priv["d"]
    a = make_authenticator(
        HubgateAuthenticator__jwks_fetcher=lambda url: {"keys": [leaked]}
    )
    await refused(a, es_key.sign(claims()), "unknown key")


async def test_refuses_algorithm_not_in_configured_subset(jwks_server, ed_key):
    a = make_authenticator(jwks_server.url, HubgateAuthenticator__algorithms=["ES256"])
    await refused(a, ed_key.sign(claims()), "algorithm 'EdDSA'")


def test_algorithms_config_refuses_unsupported_values():
    with pytest.raises(Exception):
        make_authenticator(HubgateAuthenticator__algorithms=["ES256", "HS256"])


async def test_missing_issuer_or_audience_config_is_500(es_key):
    a = HubgateAuthenticator()
    with pytest.raises(web.HTTPError) as info:
        await a.authenticate(fake_handler({H: es_key.sign(claims())}))
    assert info.value.status_code == 500


# -- single use and login path ---------------------------------------------------


async def test_refuses_assertion_without_jti(authenticator, es_key):
    await refused(authenticator, es_key.sign(claims(jti=DROP)), "missing claim jti")


async def test_refuses_assertion_without_login_path(authenticator, es_key):
    await refused(authenticator, es_key.sign(claims(login_path=DROP)), "missing claim login_path")


@pytest.mark.parametrize(
    "jti",
    ["", "short-id", "x" * 15, "a" * 257, "has space in it ok", "plus+slash/base64==", 12345678901234567, None, ["a" * 22]],
)
async def test_refuses_ill_formed_jti(authenticator, es_key, jti):
    await refused(authenticator, es_key.sign(claims(jti=jti)), "jti")


@pytest.mark.parametrize("jti", ["A" * 16, "abc-DEF_123-xyz_0", new_jti() + "==", "a" * 256])
async def test_accepts_url_safe_base64_jti(authenticator, es_key, jti):
    model = await authenticator.authenticate(fake_handler({H: es_key.sign(claims(jti=jti))}))
    assert model["name"] == "alice"


@pytest.mark.parametrize(
    "login_path",
    [
        "/jh/hub/login",
        "/hub/login/",
        "/hub/login?next=/x",
        "/hub/api/users/alice/tokens",
        "/user/alice/login",
        "/hub/%6Cogin",
        "hub/login",
        "",
        None,
        ["/hub/login"],
    ],
)
async def test_refuses_assertion_for_another_path(authenticator, es_key, login_path):
    await refused(authenticator, es_key.sign(claims(login_path=login_path)), "login_path")


async def test_refuses_assertion_presented_at_other_path(authenticator, es_key):
    # JupyterHub calls authenticate() from other handlers too, e.g.
    # POST /hub/api/users/:name/tokens without a token: an assertion must not
    # mint an API token there, nor anywhere but the login handler.
    token = es_key.sign(claims())
    for path in ("/hub/api/users/alice/tokens", "/hub/login/", "/hub/logout", "/user/alice/login"):
        await refused_at(authenticator, token, path, "only accepted at '/hub/login'")
    # refused before verification: its jti is not burned, the login still works
    model = await authenticator.authenticate(fake_handler({H: token}))
    assert model["name"] == "alice"


async def test_refuses_assertion_to_handler_without_hub(authenticator, es_key):
    h = fake_handler({H: es_key.sign(claims())})
    del h.hub
    with pytest.raises(AssertionRefused) as info:
        await authenticator.authenticate(h)
    assert "login handler" in info.value.why


async def test_login_path_follows_the_hub_base_url(authenticator, es_key):
    # c.JupyterHub.base_url = "/jh/": the hub prefix is /jh/hub/
    at_jh = dict(path="/jh/hub/login", base_url="/jh/hub/")
    with pytest.raises(AssertionRefused) as info:
        await authenticator.authenticate(fake_handler({H: es_key.sign(claims())}, **at_jh))
    assert "login_path '/hub/login'" in info.value.why
    token = es_key.sign(claims(login_path="/jh/hub/login"))
    assert (await authenticator.authenticate(fake_handler({H: token}, **at_jh)))["name"] == "alice"
    # and that assertion is no good at a hub mounted at /
    await refused(authenticator, es_key.sign(claims(login_path="/jh/hub/login")), "login_path")


async def test_refuses_replayed_assertion_jti(authenticator, es_key):
    token = es_key.sign(claims())
    assert (await authenticator.authenticate(fake_handler({H: token})))["name"] == "alice"
    await refused(authenticator, token, "assertion already used")
    # also when re-signed around the same jti (another sub, fresh times)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    await refused(authenticator, es_key.sign(claims(jti=jti, sub="bob")), "assertion already used")


async def test_replay_is_refused_by_get_authenticated_user(authenticator, es_key):
    token = es_key.sign(claims())
    assert (await authenticator.get_authenticated_user(fake_handler({H: token}), None))["name"] == "alice"
    with pytest.raises(AssertionRefused) as info:
        await authenticator.get_authenticated_user(fake_handler({H: token}), None)
    assert info.value.why == "assertion already used"


async def test_concurrent_uses_of_one_assertion_let_one_through(authenticator, es_key):
    token = es_key.sign(claims())
    results = await asyncio.gather(
        *(authenticator.authenticate(fake_handler({H: token})) for _ in range(5)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, dict)]
    used = [r for r in results if isinstance(r, AssertionRefused) and r.why == "assertion already used"]
    assert len(ok) == 1 and len(used) == 4


async def test_forged_assertion_does_not_burn_jti(authenticator, es_key, ed_key):
    jti = new_jti()
    impostor = SigningKey("es-1", "ES256")  # known kid, unpublished key
    await refused(authenticator, impostor.sign(claims(jti=jti)), "bad signature")
    genuine = es_key.sign(claims(jti=jti))
    header, _, sig = genuine.split(".")
    tampered = b64(json.dumps(claims(jti=jti, sub="root", admin=True)).encode())
    await refused(authenticator, f"{header}.{tampered}.{sig}", "bad signature")
    # validly signed but refused for another reason: not burned either
    await refused(authenticator, es_key.sign(claims(jti=jti, aud="https://other.example")), "audience")
    await refused(authenticator, es_key.sign(claims(jti=jti, login_path="/x/hub/login")), "login_path")
    await refused(authenticator, es_key.sign(claims(jti=jti, groups="staff")), "groups")
    now = int(time.time())
    await refused(authenticator, es_key.sign(claims(jti=jti, iat=now - 90, exp=now - 40)), "expired")
    assert jti not in authenticator.jti_store
    assert (await authenticator.authenticate(fake_handler({H: genuine})))["name"] == "alice"
    assert jti in authenticator.jti_store


async def test_jti_is_remembered_until_exp_plus_leeway(authenticator, es_key):
    now = int(time.time())
    c = claims(iat=now, exp=now + 20)
    await authenticator.authenticate(fake_handler({H: es_key.sign(c)}))
    assert authenticator.jti_store._deadlines[c["jti"]] == now + 20 + authenticator.leeway


async def test_full_jti_store_refuses_new_assertions_and_keeps_old_ones(jwks_server, es_key):
    a = make_authenticator(jwks_server.url, HubgateAuthenticator__jti_store_max_entries=2)
    first, second = es_key.sign(claims()), es_key.sign(claims())
    await a.authenticate(fake_handler({H: first}))
    await a.authenticate(fake_handler({H: second}))
    with pytest.raises(web.HTTPError) as info:
        await a.authenticate(fake_handler({H: es_key.sign(claims())}))
    assert info.value.status_code == 503
    # fail closed: nothing unexpired was forgotten to make room
    await refused(a, first, "assertion already used")
    await refused(a, second, "assertion already used")


def test_jti_store_max_entries_must_be_positive():
    with pytest.raises(Exception):
        make_authenticator(HubgateAuthenticator__jti_store_max_entries=0)


async def refused_at(authenticator, token, path, why_part):
    with pytest.raises(AssertionRefused) as info:
        await authenticator.authenticate(fake_handler({H: token}, path=path))
    assert info.value.status_code == 401
    assert why_part in info.value.why


# -- acceptance -----------------------------------------------------------------


async def test_accepts_es256_and_sets_admin_groups_auth_state(authenticator, es_key):
    token = es_key.sign(
        claims(
            sub="alice",
            admin=True,
            groups=["course-101", "staff"],
            method="lti",
            email="alice@example.org",
            auth_state={"context": {"id": "c1"}, "roles": ["Instructor"]},
        )
    )
    model = await authenticator.get_authenticated_user(fake_handler({H: token}), None)
    assert model["name"] == "alice"
    assert model["admin"] is True
    assert model["groups"] == ["course-101", "staff"]
    state = model["auth_state"]
    assert state["method"] == "lti"
    assert state["email"] == "alice@example.org"
    assert state["auth_state"] == {"context": {"id": "c1"}, "roles": ["Instructor"]}
    assert state["claims"]["iss"] == ISSUER
    assert state["claims"]["aud"] == AUDIENCE
    assert authenticator.manage_groups is True


async def test_accepts_eddsa(authenticator, ed_key):
    model = await authenticator.authenticate(fake_handler({H: ed_key.sign(claims(sub="bob"))}))
    assert model["name"] == "bob"
    assert model["admin"] is False
    assert model["auth_state"]["method"] == "oauth"
    assert model["auth_state"]["email"] is None


async def test_accepts_audience_list_containing_hub(authenticator, es_key):
    token = es_key.sign(claims(aud=["https://other.example", AUDIENCE]))
    assert (await authenticator.authenticate(fake_handler({H: token})))["name"] == "alice"


async def test_configured_origins_tolerate_trailing_slash(jwks_server, es_key):
    a = make_authenticator(
        jwks_server.url,
        HubgateAuthenticator__issuer=ISSUER + "/",
        HubgateAuthenticator__audience=AUDIENCE + "/",
    )
    assert (await a.authenticate(fake_handler({H: es_key.sign(claims())})))["name"] == "alice"


async def test_header_name_is_configurable(jwks_server, es_key):
    a = make_authenticator(jwks_server.url, HubgateAuthenticator__header_name="X-Edge-Identity")
    token = es_key.sign(claims())
    with pytest.raises(AssertionRefused):
        await a.authenticate(fake_handler({H: token}))
    model = await a.authenticate(fake_handler({"x-edge-identity": token}))
    assert model["name"] == "alice"


async def test_username_is_normalized_by_the_hub(authenticator, es_key):
    model = await authenticator.get_authenticated_user(
        fake_handler({H: es_key.sign(claims(sub="Alice"))}), None
    )
    assert model["name"] == "alice"


async def test_admin_users_config_still_grants_admin(jwks_server, es_key):
    a = make_authenticator(jwks_server.url, Authenticator__admin_users={"alice"})
    model = await a.authenticate(fake_handler({H: es_key.sign(claims(admin=False))}))
    assert model["admin"] is True


# -- allow rules ----------------------------------------------------------------


def test_allow_all_by_default_because_worker_applies_allow_rules(authenticator):
    assert authenticator.allow_all is True


async def test_blocked_users_are_refused(jwks_server, es_key):
    a = make_authenticator(jwks_server.url, Authenticator__blocked_users={"alice"})
    assert await a.get_authenticated_user(fake_handler({H: es_key.sign(claims())}), None) is None


async def test_allowed_users_are_honoured_when_set(jwks_server, es_key):
    a = make_authenticator(jwks_server.url, Authenticator__allowed_users={"bob"})
    assert a.allow_all is False
    assert await a.get_authenticated_user(fake_handler({H: es_key.sign(claims())}), None) is None
    bob = await a.get_authenticated_user(fake_handler({H: es_key.sign(claims(sub="bob"))}), None)
    assert bob["name"] == "bob"

"""Verification of the worker's identity assertion, one rule per test."""

from __future__ import annotations

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

from conftest import AUDIENCE, DROP, ISSUER, SigningKey, claims, fake_handler, make_authenticator

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

"""Shared fixtures: signing keys, a JWKS server on 127.0.0.1, token minting."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm
from tornado.httputil import HTTPHeaders
from traitlets.config import Config

from hubgate_authenticator import HubgateAuthenticator

ISSUER = "https://gate.example.org"
AUDIENCE = "http://127.0.0.1:8081"
LOGIN_PATH = "/hub/login"


class SigningKey:
    def __init__(self, kid: str, alg: str):
        self.kid = kid
        self.alg = alg
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            raise ValueError(alg)
        jwk.update({"kid": kid, "use": "sig", "alg": alg})
        self.public_jwk = jwk

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        h = {"kid": self.kid}
        h.update(headers or {})
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=h)


def new_jti() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, as the worker mints them


def claims(**overrides) -> dict:
    """The worker's assertion claims; each call gets a fresh jti."""
    now = int(time.time())
    c = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": new_jti(),
        "login_path": LOGIN_PATH,
        "sub": "alice",
        "groups": ["course-101", "staff"],
        "admin": False,
        "method": "oauth",
    }
    for k, v in overrides.items():
        if v is DROP:
            c.pop(k, None)
        else:
            c[k] = v
    return c


DROP = object()


class JwksServer:
    """Serves a mutable JWKS at http://127.0.0.1:<port>/_hubgate/jwks.json."""

    def __init__(self):
        self.keys: list[dict] = []
        self.hits = 0
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/_hubgate/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def es_key():
    return SigningKey("es-1", "ES256")


@pytest.fixture(scope="session")
def ed_key():
    return SigningKey("ed-1", "EdDSA")


@pytest.fixture(scope="session")
def _jwks_server_process():
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def jwks_server(_jwks_server_process, es_key, ed_key):
    """The JWKS server, reset for each test: both keys published, no hits yet."""
    server = _jwks_server_process
    server.keys = [es_key.public_jwk, ed_key.public_jwk]
    server.hits = 0
    server.status = 200
    return server


def make_authenticator(jwks_url: str | None = None, **settings) -> HubgateAuthenticator:
    c = Config()
    c.HubgateAuthenticator.issuer = ISSUER
    c.HubgateAuthenticator.audience = AUDIENCE
    if jwks_url:
        c.HubgateAuthenticator.jwks_url = jwks_url
    for name, value in settings.items():
        cls, _, trait = name.partition("__")
        c[cls][trait] = value
    return HubgateAuthenticator(config=c)


@pytest.fixture
def authenticator(jwks_server):
    return make_authenticator(jwks_server.url)


def fake_handler(headers: dict | list | None = None, path: str = LOGIN_PATH, base_url: str = "/hub/"):
    """An object with request.headers, request.path and hub.base_url, as
    authenticate() needs. Default: a request at the hub's login handler."""
    h = HTTPHeaders()
    items = headers.items() if isinstance(headers, dict) else (headers or [])
    for k, v in items:
        h.add(k, v)
    return SimpleNamespace(
        request=SimpleNamespace(headers=h, host="hub.example", path=path),
        hub=SimpleNamespace(base_url=base_url),
    )

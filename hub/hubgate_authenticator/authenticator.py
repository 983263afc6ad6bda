"""JupyterHub authenticator that trusts only the hubgate worker's signed assertion.

The worker (a Cloudflare Worker in front of the hub) performs the hub's login
itself: after a verified login it sends its own ``GET {base_url}hub/login``
with the header ``X-Hubgate-Assertion`` — a compact JWT signed with ES256 or
EdDSA whose public keys it publishes at ``<issuer>/_hubgate/jwks.json`` — and
passes the hub's cookies back to the browser. No browser request carries the
assertion. This authenticator verifies it on the login handler only (the
``login_path`` claim and the request's path must both be the hub's login
path), accepts each ``jti`` once, and logs in the user it names, with admin
flag, groups (``manage_groups``) and auth_state.

Allow rules: the worker applies the operator's allow rules before it signs
anything, so ``allow_all`` defaults to True here. JupyterHub's own
``allowed_users`` and ``blocked_users`` are still honoured: setting
``allowed_users`` turns the default of ``allow_all`` to False.
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import urlsplit

import jwt
from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Bool, Callable, Float, Integer, List, Unicode, default, validate

from .jwks import KEY_TYPES, JwksCache, JwksUnavailable, make_tornado_fetcher
from .replay import DEFAULT_MAX_ENTRIES, JtiStore, JtiStoreFull

SUPPORTED_ALGORITHMS = tuple(KEY_TYPES)  # ("ES256", "EdDSA")
METHODS = ("oauth", "lti")
MAX_ASSERTION_BYTES = 16 * 1024

# jti: URL-safe base64 (padding tolerated), at least 16 characters
_JTI = re.compile(r"[A-Za-z0-9_-]{16,256}={0,2}")

# characters a browser strips or treats specially in a Location header
_UNSAFE_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


class AssertionRefused(web.HTTPError):
    """The identity assertion is missing or does not verify: 401."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(401, "Identity assertion refused: %s", why)


def safe_next_path(next_url: Optional[str]) -> str:
    """Return ``next_url`` if it is a same-origin path, else ``""``.

    Accepted: an absolute path (``/hub/home``, ``/user/a/lab?x=1#y``). Refused:
    anything with a scheme or host (``https://x``, ``//x``, ``/\\x``), backslashes,
    whitespace or control characters (browsers strip tabs and newlines, which
    would turn ``/\\t/evil`` into ``//evil``), and relative paths.
    """
    if not next_url or not isinstance(next_url, str):
        return ""
    if len(next_url) > 4096:
        return ""
    if not next_url.startswith("/") or next_url.startswith("//"):
        return ""
    if _UNSAFE_NEXT.search(next_url):
        return ""
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc:
        return ""
    return next_url


class HubgateLoginHandler(BaseHandler):
    """``GET /hub/login``: log in the user named by the worker's assertion.

    Never renders a login form: a bad or missing assertion is a 401, a user
    refused by the allow/block rules a 403, success a redirect to ``next``
    (same-origin paths only) or the hub's default page.
    """

    def _default_next(self, user) -> str:
        default_url = self.default_url
        if callable(default_url):
            default_url = default_url(self)
        if default_url:
            return default_url
        if user is not None and self.redirect_to_server:
            if user.spawner.active:
                return user.url
            return url_path_join(self.hub.base_url, "spawn")
        return url_path_join(self.hub.base_url, "home")

    async def get(self):
        self.set_header("Cache-Control", "no-store")
        # authenticate() raises 401 (AssertionRefused) or 502 (JWKS down);
        # None means the allow/block rules refused the user.
        user = await self.login_user()
        if user is None:
            raise web.HTTPError(403, "User not allowed on this hub")
        next_url = safe_next_path(self.get_argument("next", default=""))
        if not next_url:
            next_url = self._default_next(user)
        self.redirect(next_url, permanent=False)

    async def post(self):
        raise web.HTTPError(405)


class HubgateAuthenticator(Authenticator):
    """Authenticate users by the hubgate worker's signed identity assertion."""

    header_name = Unicode(
        "X-Hubgate-Assertion",
        config=True,
        help="Request header that carries the worker's signed assertion.",
    )

    issuer = Unicode(
        "",
        config=True,
        help="The worker's public origin, e.g. https://gate.example.org. "
        "Must equal the assertion's `iss` claim. Required.",
    )

    audience = Unicode(
        "",
        config=True,
        help="The hub origin the worker proxies to, e.g. https://hub.internal:8000. "
        "Must be in the assertion's `aud` claim. Required.",
    )

    jwks_url = Unicode(
        "",
        config=True,
        help="URL of the worker's JWKS. Default: <issuer>/_hubgate/jwks.json",
    )

    algorithms = List(
        Unicode(),
        default_value=list(SUPPORTED_ALGORITHMS),
        config=True,
        help="Accepted signature algorithms: a subset of ES256 and EdDSA.",
    )

    @validate("algorithms")
    def _validate_algorithms(self, proposal):
        value = list(proposal["value"])
        bad = [a for a in value if a not in SUPPORTED_ALGORITHMS]
        if bad or not value:
            raise ValueError(
                f"algorithms must be a non-empty subset of {SUPPORTED_ALGORITHMS}, got {value}"
            )
        return value

    jwks_cache_ttl = Float(300.0, config=True, help="Seconds a fetched JWKS is used before it is fetched again.")
    jwks_refetch_interval = Float(
        30.0,
        config=True,
        help="An unknown `kid` forces a JWKS refetch at most once per this many seconds.",
    )
    jwks_stale_max_age = Float(
        86400.0,
        config=True,
        help="When a JWKS fetch fails, keep using the last set for up to this many seconds.",
    )
    jwks_fetch_timeout = Float(5.0, config=True, help="Timeout (s) of one JWKS fetch.")
    jwks_max_bytes = Integer(65536, config=True, help="Largest JWKS response accepted.")

    jwks_fetcher = Callable(
        None,
        allow_none=True,
        config=True,
        help="Callable(url) -> dict or awaitable dict returning the JWKS. "
        "Default: an HTTP GET with tornado (timeout, size cap, no redirects).",
    )

    leeway = Float(5.0, config=True, help="Clock skew (s) allowed for exp/iat/nbf.")
    max_assertion_lifetime = Integer(
        60, config=True, help="Largest accepted exp - iat of an assertion, in seconds."
    )

    jti_store_max_entries = Integer(
        DEFAULT_MAX_ENTRIES,
        config=True,
        help="Most used assertion ids (jti) remembered at once, per hub process. "
        "Each is kept until its exp + leeway has passed; when every slot holds an "
        "unexpired one, new assertions are refused (503) rather than an id forgotten.",
    )

    @validate("jti_store_max_entries")
    def _validate_jti_store_max_entries(self, proposal):
        if proposal["value"] < 1:
            raise ValueError("jti_store_max_entries must be at least 1")
        return proposal["value"]

    @default("allow_all")
    def _default_allow_all(self):
        # The worker applies the allow rules before it signs an assertion.
        # If the operator lists allowed_users here as well, honour them.
        return not self.allowed_users

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._jwks_cache: Optional[JwksCache] = None
        self._jti_store: Optional[JtiStore] = None
        if not self.issuer or not self.audience:
            self.log.error(
                "HubgateAuthenticator: c.HubgateAuthenticator.issuer and .audience must be set;"
                " every login will fail with 500 until they are."
            )

    # -- configuration helpers -------------------------------------------------

    @staticmethod
    def _origin(value: str) -> str:
        return value.rstrip("/")

    def effective_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        return self._origin(self.issuer) + "/_hubgate/jwks.json"

    @property
    def jwks(self) -> JwksCache:
        if self._jwks_cache is None:
            fetcher = self.jwks_fetcher or make_tornado_fetcher(
                timeout=self.jwks_fetch_timeout, max_bytes=self.jwks_max_bytes
            )
            self._jwks_cache = JwksCache(
                url=self.effective_jwks_url,
                fetcher=fetcher,
                ttl=self.jwks_cache_ttl,
                refetch_interval=self.jwks_refetch_interval,
                stale_max_age=self.jwks_stale_max_age,
                log=self.log,
            )
        return self._jwks_cache

    @property
    def jti_store(self) -> JtiStore:
        """Used assertion ids of this hub process (JupyterHub runs one process)."""
        if self._jti_store is None:
            self._jti_store = JtiStore(max_entries=self.jti_store_max_entries)
        return self._jti_store

    def login_path_of(self, handler) -> str:
        """The path the assertion must name: the hub's login URL, and the
        request must have arrived at it.

        ``get_handlers`` registers ``/login``, which JupyterHub mounts under the
        hub prefix, i.e. at ``url_path_join(hub.base_url, 'login')`` (``/hub/login``,
        or ``/jh/hub/login`` with ``c.JupyterHub.base_url = '/jh/'``). Other hub
        handlers call ``authenticate()`` too (``POST /hub/api/users/:name/tokens``
        without a token does), so the request's own path is checked as well.
        """
        base_url = getattr(getattr(handler, "hub", None), "base_url", None)
        path = getattr(getattr(handler, "request", None), "path", None)
        if not isinstance(base_url, str) or not base_url:
            raise AssertionRefused("not presented to the hub's login handler")
        login_path = url_path_join(base_url, "login")
        if path != login_path:
            # e.g. the token API, which turns any refusal into a bare 403: log why
            shown = path[:200] if isinstance(path, str) else path
            why = f"presented at {shown!r}, only accepted at {login_path!r}"
            self.log.warning("HubgateAuthenticator: identity assertion refused: %s", why)
            raise AssertionRefused(why)
        return login_path

    # -- verification -------------------------------------------------------------

    def _read_header(self, handler) -> str:
        headers = handler.request.headers
        if hasattr(headers, "get_list"):
            values = headers.get_list(self.header_name)
        else:
            value = headers.get(self.header_name)
            values = [] if value is None else [value]
        if not values:
            raise AssertionRefused("missing")
        if len(values) > 1:
            raise AssertionRefused("header sent more than once")
        return values[0].strip()

    async def verify_assertion(self, token: str, *, login_path: str) -> dict:
        """Verify a compact JWT from the worker and return its claims.

        ``login_path`` is the path the assertion must name in its
        ``login_path`` claim (see ``login_path_of``). Its ``jti`` is recorded
        as used only once the signature and every claim have verified, so a
        forged or refused token never burns an id.

        Raises AssertionRefused (401) for anything that does not verify or was
        used before, HTTPError 502 when the JWKS cannot be had, 503 when the
        used-jti store is full of unexpired ids, 500 on misconfiguration.
        """
        if not self.issuer or not self.audience:
            raise web.HTTPError(500, "HubgateAuthenticator issuer/audience not configured")
        if not token:
            raise AssertionRefused("missing")
        if len(token) > MAX_ASSERTION_BYTES:
            raise AssertionRefused("too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AssertionRefused("malformed")
        alg = header.get("alg")
        if alg not in self.algorithms or alg not in SUPPORTED_ALGORITHMS:
            raise AssertionRefused(f"algorithm {alg!r} not accepted")
        if "crit" in header:
            raise AssertionRefused("unsupported critical header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AssertionRefused("no kid")

        try:
            key = await self.jwks.get_key(kid, alg)
        except JwksUnavailable:
            raise web.HTTPError(502, "Cannot fetch the gateway's signing keys")
        if key is None:
            raise AssertionRefused("unknown key")

        iss = self._origin(self.issuer)
        aud = self._origin(self.audience)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=[aud, aud + "/"],
                issuer=[iss, iss + "/"],
                leeway=self.leeway,
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub", "jti", "login_path"],
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_iat": True,
                    "verify_nbf": True,
                    "verify_aud": True,
                    "verify_iss": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AssertionRefused("expired")
        except jwt.ImmatureSignatureError:
            raise AssertionRefused("not yet valid")
        except jwt.InvalidAudienceError:
            raise AssertionRefused("wrong audience")
        except jwt.InvalidIssuerError:
            raise AssertionRefused("wrong issuer")
        except jwt.MissingRequiredClaimError as e:
            raise AssertionRefused(f"missing claim {e.claim}")
        except jwt.InvalidSignatureError:
            raise AssertionRefused("bad signature")
        except jwt.exceptions.InvalidJTIError:
            raise AssertionRefused("jti not a string")
        except jwt.PyJWTError as e:
            raise AssertionRefused(f"invalid ({type(e).__name__})")

        self._check_claims(claims, login_path)
        self._use_jti(claims)
        return claims

    def _use_jti(self, claims: dict) -> None:
        # after every other check: exp is verified, so exp + leeway >= now
        deadline = float(claims["exp"]) + self.leeway
        try:
            first_use = self.jti_store.use(claims["jti"], deadline)
        except JtiStoreFull:
            self.log.error(
                "HubgateAuthenticator: %d unexpired assertion ids in memory"
                " (jti_store_max_entries); refusing logins until some expire",
                len(self.jti_store),
            )
            raise web.HTTPError(503, "Too many recent logins; try again in a minute")
        if not first_use:
            raise AssertionRefused("assertion already used")

    def _check_claims(self, claims: dict, login_path: str) -> None:
        iat, exp = claims["iat"], claims["exp"]
        for name, value in (("iat", iat), ("exp", exp)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AssertionRefused(f"{name} not a number")
        if exp - iat > self.max_assertion_lifetime:
            raise AssertionRefused("lifetime longer than allowed")
        if exp <= iat:
            raise AssertionRefused("exp not after iat")
        jti = claims["jti"]
        if not isinstance(jti, str) or not _JTI.fullmatch(jti):
            raise AssertionRefused("jti not URL-safe base64 of 16 to 256 characters")
        claimed_path = claims["login_path"]
        if not isinstance(claimed_path, str):
            raise AssertionRefused("login_path not a string")
        if claimed_path != login_path:
            raise AssertionRefused(
                f"login_path {claimed_path!r} is not this hub's login path {login_path!r}"
            )
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub.strip():
            raise AssertionRefused("sub not a non-empty string")
        groups = claims.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise AssertionRefused("groups not a list of strings")
        if not isinstance(claims.get("admin", False), bool):
            raise AssertionRefused("admin not a boolean")
        if claims.get("method") not in METHODS:
            raise AssertionRefused("method not one of oauth, lti")
        email = claims.get("email")
        if email is not None and not isinstance(email, str):
            raise AssertionRefused("email not a string")
        auth_state = claims.get("auth_state")
        if auth_state is not None and not isinstance(auth_state, dict):
            raise AssertionRefused("auth_state not an object")

    # -- Authenticator API --------------------------------------------------------

    async def authenticate(self, handler, data=None) -> dict:
        token = self._read_header(handler)
        login_path = self.login_path_of(handler)
        claims = await self.verify_assertion(token, login_path=login_path)
        name = claims["sub"]
        admin = claims.get("admin", False) or (
            self.normalize_username(name) in self.admin_users
        )
        return {
            "name": name,
            "admin": admin,
            "groups": list(claims.get("groups", [])),
            "auth_state": {
                "method": claims["method"],
                "email": claims.get("email"),
                "auth_state": claims.get("auth_state"),
                "groups": list(claims.get("groups", [])),
                "admin": claims.get("admin", False),
                "claims": dict(claims),
            },
        }

    def get_handlers(self, app):
        # mounted under the hub prefix: {base_url}hub/login (see login_path_of)
        return [("/login", HubgateLoginHandler)]

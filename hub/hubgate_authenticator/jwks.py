"""In-memory cache of the worker's JSON Web Key Set.

Rules (mirroring the worker's own JWKS handling, see DESIGN.md):

- the set is fetched on first use and again once it is older than ``ttl``;
- a ``kid`` that is not in the set forces one refetch, at most once per
  ``refetch_interval`` seconds (the fetch that first filled the cache does not
  start that clock, so a key rotated seconds after start-up is still found);
- when a fetch fails, a previously fetched set is used for up to
  ``stale_max_age`` seconds and the failure is logged;
- keys are filtered by ``kid``, ``use`` (absent or ``sig``), ``alg`` (absent or
  equal to the token's algorithm) and key type / curve; a key that carries
  private material is refused.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from typing import Any, Awaitable, Callable, Optional, Union

from jwt import PyJWK
from jwt.exceptions import PyJWKError

FetchResult = Union[dict, Awaitable[dict]]
Fetcher = Callable[[str], FetchResult]

# alg -> (kty, crv) the key must have
KEY_TYPES = {
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
}

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


class JwksUnavailable(Exception):
    """The key set could not be fetched and no usable copy is cached."""


def make_tornado_fetcher(timeout: float = 5.0, max_bytes: int = 65536) -> Fetcher:
    """Default fetcher: GET the URL with tornado's simple client.

    No redirects are followed, the body is capped at ``max_bytes`` and must be a
    JSON object.
    """

    async def fetch(url: str) -> dict:
        from tornado.httpclient import HTTPRequest
        from tornado.simple_httpclient import SimpleAsyncHTTPClient

        client = SimpleAsyncHTTPClient(force_instance=True, max_body_size=max_bytes)
        try:
            response = await client.fetch(
                HTTPRequest(
                    url,
                    method="GET",
                    headers={"Accept": "application/json"},
                    connect_timeout=timeout,
                    request_timeout=timeout,
                    follow_redirects=False,
                ),
                raise_error=True,
            )
        finally:
            client.close()
        if len(response.body) > max_bytes:
            raise ValueError("JWKS response too large")
        data = json.loads(response.body)
        return data

    return fetch


class JwksCache:
    def __init__(
        self,
        url: Callable[[], str],
        fetcher: Fetcher,
        ttl: float = 300.0,
        refetch_interval: float = 30.0,
        stale_max_age: float = 86400.0,
        clock: Callable[[], float] = time.monotonic,
        log: Optional[logging.Logger] = None,
    ):
        self._url = url
        self._fetcher = fetcher
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.stale_max_age = stale_max_age
        self._clock = clock
        self.log = log or logging.getLogger(__name__)
        self._keys: Optional[list] = None
        self._fetched_at: Optional[float] = None
        self._forced_at: Optional[float] = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def _fetch(self) -> list:
        url = self._url()
        self.fetch_count += 1
        result: Any = self._fetcher(url)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, dict) or not isinstance(result.get("keys"), list):
            raise ValueError("JWKS is not an object with a 'keys' list")
        return [k for k in result["keys"] if isinstance(k, dict)]

    async def _refresh(self, reason: str) -> bool:
        """Fetch the set; returns True on success. Keeps the old set on failure."""
        try:
            keys = await self._fetch()
        except Exception as e:  # network, HTTP status, JSON, shape
            self.log.error("hubgate: JWKS fetch (%s) from %s failed: %s", reason, self._url(), e)
            return False
        self._keys = keys
        self._fetched_at = self._clock()
        return True

    def _usable(self) -> bool:
        if self._keys is None or self._fetched_at is None:
            return False
        return self._clock() - self._fetched_at <= self.stale_max_age

    def _fresh(self) -> bool:
        return self._keys is not None and self._clock() - self._fetched_at < self.ttl

    def _find(self, kid: str, alg: str) -> Optional[PyJWK]:
        kty, crv = KEY_TYPES[alg]
        for jwk in self._keys or ():
            if jwk.get("kid") != kid:
                continue
            if jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("alg", alg) != alg:
                continue
            if jwk.get("kty") != kty or jwk.get("crv") != crv:
                continue
            if any(m in jwk for m in PRIVATE_MEMBERS):
                self.log.error(
                    "hubgate: JWKS key %r carries private key material; refusing it", kid
                )
                continue
            try:
                return PyJWK(jwk, algorithm=alg)
            except (PyJWKError, ValueError, TypeError) as e:
                self.log.warning("hubgate: JWKS key %r unusable: %s", kid, e)
        return None

    async def get_key(self, kid: str, alg: str) -> Optional[PyJWK]:
        """Return the verification key for ``kid``/``alg``, or None if unknown.

        Raises JwksUnavailable when no usable key set can be had.
        """
        if alg not in KEY_TYPES:
            return None
        async with self._lock:
            fetched_now = False
            if not self._fresh():
                fetched_now = await self._refresh("expired" if self._keys is not None else "initial")
                if not fetched_now:
                    if not self._usable():
                        raise JwksUnavailable("JWKS unavailable")
                    self.log.warning("hubgate: using stale JWKS after a failed fetch")
            key = self._find(kid, alg)
            if key is not None or fetched_now:
                # just fetched: a second fetch would show the same set
                return key
            now = self._clock()
            if self._forced_at is not None and now - self._forced_at < self.refetch_interval:
                return None
            self._forced_at = now
            if not await self._refresh(f"unknown kid {kid!r}"):
                if not self._usable():
                    raise JwksUnavailable("JWKS unavailable")
                return None
            return self._find(kid, alg)

#!/usr/bin/env python3
"""A real LTI 1.3 platform (LMS) on 127.0.0.1 for the e2e tests, built on the
`lti1p3platform` package: its Registration signs the launches (RS256, kid =
the key's RFC 7638 thumbprint), its OIDCLogin builds the third-party login
initiation, its LTIAdvantageMessageLaunch builds resource-link and
deep-linking launches, and its platform config validates the tool's deep
linking response against the tool's JWKS URL (the worker's /hub/lti13/jwks).

Several platforms live in one process, each under /p/<name>/ with its own
issuer (http://127.0.0.1:<port>/p/<name>), client id, deployment id and key.

  GET  /p/<n>/start?user=&kind=resource|deep&roles=&target=   → 302 to the tool's login initiation
  GET  /p/<n>/authorize?<OIDC auth request>                   → 200 page auto-posting id_token+state (form_post)
  GET  /p/<n>/jwks                                            → the platform's key set (counted; 503 when down)
  POST /p/<n>/deep_link_return   (form JWT)                   → 200 JSON {content_items} when the JWT verifies
  GET  /p/<n>/stats                                           → {jwks_fetches, kid, down}
  POST /p/<n>/control?action=rotate|down|up|reset             → the same stats after the action

Started as  lti-platform.py --port P --tool http://127.0.0.1:W --platform name:client:deployment ...
It prints one JSON line {"ready": true, "port": P} on stdout once it listens.
Loopback only; it stops on SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import html
import json
import signal
import sys
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request

ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


def new_key() -> tuple[str, str]:
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = k.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        k.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class CachedRegistration(Registration):
    """lti1p3platform parses the PEM private key twice per launch (for the kid
    and for the signature), about 30 ms each; a real platform keeps it loaded.
    Same signatures, same kid; the parsed key is cached per PEM."""

    _cache: tuple[str, t.Any, str | None] | None = None

    def _loaded(self) -> tuple[t.Any, str | None]:
        pem = self.get_platform_private_key()
        if self._cache is None or self._cache[0] is not pem:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            self._cache = (pem, key, super().get_kid())
        return self._cache[1], self._cache[2]

    def get_kid(self) -> str | None:
        return self._loaded()[1]

    def platform_encode_and_sign(self, payload: dict[str, t.Any], expiration: int | None = None) -> str:
        key, kid = self._loaded()
        return Registration.encode_and_sign(payload, key, {"kid": kid} if kid else None, expiration=expiration)


class PlatformConfig(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: t.Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        return self._registration


class OIDCLogin(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: t.Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class DictRequest(Request):
    def build_metadata(self, request: t.Any) -> t.Any:
        return request


class MessageLaunch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: t.Dict[str, t.Any], **kwargs: t.Any) -> t.Any:
        return launch_data


class Platform:
    def __init__(self, name: str, client_id: str, deployment_id: str, base: str, tool: str):
        self.name = name
        self.issuer = f"{base}/p/{name}"
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.tool = tool
        self.lock = threading.Lock()
        self.jwks_fetches = 0
        self.down = False
        self.previous_public: str | None = None
        # login_hint → what the launch should carry (set by /start)
        self.pending: dict[str, dict[str, t.Any]] = {}
        self.counter = 0
        private, public = new_key()
        self.registration = (
            CachedRegistration()
            .set_iss(self.issuer)
            .set_client_id(client_id)
            .set_deployment_id(deployment_id)
            .set_oidc_login_url(f"{tool}/hub/lti13/oauth_login")
            .set_launch_url(f"{tool}/hub/")
            .set_deeplink_launch_url(f"{tool}/hub/lti13/oauth_callback")
            .set_tool_key_set_url(f"{tool}/hub/lti13/jwks")
            .set_platform_private_key(private)
            .set_platform_public_key(public)
        )
        self.config = PlatformConfig(registration=self.registration)

    def kid(self) -> str | None:
        return self.registration.get_kid()

    def stats(self) -> dict[str, t.Any]:
        return {"jwks_fetches": self.jwks_fetches, "kid": self.kid(), "down": self.down, "issuer": self.issuer}

    def jwks(self) -> dict[str, t.Any]:
        keys = self.registration.get_jwks()
        if self.previous_public:
            keys = keys + [Registration.get_jwk(self.previous_public)]
        return {"keys": keys}

    def rotate(self) -> None:
        """A new signing key (new kid); the old public key stays published."""
        private, public = new_key()
        self.previous_public = self.registration.get_platform_public_key()
        self.registration.set_platform_private_key(private).set_platform_public_key(public)


PLATFORMS: dict[str, Platform] = {}


class Handler(BaseHTTPRequestHandler):
    server_version = "lti-platform/1"

    def log_message(self, fmt: str, *args: t.Any) -> None:  # quiet
        if VERBOSE:
            sys.stderr.write("[lti-platform] " + (fmt % args) + "\n")

    def send(self, status: int, body: str | bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def json(self, status: int, obj: t.Any, headers: dict | None = None) -> None:
        self.send(status, json.dumps(obj), "application/json", headers)

    def route(self) -> tuple[Platform | None, str, dict[str, str]]:
        u = urlparse(self.path)
        parts = u.path.strip("/").split("/")
        query = dict(parse_qsl(u.query, keep_blank_values=True))
        if len(parts) == 3 and parts[0] == "p" and parts[1] in PLATFORMS:
            return PLATFORMS[parts[1]], parts[2], query
        return None, u.path, query

    def form(self) -> dict[str, str]:
        n = int(self.headers.get("Content-Length") or 0)
        return dict(parse_qsl(self.rfile.read(n).decode(), keep_blank_values=True))

    def do_GET(self) -> None:  # noqa: N802
        p, action, q = self.route()
        if p is None and action == "/":
            return self.send(200, course_page(), "text/html; charset=utf-8")
        if p is None:
            return self.json(404, {"error": "no such platform"})
        if action == "jwks":
            with p.lock:
                p.jwks_fetches += 1
                down = p.down
            if down:
                return self.json(503, {"error": "platform down"})
            return self.json(200, p.jwks(), {"Cache-Control": "max-age=300"})
        if action == "stats":
            return self.json(200, p.stats())
        if action == "start":
            return self.start(p, q)
        if action == "authorize":
            return self.authorize(p, q)
        return self.json(404, {"error": "unknown action"})

    def do_POST(self) -> None:  # noqa: N802
        p, action, q = self.route()
        if p is None:
            return self.json(404, {"error": "no such platform"})
        if action == "control":
            what = q.get("action")
            with p.lock:
                if what == "rotate":
                    p.rotate()
                elif what == "down":
                    p.down = True
                elif what == "up":
                    p.down = False
                elif what == "reset":
                    p.jwks_fetches = 0
                else:
                    return self.json(400, {"error": f"unknown action {what!r}"})
            return self.json(200, p.stats())
        if action == "deep_link_return":
            return self.deep_link_return(p, self.form())
        return self.json(404, {"error": "unknown action"})

    # -- the platform's side of the flow ---------------------------------

    def start(self, p: Platform, q: dict[str, str]) -> None:
        """An instructor or student clicks the tool link in the course."""
        user = q.get("user", "student1")
        with p.lock:
            p.counter += 1
            hint = f"{q.get('kind', 'resource')}-{p.counter}"
            p.pending[hint] = {
                "user": user,
                "kind": q.get("kind", "resource"),
                "roles": [ROLE + r for r in q.get("roles", "Learner").split(",") if r],
                "target": q.get("target"),
                "email": q.get("email", f"{user}@example.edu"),
            }
        login = OIDCLogin(None, p.config)
        login.set_lti_message_hint(hint=hint)
        if q.get("kind") == "deep":
            login.set_deeplinking_launch_url()
        elif q.get("target"):
            login.set_launch_url(q["target"])
        url = login.initiate_login(user)
        self.send(302, b"", "text/plain", {"Location": url})

    def authorize(self, p: Platform, q: dict[str, str]) -> None:
        """The OIDC authentication request from the tool (IMS Security Framework 5.1.1.2)."""
        problems = []
        for k, v in {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none"}.items():
            if q.get(k) != v:
                problems.append(f"{k} must be {v!r}, got {q.get(k)!r}")
        if q.get("redirect_uri") != f"{p.tool}/hub/lti13/oauth_callback":
            problems.append(f"redirect_uri {q.get('redirect_uri')!r} is not registered")
        with p.lock:
            launch = p.pending.pop(q.get("lti_message_hint", ""), None)
        if launch is None:
            problems.append("unknown lti_message_hint")
        elif q.get("login_hint") != launch["user"]:
            problems.append("login_hint does not match")
        if problems:
            return self.json(400, {"error": "invalid_request", "problems": problems})
        assert launch is not None
        ml = MessageLaunch(DictRequest({"method": "GET", "get_data": q, "form_data": {}}), p.config)
        ml.set_user_data(launch["user"], launch["roles"], full_name=launch["user"].title(), email_address=launch["email"])
        ml.set_launch_context_claim("course-101", context_types=["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"], context_title="Data Science 101", context_label="DS101")
        ml.set_custom_parameters_claim({"uname": launch["user"]})
        if launch["kind"] == "deep":
            ml.set_dl(f"{p.issuer}/deep_link_return", title="Pick a notebook", accept_types={"ltiResourceLink"}, extra_data={"course": "course-101"})
        else:
            ml.set_resource_link_claim(f"rl-{p.name}-1", title="Week 1 notebook")
            if launch["target"]:
                ml.set_launch_url(launch["target"])
        data = ml.lti_launch()
        page = (
            "<!doctype html><html><body>"
            f'<form id="f" method="post" action="{html.escape(data["launch_url"])}">'
            f'<input type="hidden" name="id_token" value="{html.escape(data["id_token"])}">'
            f'<input type="hidden" name="state" value="{html.escape(data["state"])}">'
            "</form><script>document.getElementById('f').submit()</script></body></html>"
        )
        self.send(200, page, "text/html; charset=utf-8")

    def deep_link_return(self, p: Platform, form: dict[str, str]) -> None:
        """The tool's LtiDeepLinkingResponse, verified with the tool's JWKS (fetched from the worker)."""
        import jwt as pyjwt

        try:
            items = p.config.validate_deeplinking_resp({"JWT": form.get("JWT", "")})
            # lti1p3platform turns off aud checking; a platform must not.
            claims = pyjwt.decode(form["JWT"], options={"verify_signature": False})
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if p.issuer not in auds or claims.get("iss") != p.client_id:
                raise ValueError(f"iss/aud mismatch: iss={claims.get('iss')!r} aud={aud!r}")
            dep = claims.get("https://purl.imsglobal.org/spec/lti/claim/deployment_id")
            if dep != p.deployment_id:
                raise ValueError(f"deployment_id {dep!r}")
            header = pyjwt.get_unverified_header(form["JWT"])
        except Exception as exc:  # the test shows why
            return self.json(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        self.json(200, {"ok": True, "content_items": items, "claims": claims, "kid": header.get("kid")})


def course_page() -> str:
    """The demo LMS's course page (`npm run dev`): each button launches the course through the worker."""
    rows = []
    for n, p in PLATFORMS.items():
        for label, q in [
            ("Open JupyterHub as student1 (learner)", {"user": "student1"}),
            ("Open JupyterHub as student2 (learner)", {"user": "student2"}),
            ("Open JupyterHub as teacher (instructor, admin)", {"user": "teacher", "roles": "Instructor"}),
            ("Add a JupyterHub link (deep linking, instructor)", {"user": "teacher", "roles": "Instructor", "kind": "deep"}),
        ]:
            rows.append(f'<p><a class="b" href="/p/{n}/start?{html.escape(urlencode(q))}">{html.escape(label)}</a></p>')
        rows.append(f"<p><small>issuer {html.escape(p.issuer)} · client_id {html.escape(p.client_id)} · deployment {html.escape(p.deployment_id)} · key set fetched {p.jwks_fetches}×</small></p>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Demo LMS</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}"
        "a.b{display:inline-block;padding:.5rem 1rem;background:#2c6fbb;color:#fff;border-radius:4px;text-decoration:none}"
        "</style></head><body><h1>Demo LMS · Data Science 101</h1>"
        "<p>An LTI 1.3 platform (lti1p3platform). Each button starts a launch: login initiation at the worker, "
        "a signed id_token posted back, then the hub.</p>" + "".join(rows) + "</body></html>"
    )


VERBOSE = False


def main() -> None:
    global VERBOSE
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tool", required=True, help="the worker's origin, e.g. http://127.0.0.1:8787")
    ap.add_argument("--platform", action="append", required=True, help="name:client_id:deployment_id")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for spec in args.platform:
        name, client_id, deployment_id = spec.split(":")
        PLATFORMS[name] = Platform(name, client_id, deployment_id, base, args.tool.rstrip("/"))

    def stop(*_: t.Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"ready": True, "port": server.server_address[1],
                      "platforms": {n: p.stats() | {"client_id": p.client_id, "deployment_id": p.deployment_id} for n, p in PLATFORMS.items()}}), flush=True)
    started = time.time()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    if VERBOSE:
        sys.stderr.write(f"[lti-platform] stopped after {time.time() - started:.1f}s\n")


if __name__ == "__main__":
    main()

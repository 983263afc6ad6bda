//! The end of an OpenID Connect session: Back-Channel Logout 1.0 (the
//! provider's logout token revokes sessions, everywhere) and RP-Initiated
//! Logout 1.0 (the worker's logout ends the session at the provider).

mod common;
use common::*;
use hubgate::app::{self, App, Outcome};
use hubgate::http::{IncomingRequest, Method, Response};
use serde_json::{json, Value};
use std::rc::Rc;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const BCL: &str = "/_hubgate/oidc/backchannel_logout";

/// An IdP whose id_tokens carry `sid` (the provider's session).
fn idp(io: &TestIo, sid: &'static str) -> Rc<Provider> {
    let p = Rc::new(Provider::new("k1"));
    let signer = p.clone();
    serve_idp(io, vec![p.jwk()], move |nonce| {
        let mut c = standard_claims(nonce, "alice");
        c["sid"] = json!(sid);
        signer.sign(c, T0, T0 + 300)
    });
    p
}

/// Log alice in; the `Cookie` header value of her session.
fn login(app: &App, io: &TestIo) -> String {
    let r = login_round_trip(app, io, "/hub/", |cb| cb);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    session_set_cookie(&r)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn with(cookie: &str, path: &str) -> IncomingRequest {
    request(
        Method::Get,
        path,
        &[("Cookie", cookie), ("Accept", "text/html")],
    )
}

fn reaches_hub(app: &App, io: &TestIo, cookie: &str) -> bool {
    matches!(
        block_on(app::handle(app, with(cookie, "/user/alice/lab"), io)),
        Outcome::Proxy(_)
    )
}

fn logout_token_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": "hubgate", "sub": "u-1", "sid": "idp-s1",
        "jti": "jti-1", "events": { EVENT: {} },
    })
}

fn post_logout_token(app: &App, io: &TestIo, token: &str) -> Response {
    let mut req = request(
        Method::Post,
        BCL,
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    req.body = Some(format!("logout_token={}", urlenc(token)).into_bytes());
    respond(app, req, io)
}

fn signed(p: &Provider, claims: Value) -> String {
    p.sign(claims, T0, T0 + 120)
}

#[test]
fn a_logout_token_naming_the_provider_session_revokes_it_and_nothing_more_reaches_the_hub() {
    let (app, io) = (app(&[]), TestIo::new());
    let p = idp(&io, "idp-s1");
    let cookie = login(&app, &io);
    assert!(reaches_hub(&app, &io, &cookie));
    let r = post_logout_token(&app, &io, &signed(&p, logout_token_claims()));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers.get("cache-control"), Some("no-store"));
    let hub_calls = io.hub_calls.borrow().len();
    match block_on(app::handle(&app, with(&cookie, "/user/alice/lab"), &io)) {
        Outcome::Respond(r) => {
            assert_eq!(r.status, 302, "a navigation goes to the login page");
            assert!(r.location().unwrap().contains("/hub/login"));
        }
        Outcome::Proxy(p) => panic!("a revoked session was proxied to {}", p.url),
    }
    let api = request(
        Method::Get,
        "/hub/api/user",
        &[("Cookie", &cookie), ("Accept", "application/json")],
    );
    assert_eq!(respond(&app, api, &io).status, 401);
    assert_eq!(
        io.hub_calls.borrow().len(),
        hub_calls,
        "nothing reached the hub"
    );
    assert!(io.logged("backchannel_logout"));
}

#[test]
fn another_provider_session_of_the_same_user_stays_signed_in() {
    let (app, io) = (app(&[]), TestIo::new());
    let p = idp(&io, "idp-s2");
    let other = login(&app, &io);
    assert_eq!(
        post_logout_token(&app, &io, &signed(&p, logout_token_claims())).status,
        200
    );
    assert!(reaches_hub(&app, &io, &other));
}

#[test]
fn a_logout_token_with_only_sub_ends_every_earlier_session_of_the_user_not_a_later_login() {
    let (app, io) = (app(&[]), TestIo::new());
    let p = idp(&io, "idp-s1");
    let first = login(&app, &io);
    io.advance(5);
    let mut c = logout_token_claims();
    c.as_object_mut().unwrap().remove("sid");
    let token = p.sign(c, T0 + 5, T0 + 120);
    assert_eq!(post_logout_token(&app, &io, &token).status, 200);
    assert!(!reaches_hub(&app, &io, &first));
    io.advance(1);
    let later = login(&app, &io);
    assert!(
        reaches_hub(&app, &io, &later),
        "a login after the logout works"
    );
}

#[test]
fn another_isolate_sees_the_revocation_through_kv_within_the_recheck_interval() {
    let io = TestIo::new();
    let (a, b) = (app(&[]), app(&[]));
    let p = idp(&io, "idp-s1");
    let cookie = login(&a, &io);
    assert!(reaches_hub(&b, &io, &cookie), "b checked: not revoked");
    assert_eq!(
        post_logout_token(&a, &io, &signed(&p, logout_token_claims())).status,
        200
    );
    assert!(
        !reaches_hub(&a, &io, &cookie),
        "at once where the token landed"
    );
    io.advance(31);
    assert!(!reaches_hub(&b, &io, &cookie), "b re-read KV after 30 s");
    // With SESSION_RECHECK_INTERVAL=0 every request reads KV.
    let io = TestIo::new();
    let (a, b) = (
        app(&[("SESSION_RECHECK_INTERVAL", "0")]),
        app(&[("SESSION_RECHECK_INTERVAL", "0")]),
    );
    let p = idp(&io, "idp-s1");
    let cookie = login(&a, &io);
    assert!(reaches_hub(&b, &io, &cookie));
    post_logout_token(&a, &io, &signed(&p, logout_token_claims()));
    assert!(
        !reaches_hub(&b, &io, &cookie),
        "b refused on its next request"
    );
}

/// Each bad logout token: 400, and the session it names still works.
fn refused(name: &str, make: impl Fn(&Provider) -> String) {
    let (app, io) = (app(&[]), TestIo::new());
    let p = idp(&io, "idp-s1");
    let cookie = login(&app, &io);
    let r = post_logout_token(&app, &io, &make(&p));
    assert_eq!(
        r.status,
        400,
        "{name}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        reaches_hub(&app, &io, &cookie),
        "{name}: nothing was revoked"
    );
}

fn claims_with(edit: impl Fn(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = logout_token_claims();
    edit(c.as_object_mut().unwrap());
    c
}

/// `refused`, for a token the genuine key signs with edited claims.
fn refused_with(name: &str, edit: impl Fn(&mut serde_json::Map<String, Value>)) {
    let claims = claims_with(edit);
    refused(name, |p| signed(p, claims.clone()));
}

#[test]
fn refuses_a_logout_token_from_another_issuer() {
    refused_with("iss", |c| {
        c.insert("iss".into(), json!("https://evil.example"));
    });
}

#[test]
fn refuses_a_logout_token_for_another_client() {
    refused_with("aud", |c| {
        c.insert("aud".into(), json!("someone-else"));
    });
}

#[test]
fn refuses_a_logout_token_without_the_backchannel_logout_event() {
    refused_with("no events", |c| {
        c.remove("events");
    });
    refused_with("other event", |c| {
        c.insert("events".into(), json!({"urn:other": {}}));
    });
    refused_with("event not an object", |c| {
        c.insert("events".into(), json!({ EVENT: "yes" }));
    });
}

#[test]
fn refuses_a_logout_token_carrying_a_nonce_and_an_id_token_posted_as_one() {
    refused_with("nonce", |c| {
        c.insert("nonce".into(), json!("n"));
    });
    refused("id_token", |p| {
        p.sign(standard_claims("n", "alice"), T0, T0 + 300)
    });
}

#[test]
fn refuses_a_logout_token_without_sub_and_sid_or_without_jti() {
    refused_with("no subject", |c| {
        c.remove("sub");
        c.remove("sid");
    });
    refused_with("no jti", |c| {
        c.remove("jti");
    });
}

#[test]
fn refuses_a_stale_future_or_expired_logout_token() {
    refused("old iat", |p| {
        p.sign(logout_token_claims(), T0 - 1000, T0 + 120)
    });
    refused("future iat", |p| {
        p.sign(logout_token_claims(), T0 + 1000, T0 + 2000)
    });
    refused("expired", |p| {
        p.sign(logout_token_claims(), T0 - 200, T0 - 100)
    });
}

#[test]
fn refuses_a_logout_token_signed_by_another_key_or_unsigned() {
    refused("other key", |_| {
        Provider::new("k1").sign(logout_token_claims(), T0, T0 + 120)
    });
    refused("alg none", |_| {
        use base64::Engine;
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let mut c = logout_token_claims();
        c["iat"] = json!(T0);
        format!("{}.{}.", e(&json!({"alg": "none"})), e(&c))
    });
}

#[test]
fn a_logout_token_is_good_once() {
    let (app, io) = (app(&[]), TestIo::new());
    let p = idp(&io, "idp-s9");
    let token = signed(&p, logout_token_claims());
    assert_eq!(post_logout_token(&app, &io, &token).status, 200);
    let r = post_logout_token(&app, &io, &token);
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("already used") || io.logged("already used"));
}

#[test]
fn the_endpoint_needs_a_token_a_post_openid_connect_and_kv() {
    let (a, io) = (app(&[]), TestIo::new());
    idp(&io, "idp-s1");
    let mut empty = request(Method::Post, BCL, &[]);
    empty.body = Some(b"logout_token=".to_vec());
    assert_eq!(respond(&a, empty, &io).status, 400);
    assert_eq!(respond(&a, get(BCL), &io).status, 405);
    let no_kv = app(&[("NONCES", "")]);
    assert_eq!(post_logout_token(&no_kv, &io, "x.y.z").status, 404);
    let plain = app(&[
        ("OIDC_ISSUER", ""),
        ("OAUTH2_AUTHORIZE_URL", "https://gh.example/authorize"),
        ("OAUTH2_TOKEN_URL", "https://gh.example/token"),
        ("OAUTH2_USERDATA_URL", "https://gh.example/user"),
    ]);
    assert_eq!(post_logout_token(&plain, &io, "x.y.z").status, 404);
}

// ---------- RP-Initiated Logout ----------

fn with_end_session(io: &TestIo) {
    io.route(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        |_| {
            json_response(
                200,
                json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": format!("{ISSUER}/auth"),
                    "token_endpoint": format!("{ISSUER}/token"),
                    "userinfo_endpoint": format!("{ISSUER}/me"),
                    "jwks_uri": format!("{ISSUER}/jwks"),
                    "end_session_endpoint": format!("{ISSUER}/session/end"),
                    "id_token_signing_alg_values_supported": ["ES256"],
                }),
            )
        },
    );
}

fn logout(app: &App, io: &TestIo, cookie: &str) -> Response {
    respond(app, with(cookie, "/hub/logout"), io)
}

#[test]
fn logout_goes_to_the_providers_end_session_endpoint_with_the_id_token_as_hint() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, "idp-s1");
    with_end_session(&io);
    let cookie = login(&app, &io);
    let id_token = io
        .kv
        .borrow()
        .iter()
        .find(|((_, k), _)| k.starts_with("session-id-token:"))
        .map(|(_, v)| v.clone())
        .expect("the id_token is kept for the session");
    let r = logout(&app, &io, &cookie);
    assert_eq!(r.status, 302);
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&format!("{ISSUER}/session/end?")), "{loc}");
    assert_eq!(query(loc, "id_token_hint"), Some(id_token));
    assert_eq!(query(loc, "client_id").as_deref(), Some("hubgate"));
    assert_eq!(
        query(loc, "post_logout_redirect_uri"),
        Some(format!("{ORIGIN}/_hubgate/signed_out"))
    );
    // The session cookie goes all the same.
    assert!(r
        .headers
        .get_all("set-cookie")
        .any(|c| c.starts_with("__Host-hubgate=;")
            || c.starts_with("__Host-hubgate=") && c.contains("Max-Age=0")));
    let back = respond(&app, get("/_hubgate/signed_out"), &io);
    assert_eq!(back.status, 200);
    assert!(String::from_utf8_lossy(&back.body).contains("signed out"));
}

#[test]
fn oauth_logout_redirect_url_still_wins_and_the_provider_logout_can_be_turned_off() {
    let io = TestIo::new();
    idp(&io, "idp-s1");
    with_end_session(&io);
    let a = app(&[(
        "OAUTH_LOGOUT_REDIRECT_URL",
        "https://portal.example.edu/bye",
    )]);
    let cookie = login(&a, &io);
    assert_eq!(
        logout(&a, &io, &cookie).location(),
        Some("https://portal.example.edu/bye")
    );
    let b = app(&[("OIDC_LOGOUT_AT_PROVIDER", "false")]);
    let cookie = login(&b, &io);
    let r = logout(&b, &io, &cookie);
    assert_eq!(r.status, 200, "the signed-out page");
}

#[test]
fn without_a_session_or_an_end_session_endpoint_logout_shows_the_signed_out_page() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, "idp-s1");
    with_end_session(&io);
    assert_eq!(respond(&app, get("/hub/logout"), &io).status, 200);
    let io = TestIo::new();
    idp(&io, "idp-s1"); // discovery without end_session_endpoint
    let cookie = login(&app, &io);
    assert_eq!(logout(&app, &io, &cookie).status, 200);
}

#[test]
fn an_end_session_endpoint_that_is_not_https_fails_discovery() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, "idp-s1");
    io.route(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        |_| {
            json_response(
                200,
                json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": format!("{ISSUER}/auth"),
                    "token_endpoint": format!("{ISSUER}/token"),
                    "jwks_uri": format!("{ISSUER}/jwks"),
                    "end_session_endpoint": "http://idp.example.org/session/end",
                }),
            )
        },
    );
    assert_eq!(respond(&app, get("/hub/oauth_login"), &io).status, 502);
}

#[test]
fn a_copy_of_the_cookie_kept_from_before_the_logout_is_refused_everywhere() {
    let io = TestIo::new();
    let (a, b) = (app(&[("OIDC_LOGOUT_AT_PROVIDER", "false")]), app(&[]));
    idp(&io, "idp-s1");
    let cookie = login(&a, &io);
    assert!(reaches_hub(&b, &io, &cookie));
    assert_eq!(logout(&a, &io, &cookie).status, 200);
    assert!(
        !reaches_hub(&a, &io, &cookie),
        "on the isolate that logged out"
    );
    io.advance(31);
    assert!(
        !reaches_hub(&b, &io, &cookie),
        "and on another, within the recheck"
    );
    // An LTI-style session without provider refs is covered the same way:
    // the revocation names the worker session itself.
}

#[test]
fn refusals_at_the_backchannel_endpoint_are_json_for_the_server_calling_it() {
    let (app, io) = (app(&[]), TestIo::new());
    let p = idp(&io, "idp-s1");
    let r = post_logout_token(
        &app,
        &io,
        &p.sign(standard_claims("n", "alice"), T0, T0 + 60),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.headers.get("content-type"), Some("application/json"));
}

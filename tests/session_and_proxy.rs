//! Sessions on the proxied path, and what reaches the hub.

mod common;
use common::*;
use hubgate::app;
use hubgate::cookies::Context;
use hubgate::http::{Method, UnixTime};
use hubgate::identity::{Identity, LoginMethod};
use hubgate::secret::SessionSecret;
use hubgate::session;
use hubgate::session::SessionSettings;

fn alice() -> Identity {
    Identity {
        username: "alice".into(),
        email: Some("alice@example.edu".into()),
        groups: vec!["students".into()],
        admin: false,
        method: LoginMethod::Oauth,
        auth_state: Default::default(),
    }
}

fn session_cookie(secret: &str, origin: &str, now: u64, max_age: u64) -> String {
    let cfg = SessionSettings {
        secret: SessionSecret::new(secret),
        previous: None,
        max_age,
        recheck: 30,
    };
    let set = session::cookie::mint(
        &cfg,
        &alice(),
        "sid-1",
        None,
        origin,
        true,
        Context::TopLevel,
        UnixTime(now),
    );
    set.split(';').next().unwrap().to_string()
}

fn with_session(
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
) -> hubgate::http::IncomingRequest {
    let mut r = request(Method::Get, path, headers);
    r.headers.push("Cookie", cookie.to_string());
    r
}

#[test]
fn valid_session_is_proxied_without_identity_headers() {
    let (a, io) = (app(&[]), TestIo::new());
    let plan = proxied(
        &a,
        with_session(
            "/user/alice/api/kernels?x=1",
            &session_cookie(SECRET, ORIGIN, T0, 3600),
            &[],
        ),
        &io,
    );
    assert_eq!(plan.url, format!("{HUB}/user/alice/api/kernels?x=1"));
    // A single-user server runs its user's code: identity never goes there.
    assert_eq!(plan.headers.get("x-forwarded-user"), None);
    assert_eq!(plan.headers.get("x-hubgate-assertion"), None);
}

#[test]
fn tampered_session_is_no_session() {
    let (a, io) = (app(&[]), TestIo::new());
    let mut c = session_cookie(SECRET, ORIGIN, T0, 3600);
    c.push('x');
    let r = respond(
        &a,
        with_session("/hub/home", &c, &[("Accept", "application/json")]),
        &io,
    );
    assert_eq!(r.status, 401);
    assert!(io.logged("session_rejected"));
}

#[test]
fn session_signed_with_another_secret_is_refused() {
    let (a, io) = (app(&[]), TestIo::new());
    let c = session_cookie(
        "another-secret-another-secret-another-secret",
        ORIGIN,
        T0,
        3600,
    );
    assert_eq!(
        respond(&a, with_session("/api/x", &c, &[]), &io).status,
        401
    );
}

#[test]
fn expired_session_redirects_a_navigation_to_login() {
    let (a, io) = (app(&[]), TestIo::new());
    let c = session_cookie(SECRET, ORIGIN, T0 - 7200, 3600);
    let r = respond(
        &a,
        with_session("/user/alice/lab?a=b", &c, &[("Sec-Fetch-Mode", "navigate")]),
        &io,
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location(),
        Some("/hub/login?next=%2Fuser%2Falice%2Flab%3Fa%3Db")
    );
}

#[test]
fn session_for_another_origin_is_refused() {
    let (a, io) = (app(&[]), TestIo::new());
    let c = session_cookie(SECRET, "https://other.example.edu", T0, 3600);
    assert_eq!(
        respond(&a, with_session("/api/x", &c, &[]), &io).status,
        401
    );
}

#[test]
fn previous_secret_still_works_and_the_cookie_is_reissued_with_the_current_one() {
    let old = "old-secret-old-secret-old-secret-old-secret";
    let (a, io) = (app(&[("SESSION_SECRET_PREVIOUS", old)]), TestIo::new());
    let plan = proxied(
        &a,
        with_session("/hub/home", &session_cookie(old, ORIGIN, T0, 3600), &[]),
        &io,
    );
    assert_eq!(plan.set_cookies.len(), 1);
    let reissued = plan.set_cookies[0].split(';').next().unwrap().to_string();
    assert!(
        plan.set_cookies[0].contains("Max-Age=3600"),
        "rotation keeps the original expiry"
    );
    // The new cookie verifies without the previous secret.
    let (b, io) = (app(&[]), TestIo::new());
    assert!(proxied(&b, with_session("/hub/home", &reissued, &[]), &io)
        .set_cookies
        .is_empty());
}

#[test]
fn api_request_without_session_gets_401_json() {
    let (a, io) = (app(&[]), TestIo::new());
    let r = respond(
        &a,
        request(
            Method::Post,
            "/user/alice/api/kernels",
            &[("Accept", "application/json")],
        ),
        &io,
    );
    assert_eq!(r.status, 401);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["login_url"], "/hub/login");
}

#[test]
fn authorization_header_passes_through_without_a_session_and_without_identity() {
    let (a, io) = (app(&[]), TestIo::new());
    let plan = proxied(
        &a,
        request(
            Method::Get,
            "/hub/api/users",
            &[
                ("Authorization", "token abc"),
                ("X-Forwarded-User", "admin"),
            ],
        ),
        &io,
    );
    assert_eq!(plan.headers.get("authorization"), Some("token abc"));
    assert_eq!(plan.headers.get("x-forwarded-user"), None);
}

#[test]
fn authorization_pass_through_can_be_turned_off() {
    let (a, io) = (app(&[("PASS_AUTHORIZATION", "false")]), TestIo::new());
    assert_eq!(
        respond(
            &a,
            request(
                Method::Get,
                "/hub/api/users",
                &[("Authorization", "token abc")]
            ),
            &io
        )
        .status,
        401
    );
}

#[test]
fn strips_identity_header_sent_with_underscores_and_any_case() {
    let (a, io) = (app(&[]), TestIo::new());
    let smuggled = [
        ("X-Forwarded-User", "admin"),
        ("x_forwarded_user", "admin"),
        ("X_FORWARDED_ADMIN", "true"),
        ("x-forwarded-groups", "admins"),
        ("X-Forwarded-Email", "admin@evil"),
        ("x_hubgate_assertion", "forged"),
        ("X-Real-IP", "1.2.3.4"),
        ("Forwarded", "for=1.2.3.4"),
        ("X-Scheme", "https"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Client-IP", "1.2.3.4"),
    ];
    let plan = proxied(
        &a,
        with_session(
            "/hub/home",
            &session_cookie(SECRET, ORIGIN, T0, 3600),
            &smuggled,
        ),
        &io,
    );
    let names: Vec<String> = plan
        .headers
        .0
        .iter()
        .map(|(k, _)| hubgate::proxy::normalised(k))
        .collect();
    for n in [
        "x-forwarded-user",
        "x-forwarded-admin",
        "x-forwarded-groups",
        "x-forwarded-email",
    ] {
        assert_eq!(
            names.iter().filter(|x| *x == n).count(),
            0,
            "{n} reached the hub"
        );
    }
    for n in ["x-scheme", "x-forwarded-port", "x-client-ip"] {
        assert!(
            !names.contains(&n.to_string()),
            "{n} passed through from the client"
        );
    }
    assert_eq!(
        plan.headers
            .get_all("x-forwarded-proto")
            .collect::<Vec<_>>(),
        ["https"]
    );
    assert_eq!(
        plan.headers.get_all("x-forwarded-host").collect::<Vec<_>>(),
        ["hub.example.edu"]
    );
    assert!(
        !names.contains(&"x-hubgate-assertion".to_string()),
        "no assertion key configured, none sent"
    );
    assert!(!names.contains(&"x-real-ip".to_string()) && !names.contains(&"forwarded".to_string()));
}

#[test]
fn worker_cookies_never_reach_the_hub_but_hub_cookies_do() {
    let (a, io) = (app(&[]), TestIo::new());
    let c = format!(
        "{}; _xsrf=x1; jupyterhub-session-id=s; hubgate-oauth-abc=f",
        session_cookie(SECRET, ORIGIN, T0, 3600)
    );
    let plan = proxied(
        &a,
        with_session(
            "/hub/home",
            &c,
            &[("X-XSRFToken", "x1"), ("Sec-Fetch-Mode", "cors")],
        ),
        &io,
    );
    assert_eq!(
        plan.headers.get("cookie"),
        Some("_xsrf=x1; jupyterhub-session-id=s")
    );
    assert_eq!(plan.headers.get("x-xsrftoken"), Some("x1"));
    assert_eq!(plan.headers.get("sec-fetch-mode"), Some("cors"));
}

#[test]
fn origin_equal_to_the_public_one_is_rewritten_to_the_hub_origin() {
    let (a, io) = (app(&[]), TestIo::new());
    let plan = proxied(
        &a,
        with_session(
            "/user/alice/api/kernels",
            &session_cookie(SECRET, ORIGIN, T0, 3600),
            &[("Origin", ORIGIN)],
        ),
        &io,
    );
    assert_eq!(plan.headers.get("origin"), Some(HUB));
    let plan = proxied(
        &a,
        with_session(
            "/x",
            &session_cookie(SECRET, ORIGIN, T0, 3600),
            &[("Origin", "https://evil.example")],
        ),
        &io,
    );
    assert_eq!(plan.headers.get("origin"), Some("https://evil.example"));
}

#[test]
fn hop_by_hop_headers_are_dropped_and_forwarding_headers_set() {
    let (a, io) = (app(&[]), TestIo::new());
    let h = [
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "1"),
        ("Keep-Alive", "5"),
        ("TE", "trailers"),
        ("CF-Connecting-IP", "203.0.113.9"),
        ("Host", "hub.example.edu"),
    ];
    let plan = proxied(
        &a,
        with_session("/x", &session_cookie(SECRET, ORIGIN, T0, 3600), &h),
        &io,
    );
    for n in [
        "connection",
        "x-secret",
        "keep-alive",
        "te",
        "host",
        "cf-connecting-ip",
    ] {
        assert_eq!(plan.headers.get(n), None, "{n}");
    }
    assert_eq!(plan.headers.get("x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(plan.headers.get("x-forwarded-proto"), Some("https"));
    assert_eq!(
        plan.headers.get("x-forwarded-host"),
        Some("hub.example.edu")
    );
    assert!(!plan.websocket);
}

#[test]
fn websocket_upgrade_keeps_upgrade_and_connection() {
    let (a, io) = (app(&[]), TestIo::new());
    let h = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "k"),
    ];
    let plan = proxied(
        &a,
        with_session(
            "/user/alice/api/kernels/1/channels",
            &session_cookie(SECRET, ORIGIN, T0, 3600),
            &h,
        ),
        &io,
    );
    assert!(plan.websocket);
    assert_eq!(plan.headers.get("upgrade"), Some("websocket"));
    assert_eq!(plan.headers.get("sec-websocket-key"), Some("k"));
}

#[test]
fn hub_set_cookie_headers_stay_apart() {
    let hub = hubgate::http::Headers(vec![
        ("Set-Cookie".into(), "a=1; Path=/".into()),
        ("Set-Cookie".into(), "b=2; Path=/hub/".into()),
        ("Transfer-Encoding".into(), "chunked".into()),
        ("Content-Type".into(), "text/html".into()),
    ]);
    let out = hubgate::proxy::inbound_headers(&hub);
    assert_eq!(out.get_all("set-cookie").count(), 2);
    assert_eq!(out.get("transfer-encoding"), None);
}

#[test]
fn login_page_lists_the_service_and_auto_login_skips_it() {
    let (a, io) = (app(&[("LOGIN_SERVICE", "Campus SSO")]), TestIo::new());
    let r = respond(&a, get("/hub/login?next=%2Fuser%2Falice%2F"), &io);
    assert_eq!(r.status, 200);
    let body = String::from_utf8(r.body).unwrap();
    assert!(
        body.contains("Campus SSO") && body.contains("/hub/oauth_login?next=%2Fuser%2Falice%2F")
    );
    let (a, io) = (app(&[("AUTO_LOGIN", "true")]), TestIo::new());
    let r = respond(&a, get("/hub/login?next=%2Fx"), &io);
    assert_eq!(r.location(), Some("/hub/oauth_login?next=%2Fx"));
}

#[test]
fn logout_clears_the_session_calls_the_hub_and_shows_the_signed_out_page() {
    let (a, io) = (app(&[]), TestIo::new());
    let c = format!(
        "{}; jupyterhub-user-alice=u",
        session_cookie(SECRET, ORIGIN, T0, 3600)
    );
    let then = respond(&a, with_session("/hub/logout", &c, &[]), &io);
    let hub = io.hub_calls.borrow().last().cloned().unwrap();
    assert_eq!(hub.url, format!("{HUB}/hub/logout"));
    assert_eq!(
        hub.headers.get("x-forwarded-user"),
        None,
        "logout carries no identity"
    );
    assert_eq!(hub.headers.get("x-hubgate-assertion"), None);
    assert_eq!(
        hub.headers.get("cookie"),
        Some("jupyterhub-user-alice=u"),
        "only the hub's own cookies"
    );
    assert_eq!(hub.timeout_ms, hubgate::proxy::HUB_CALL_TIMEOUT_MS);
    assert_eq!(then.status, 200);
    assert_eq!(
        then.location(),
        None,
        "the hub's redirect to /hub/login is not passed on"
    );
    let cookies: Vec<&str> = then.headers.get_all("set-cookie").collect();
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("__Host-hubgate=;") && c.contains("Max-Age=0")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("jupyterhub-user-alice=;") && c.contains("Path=/user/alice/")));
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("jupyterhub-hub-login=;")),
        "the hub's own clearing passes"
    );
}

#[test]
fn logout_deletes_every_session_cookie_variant_with_its_own_attributes() {
    let (a, io) = (app(&[]), TestIo::new());
    let then = respond(&a, get("/hub/logout"), &io);
    let mine: Vec<&str> = then
        .headers
        .get_all("set-cookie")
        .filter(|c| c.starts_with("__Host-hubgate="))
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine
        .iter()
        .any(|c| c.contains("SameSite=Lax") && !c.contains("Partitioned")));
    assert!(mine
        .iter()
        .any(|c| c.contains("SameSite=None") && c.contains("Partitioned") && c.contains("Secure")));
}

#[test]
fn logout_goes_to_the_configured_redirect() {
    let (a, io) = (
        app(&[(
            "OAUTH_LOGOUT_REDIRECT_URL",
            "https://idp.example.org/logout",
        )]),
        TestIo::new(),
    );
    let then = respond(&a, get("/hub/logout"), &io);
    assert_eq!(then.location(), Some("https://idp.example.org/logout"));
}

#[test]
fn health_has_no_secrets() {
    let (a, io) = (app(&[]), TestIo::new());
    let r = respond(&a, get("/_hubgate/health"), &io);
    let body = String::from_utf8(r.body).unwrap();
    assert_eq!(r.status, 200);
    assert!(!body.contains(SECRET) && !body.contains("client-secret"));
}

#[test]
fn misconfigured_worker_answers_500_and_logs_every_error() {
    let io = TestIo::new();
    let errors = hubgate::app::App::from_bindings(&bindings(&[
        ("SESSION_SECRET", ""),
        ("HUB_ORIGIN", "http://hub.internal"),
    ]))
    .err()
    .unwrap();
    let r = app::misconfigured(&io, &get("/"), &errors);
    assert_eq!(r.status, 500);
    assert!(!String::from_utf8(r.body)
        .unwrap()
        .contains("SESSION_SECRET"));
    assert!(io.logged("missing SESSION_SECRET") && io.logged("HUB_ORIGIN is not an https URL"));
}

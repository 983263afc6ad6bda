//! Refresh: the refresh token kept sealed, a due session refreshed by its
//! next request, the rules applied again, and a failed refresh ending the
//! session everywhere.

mod common;
use common::*;
use hubgate::app::{self, App, Outcome};
use hubgate::http::{IncomingRequest, Method, OutboundRequest};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What the scripted provider answers a refresh with.
struct Idp {
    p: Rc<Provider>,
    /// The refresh token the provider currently honours ("" = none issued).
    current_rt: RefCell<String>,
    rotations: Cell<u32>,
    /// The id_token claims of the next refresh (`sub`, username, ...).
    refresh_claims: RefCell<Value>,
    groups: RefCell<Vec<&'static str>>,
    refuse: Cell<bool>,
}

fn body_param(req: &OutboundRequest, name: &str) -> Option<String> {
    let body = req.body.clone().unwrap_or_default();
    url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn idp(io: &TestIo, issue_refresh_token: bool) -> Rc<Idp> {
    let p = Rc::new(Provider::new("k1"));
    let signer = p.clone();
    serve_idp(io, vec![p.jwk()], move |nonce| {
        signer.sign(standard_claims(nonce, "alice"), T0, T0 + 300)
    });
    let idp = Rc::new(Idp {
        p,
        current_rt: RefCell::new(if issue_refresh_token {
            "rt-1".into()
        } else {
            String::new()
        }),
        rotations: Cell::new(1),
        refresh_claims: RefCell::new(json!({
            "iss": ISSUER, "aud": "hubgate", "sub": "u-1",
            "preferred_username": "alice", "email": "alice@example.edu",
        })),
        groups: RefCell::new(vec!["students"]),
        refuse: Cell::new(false),
    });
    let i = idp.clone();
    io.route(&format!("{ISSUER}/token"), move |req| {
        match body_param(req, "grant_type").as_deref() {
            Some("authorization_code") => {
                let nonce = body_param(req, "code").unwrap_or_default();
                let nonce = nonce.strip_prefix("code:").unwrap_or("");
                let mut r = json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
                    "id_token": i.p.sign(standard_claims(nonce, "alice"), T0, T0 + 300)});
                if !i.current_rt.borrow().is_empty() {
                    r["refresh_token"] = json!(i.current_rt.borrow().clone());
                }
                json_response(200, r)
            }
            Some("refresh_token") => {
                let sent = body_param(req, "refresh_token").unwrap_or_default();
                if i.refuse.get() || sent != *i.current_rt.borrow() {
                    return json_response(400, json!({"error": "invalid_grant"}));
                }
                i.rotations.set(i.rotations.get() + 1);
                let next = format!("rt-{}", i.rotations.get());
                *i.current_rt.borrow_mut() = next.clone();
                json_response(
                    200,
                    json!({"access_token": "at2", "token_type": "Bearer", "expires_in": 3600,
                        "refresh_token": next,
                        "id_token": i.p.sign(i.refresh_claims.borrow().clone(), T0, T0 + 7200)}),
                )
            }
            other => panic!("unexpected grant {other:?}"),
        }
    });
    let i = idp.clone();
    io.route(&format!("{ISSUER}/me"), move |_| {
        json_response(
            200,
            json!({"sub": "u-1", "groups": i.groups.borrow().clone()}),
        )
    });
    idp
}

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

fn nav(cookie: &str) -> IncomingRequest {
    request(
        Method::Get,
        "/user/alice/lab",
        &[("Cookie", cookie), ("Accept", "text/html")],
    )
}

fn refreshes(io: &TestIo) -> usize {
    io.fetched
        .borrow()
        .iter()
        .filter(|r| body_param(r, "grant_type").as_deref() == Some("refresh_token"))
        .count()
}

fn kv_value(io: &TestIo, prefix: &str) -> Option<String> {
    io.kv
        .borrow()
        .iter()
        .find(|((_, k), _)| k.starts_with(prefix))
        .map(|(_, v)| v.clone())
}

/// The proxy plan's new session cookie, as a `Cookie` header value.
fn new_cookie(plan: &hubgate::proxy::ProxyPlan) -> Option<String> {
    plan.set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-hubgate=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
}

#[test]
fn the_refresh_token_is_kept_sealed_and_never_reaches_the_browser() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, true);
    let r = login_round_trip(&app, &io, "/hub/", |cb| cb);
    for c in r.headers.get_all("set-cookie") {
        assert!(!c.contains("rt-1"), "{c}");
    }
    let sealed = kv_value(&io, "session-refresh:").expect("stored");
    assert!(!sealed.contains("rt-1"));
    for ((_, k), v) in io.kv.borrow().iter() {
        assert!(!v.contains("rt-1"), "{k} holds the refresh token in clear");
    }
}

#[test]
fn a_session_is_refreshed_by_its_first_request_after_auth_refresh_age() {
    let (app, io) = (app(&[("AUTH_REFRESH_AGE", "300")]), TestIo::new());
    let i = idp(&io, true);
    let cookie = login(&app, &io);
    io.advance(299);
    let plan = proxied(&app, nav(&cookie), &io);
    assert_eq!(refreshes(&io), 0, "not due yet");
    assert!(new_cookie(&plan).is_none());
    io.advance(2);
    let plan = proxied(&app, nav(&cookie), &io);
    assert_eq!(refreshes(&io), 1);
    assert_eq!(
        *i.current_rt.borrow(),
        "rt-2",
        "the provider rotated the token"
    );
    let renewed = new_cookie(&plan).expect("a re-minted session cookie");
    // The next plan uses the rotated token, from the new cookie.
    io.advance(301);
    let plan = proxied(&app, nav(&renewed), &io);
    assert_eq!(refreshes(&io), 2);
    assert_eq!(*i.current_rt.borrow(), "rt-3");
    assert!(new_cookie(&plan).is_some());
    assert!(io.logged("session_refreshed"));
}

#[test]
fn a_refresh_keeps_the_sessions_expiry() {
    let (app, io) = (app(&[("SESSION_MAX_AGE", "3600")]), TestIo::new());
    idp(&io, true);
    let cookie = login(&app, &io);
    io.advance(400);
    let plan = proxied(&app, nav(&cookie), &io);
    let set = plan
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-hubgate=") && !c.contains("Max-Age=0"))
        .unwrap();
    assert!(set.contains("Max-Age=3200"), "{set}");
}

#[test]
fn changed_groups_reach_the_hub_through_a_fresh_login_there() {
    let (app, io) = (app(&[]), TestIo::new());
    let i = idp(&io, true);
    let cookie = login(&app, &io);
    let logins = io.hub_calls.borrow().len();
    *i.groups.borrow_mut() = vec!["students", "graders"];
    io.advance(301);
    let plan = proxied(&app, nav(&cookie), &io);
    assert_eq!(
        io.hub_calls.borrow().len(),
        logins + 1,
        "one login at the hub"
    );
    let hub_login = last_hub_login(&io);
    let header = hub_login
        .headers
        .0
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(header.contains("graders"), "{header}");
    assert!(
        plan.set_cookies.len() >= 2,
        "the session cookie and the hub's"
    );
    // Unchanged identity: no login at the hub.
    let renewed = new_cookie(&plan).unwrap();
    io.advance(301);
    proxied(&app, nav(&renewed), &io);
    assert_eq!(io.hub_calls.borrow().len(), logins + 1);
}

fn ended(app: &App, io: &TestIo, cookie: &str) {
    let hub_calls = io.hub_calls.borrow().len();
    match block_on(app::handle(app, nav(cookie), io)) {
        Outcome::Respond(r) => {
            assert_eq!(r.status, 302);
            assert!(r.location().unwrap().contains("/hub/login"));
            assert!(r
                .headers
                .get_all("set-cookie")
                .any(|c| c.starts_with("__Host-hubgate=") && c.contains("Max-Age=0")));
        }
        Outcome::Proxy(p) => panic!("an ended session was proxied to {}", p.url),
    }
    let api = request(
        Method::Get,
        "/hub/api/user",
        &[("Cookie", cookie), ("Accept", "application/json")],
    );
    assert_eq!(respond(app, api, io).status, 401);
    assert_eq!(
        io.hub_calls.borrow().len(),
        hub_calls,
        "nothing reached the hub"
    );
}

#[test]
fn a_refresh_the_provider_refuses_ends_the_session_everywhere() {
    let io = TestIo::new();
    let (a, b) = (app(&[]), app(&[]));
    let i = idp(&io, true);
    let cookie = login(&a, &io);
    i.refuse.set(true);
    io.advance(301);
    ended(&a, &io, &cookie);
    assert!(io.logged("refresh_failed"));
    // Another isolate, which never saw the refresh, refuses it too.
    ended(&b, &io, &cookie);
    assert_eq!(refreshes(&io), 1, "the failure is not retried");
}

#[test]
fn a_user_no_longer_allowed_loses_the_hub_at_the_refresh() {
    let (app, io) = (
        app(&[("ALLOWED_USERS", ""), ("ALLOWED_GROUPS", "students")]),
        TestIo::new(),
    );
    let i = idp(&io, true);
    let cookie = login(&app, &io);
    *i.groups.borrow_mut() = vec!["alumni"];
    io.advance(301);
    ended(&app, &io, &cookie);
}

#[test]
fn a_refresh_that_answers_for_another_subject_ends_the_session() {
    let (app, io) = (app(&[]), TestIo::new());
    let i = idp(&io, true);
    let cookie = login(&app, &io);
    i.refresh_claims.borrow_mut()["sub"] = json!("u-2");
    io.advance(301);
    ended(&app, &io, &cookie);
}

#[test]
fn concurrent_requests_refresh_once_and_keep_the_session_meanwhile() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, true);
    let cookie = login(&app, &io);
    io.advance(301);
    proxied(&app, nav(&cookie), &io);
    // A second request with the old cookie (sent before the new one landed).
    let plan = proxied(&app, nav(&cookie), &io);
    assert_eq!(refreshes(&io), 1);
    assert!(new_cookie(&plan).is_none());
    // A browser that never got the new cookie: past the grace, it is over.
    io.advance(120);
    ended(&app, &io, &cookie);
}

#[test]
fn without_a_refresh_token_a_session_is_never_refreshed() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, false);
    let cookie = login(&app, &io);
    assert!(kv_value(&io, "session-refresh:").is_none());
    io.advance(3000);
    proxied(&app, nav(&cookie), &io);
    assert_eq!(refreshes(&io), 0);
}

#[test]
fn a_sealed_token_that_no_longer_opens_ends_the_session() {
    let (app, io) = (app(&[]), TestIo::new());
    idp(&io, true);
    let cookie = login(&app, &io);
    let key = io
        .kv
        .borrow()
        .keys()
        .find(|(_, k)| k.starts_with("session-refresh:"))
        .cloned()
        .unwrap();
    io.kv.borrow_mut().insert(key, "AAAA".into());
    io.advance(301);
    ended(&app, &io, &cookie);
    assert_eq!(refreshes(&io), 0);
}

#[test]
fn logging_out_a_session_due_for_a_refresh_asks_the_provider_nothing() {
    let (app, io) = (app(&[("OIDC_LOGOUT_AT_PROVIDER", "false")]), TestIo::new());
    idp(&io, true);
    let cookie = login(&app, &io);
    io.advance(301);
    let out = respond(
        &app,
        request(Method::Get, "/hub/logout", &[("Cookie", &cookie)]),
        &io,
    );
    assert_eq!(out.status, 200);
    assert_eq!(refreshes(&io), 0);
    ended(&app, &io, &cookie);
}

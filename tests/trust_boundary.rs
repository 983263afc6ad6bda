//! The trust boundary (docs/SECURITY.md): identity reaches only the hub's
//! login, one-time values are one-time, nothing fails open, and every login
//! path gets the same checks. Each test names the rule it proves and
//! asserts the exact status and what reached the hub.

mod common;
mod lti_common;
use common::*;
use hubgate::http::Method;
use lti_common::*;
use serde_json::json;

fn dl_claims(nonce: &str) -> serde_json::Value {
    let mut c = resource_link_claims(nonce, LMS, CLIENT);
    c[format!("{CLAIM}message_type")] = "LtiDeepLinkingRequest".into();
    c[format!("{CLAIM}roles")] =
        json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]);
    c[format!("{DL}deep_linking_settings")] = json!({
        "deep_link_return_url": "https://lms.example.edu/dl/return",
        "accept_types": ["ltiResourceLink"],
    });
    c
}

fn lti_setup(extra: &[(&str, &str)]) -> (hubgate::app::App, TestIo, RsaPlatform) {
    let (app, io) = (lti_app(extra), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    (app, io, p)
}

// ---------- drifted copies (issue: one path through the code) ----------

#[test]
fn failed_lti_launch_clears_its_flow_cookie() {
    let (app, io, p) = lti_setup(&[]);
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}version")] = "1.1".into()
    });
    assert_eq!(r.status, 400, "{}", body(&r));
    assert!(
        r.headers
            .get_all("set-cookie")
            .any(|c| c.starts_with("__Host-hubgate-lti-") && c.contains("Max-Age=0")),
        "the failed flow's cookie is cleared"
    );
    assert!(io.hub_calls.borrow().is_empty(), "nothing reached the hub");
}

#[test]
fn deep_linking_launch_refuses_a_username_with_control_characters() {
    let (app, io, p) = lti_setup(&[]);
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        let mut c = dl_claims(n);
        c["email"] = "eve@x\r\nX-Forwarded-Admin: true".into();
        p.sign(c, T0, T0 + 300)
    });
    assert_eq!(r.status, 400, "{}", body(&r));
    assert!(session_set_cookie(&r).is_none(), "no session minted");
}

#[test]
fn deep_linking_launch_expires_the_hubs_cookies_and_keeps_big_extras_in_kv() {
    let (app, io, p) = lti_setup(&[("ASSERTION_AUTH_STATE_CLAIMS", "big")]);
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        let mut c = dl_claims(n);
        c["big"] = "x".repeat(1400).into();
        c[format!("{CLAIM}context")] = json!({"id": "c".repeat(800), "label": "l".repeat(800)});
        p.sign(c, T0, T0 + 300)
    });
    assert_eq!(r.status, 200, "{}", body(&r));
    let cookies: Vec<&str> = r.headers.get_all("set-cookie").collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("jupyterhub-hub-login=;")),
        "{cookies:?}"
    );
    let session = session_set_cookie(&r).unwrap();
    assert!(session.len() < 4096);
    assert!(
        io.kv
            .borrow()
            .keys()
            .any(|(_, k)| k.starts_with("session:")),
        "extras kept in the session store"
    );
    assert!(
        io.hub_calls.borrow().is_empty(),
        "the picker is not a hub login"
    );
}

// ---------- identity reaches only the hub's login ----------

#[test]
fn a_login_performs_the_hubs_login_itself_and_passes_its_cookies_back() {
    let (app, io, p) = lti_setup(&[]);
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(r.status, 302);
    assert_eq!(r.location(), Some("/hub/user-redirect/lab"));
    let hub: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .filter(|c| c.starts_with("jupyterhub-") || c.starts_with("_xsrf"))
        .filter(|c| !c.contains("Max-Age=0"))
        .collect();
    assert_eq!(
        hub.len(),
        3,
        "three separate hub cookies, never folded: {hub:?}"
    );
    let call = last_hub_login(&io);
    assert_eq!(
        call.headers.get("x-forwarded-user"),
        Some("alice@example.edu")
    );
}

#[test]
fn identity_never_rides_on_a_request_to_a_single_user_server() {
    let (app, io, p) = lti_setup(&[]);
    let r = launch(&app, &io, &p, |_| {});
    let plan = proxied(&app, with_cookies(get("/user/mallory/tree"), &r), &io);
    for h in [
        "x-forwarded-user",
        "x-forwarded-admin",
        "x-forwarded-groups",
        "x-hubgate-assertion",
    ] {
        assert_eq!(plan.headers.get(h), None, "{h}");
    }
}

#[test]
fn a_hub_that_refuses_the_login_gets_no_session_and_a_502() {
    let (app, io, p) = lti_setup(&[]);
    io.hub_login_status.set(401);
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(r.status, 502, "{}", body(&r));
    assert!(session_set_cookie(&r).is_none());
    assert!(io.logged("the hub refused the login with status 401"));
}

// ---------- nothing fails open ----------

#[test]
fn an_authorization_header_without_a_session_carries_no_browser_cookies() {
    let (app, io) = (app(&[]), TestIo::new());
    let req = request(
        Method::Get,
        "/hub/api/users",
        &[
            ("Authorization", "token abc"),
            (
                "Cookie",
                "jupyterhub-hub-login=stolen; jupyterhub-session-id=s; _xsrf=x",
            ),
        ],
    );
    let plan = proxied(&app, req, &io);
    assert_eq!(
        plan.headers.get("cookie"),
        None,
        "the hub's own cookie cannot revive a dead session"
    );
    assert_eq!(plan.headers.get("authorization"), Some("token abc"));
}

#[test]
fn a_worker_without_a_one_time_store_refuses_to_run() {
    let errors = hubgate::app::App::from_bindings(&bindings(&[("ONE_TIME", "")]))
        .err()
        .expect("a configuration error");
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().starts_with("missing binding ONE_TIME")),
        "{errors:?}"
    );
    let io = TestIo::new();
    let r = hubgate::app::misconfigured(&io, &get("/hub/lti13/oauth_callback"), &errors);
    assert_eq!(r.status, 500);
}

#[test]
fn a_one_time_store_that_is_down_refuses_the_callback_with_502() {
    let (app, io) = (app(&[]), TestIo::new());
    good_idp_for(&io, "alice");
    io.one_time_down.set(true);
    let r = login_round_trip(&app, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, 502);
    assert_eq!(
        io.fetch_count(&format!("{ISSUER}/token")),
        0,
        "the code is not redeemed"
    );
    assert!(io.hub_calls.borrow().is_empty());
}

#[test]
fn a_replayed_launch_is_refused_by_the_one_time_store() {
    let (app, io, p) = lti_setup(&[]);
    let login = initiate(&app, &io, LMS, CLIENT);
    let loc = login.location().unwrap().to_string();
    let token = p.sign(
        resource_link_claims(&query(&loc, "nonce").unwrap(), LMS, CLIENT),
        T0,
        T0 + 300,
    );
    let state = query(&loc, "state").unwrap();
    let post_it = || {
        respond(
            &app,
            with_cookies(
                post(
                    "/hub/lti13/oauth_callback",
                    form(&[("id_token", &token), ("state", &state)]),
                ),
                &login,
            ),
            &io,
        )
    };
    assert_eq!(post_it().status, 302);
    let calls = io.hub_calls.borrow().len();
    assert_eq!(post_it().status, 401);
    assert_eq!(
        io.hub_calls.borrow().len(),
        calls,
        "the replay reached nothing"
    );
}

#[test]
fn an_oauth_state_is_good_for_one_callback() {
    let (app, io) = (app(&[]), TestIo::new());
    good_idp_for(&io, "alice");
    let start = respond(&app, get("/hub/oauth_login"), &io);
    let loc = start.location().unwrap().to_string();
    let cb = format!(
        "/hub/oauth_callback?code={}&state={}",
        urlenc(&format!("code:{}", query(&loc, "nonce").unwrap())),
        urlenc(&query(&loc, "state").unwrap())
    );
    assert_eq!(
        respond(&app, with_cookies(get(&cb), &start), &io).status,
        302
    );
    assert_eq!(
        respond(&app, with_cookies(get(&cb), &start), &io).status,
        400
    );
    assert_eq!(
        io.fetch_count(&format!("{ISSUER}/token")),
        1,
        "the second callback redeemed nothing"
    );
}

#[test]
fn a_state_cut_inside_a_multibyte_character_is_a_400_not_a_crash() {
    let (app, io) = (app(&[]), TestIo::new());
    let state = urlenc("abcdefghijklmno\u{e9}\u{1F600}rest");
    let r = respond(
        &app,
        get(&format!("/hub/oauth_callback?code=c&state={state}")),
        &io,
    );
    assert_eq!(r.status, 400);
    let (lti, io, _) = lti_setup(&[]);
    let r = respond(
        &lti,
        post(
            "/hub/lti13/oauth_callback",
            form(&[("id_token", "x.y.z"), ("state", "abcdefghijklmno\u{e9}")]),
        ),
        &io,
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_session_of_a_user_added_to_blocked_users_is_refused() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp_for(&io, "alice");
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, 302);
    let blocked = app(&[("BLOCKED_USERS", "alice")]);
    let resp = respond(
        &blocked,
        with_cookies(
            request(Method::Get, "/hub/home", &[("Accept", "application/json")]),
            &r,
        ),
        &io,
    );
    assert_eq!(resp.status, 401);
}

// ---------- privilege from data a course creator controls ----------

#[test]
fn a_course_named_like_an_admin_group_makes_no_learner_an_admin() {
    let (app, io, p) = lti_setup(&[("ADMIN_GROUPS", "staff")]);
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}context")] = json!({"id": "staff", "label": "staff"})
    });
    assert_eq!(r.status, 302);
    let call = last_hub_login(&io);
    assert_eq!(call.headers.get("x-forwarded-admin"), Some("false"));
    assert_eq!(
        call.headers.get("x-forwarded-groups"),
        Some("lti:lms.example.edu:staff")
    );
}

#[test]
fn with_oauth_and_lti_both_on_lti_usernames_are_namespaced_by_platform() {
    let mut b = lti_bindings(&[]);
    for (k, v) in [
        ("OAUTH_CLIENT_ID", "hubgate"),
        ("OAUTH_CLIENT_SECRET", "client-secret"),
        ("OIDC_ISSUER", ISSUER),
        ("ALLOW_ALL", "true"),
    ] {
        b.retain(|(n, _)| n != k);
        b.push((k.into(), v.into()));
    }
    let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (app, io) = (app(&refs), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    assert_eq!(launch(&app, &io, &p, |_| {}).status, 302);
    assert_eq!(
        last_hub_login(&io).headers.get("x-forwarded-user"),
        Some("lms.example.edu:alice@example.edu"),
        "an LMS's email cannot become the OAuth account with the same email"
    );
}

// ---------- smaller defects of the same family ----------

#[test]
fn health_tells_only_that_the_worker_is_alive() {
    let (a, io) = (app(&[]), TestIo::new());
    let r = respond(&a, get("/_hubgate/health"), &io);
    let body = String::from_utf8(r.body).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        !body.contains("origin.example.edu") && !body.contains("hubgate\""),
        "{body}"
    );
}

#[test]
fn the_newest_of_two_session_cookies_wins() {
    let (a, io) = (app(&[("ALLOW_ALL", "true")]), TestIo::new());
    good_idp_for(&io, "alice");
    let first = login_round_trip(&a, &io, "/hub/", |cb| cb);
    io.advance(5);
    let k2 = std::rc::Rc::new(Provider::new("k2"));
    let (signer, jwks) = (k2.clone(), vec![Provider::new("k1").jwk(), k2.jwk()]);
    serve_idp(&io, jwks, move |n| {
        signer.sign(standard_claims(n, "bob"), T0, T0 + 300)
    });
    let second = login_round_trip(&a, &io, "/hub/", |cb| cb);
    let c1 = session_set_cookie(&first)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let c2 = session_set_cookie(&second)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A browser holding both (one partitioned, one not) sends both, in any order.
    for cookie in [format!("{c1}; {c2}"), format!("{c2}; {c1}")] {
        let mut req = get("/hub/login?next=%2Fhub%2F");
        req.headers.push("Cookie", cookie);
        assert_eq!(respond(&a, req, &io).status, 302);
        assert_eq!(
            last_hub_login(&io).headers.get("x-forwarded-user"),
            Some("bob")
        );
    }
}

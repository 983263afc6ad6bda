//! LTI Platform Storage (issue 12): a launch in a browser that keeps no
//! cookie in the LMS frame. The initiation answers with a page that keeps
//! the signed flow in the platform's storage; the launch without a cookie
//! answers with a page that reads it back and posts the launch again,
//! same-origin. Every way around that is refused, and nothing reaches the
//! hub. The real-browser proof is tests/browser/lti-frame.test.mjs.

mod common;
mod lti_common;
use common::*;
use hubgate::http::{Method, Response};
use lti_common::*;
use serde_json::Value;

fn initiate_with(
    app: &hubgate::app::App,
    io: &TestIo,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Response {
    let mut pairs = vec![
        ("iss", LMS),
        ("login_hint", "user-1234"),
        ("target_link_uri", "https://hub.example.edu/hub/"),
        ("lti_message_hint", "rl-1"),
        ("client_id", CLIENT),
    ];
    pairs.extend_from_slice(extra);
    let mut req = post("/hub/lti13/oauth_login", form(&pairs));
    for (k, v) in headers {
        req.headers.push(*k, *v);
    }
    respond(app, req, io)
}

/// The page's data block (JSON in a non-executed script element).
fn page_data(r: &Response) -> Value {
    let b = body(r);
    let start = b.find("id=\"hubgate-lti\">").expect("data block") + "id=\"hubgate-lti\">".len();
    let end = start + b[start..].find("</script>").unwrap();
    serde_json::from_str(&b[start..end]).unwrap()
}

fn csp(r: &Response) -> &str {
    r.headers.get("content-security-policy").unwrap()
}

struct Started {
    app: hubgate::app::App,
    io: TestIo,
    p: RsaPlatform,
    init: Response,
    data: Value,
    state: String,
    nonce: String,
}

fn started() -> Started {
    let (app, io) = (lti_app(&[]), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let init = initiate_with(&app, &io, &[("lti_storage_target", "_parent")], &[]);
    assert_eq!(init.status, 200, "{}", body(&init));
    let data = page_data(&init);
    let authorize = data["authorize"].as_str().unwrap().to_string();
    let state = query(&authorize, "state").unwrap();
    let nonce = query(&authorize, "nonce").unwrap();
    Started {
        app,
        io,
        p,
        init,
        data,
        state,
        nonce,
    }
}

impl Started {
    fn id_token(&self) -> String {
        self.p
            .sign(resource_link_claims(&self.nonce, LMS, CLIENT), T0, T0 + 300)
    }
    /// The platform's form post, in a browser that kept no cookie.
    fn first_leg(&self, id_token: &str) -> Response {
        let mut req = post(
            "/hub/lti13/oauth_callback",
            form(&[
                ("id_token", id_token),
                ("state", &self.state),
                ("lti_storage_target", "_parent"),
            ]),
        );
        req.headers.push("Origin", "https://lms.example.edu");
        req.headers.push("Sec-Fetch-Site", "cross-site");
        respond(&self.app, req, &self.io)
    }
    /// The check page's post, with `flow` read from storage.
    fn second_leg(
        &self,
        id_token: &str,
        state: &str,
        flow: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = post(
            "/hub/lti13/oauth_callback",
            form(&[
                ("id_token", id_token),
                ("state", state),
                ("hubgate_flow", flow),
            ]),
        );
        for (k, v) in headers {
            req.headers.push(*k, *v);
        }
        respond(&self.app, req, &self.io)
    }
    fn sealed(&self) -> String {
        self.data["state_value"].as_str().unwrap().to_string()
    }
}

const SAME_ORIGIN: &[(&str, &str)] = &[("Origin", ORIGIN), ("Sec-Fetch-Site", "same-origin")];

#[test]
fn an_initiation_with_lti_storage_target_answers_the_storage_page_with_the_flow_for_the_platforms_storage(
) {
    let s = started();
    let d = &s.data;
    assert_eq!(d["target"], "_parent");
    assert_eq!(d["platform_origin"], "https://lms.example.edu");
    assert!(d["authorize"]
        .as_str()
        .unwrap()
        .starts_with("https://lms.example.edu/auth?"));
    assert_eq!(d["state_key"], format!("hubgate_state_{}", s.state));
    assert_eq!(d["nonce_key"], format!("hubgate_nonce_{}", s.nonce));
    assert_eq!(d["nonce"], s.nonce.as_str());
    assert_eq!(
        d["flow_check"],
        format!("/_hubgate/lti/flow_check?state={}", s.state)
    );
    let nw = d["new_window"].as_str().unwrap();
    assert!(
        nw.starts_with("https://hub.example.edu/hub/lti13/oauth_login?iss="),
        "{nw}"
    );
    assert!(!nw.contains("lti_storage_target"), "{nw}");
    // Strict page: one hashed script, same-origin fetch, framed by the platform only.
    let policy = csp(&s.init);
    assert!(policy.contains("script-src 'sha256-"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert!(
        policy.contains("frame-ancestors 'self' https://lms.example.edu"),
        "{policy}"
    );
    assert!(
        !policy.contains("unsafe-eval") && !policy.contains("frame-ancestors *"),
        "{policy}"
    );
    // The flow cookie is set as well: the fallback when storage is missing.
    assert!(s
        .init
        .headers
        .get_all("set-cookie")
        .any(|c| c.starts_with("__Host-hubgate-lti-")));
    assert!(s.io.hub_calls.borrow().is_empty());
}

#[test]
fn an_initiation_in_a_frame_without_storage_answers_the_cookie_check_page_and_a_top_level_one_still_redirects(
) {
    let (app, io) = (lti_app(&[]), TestIo::new());
    let framed = initiate_with(&app, &io, &[], &[("Sec-Fetch-Dest", "iframe")]);
    assert_eq!(framed.status, 200);
    assert_eq!(page_data(&framed)["target"], Value::Null);
    let top = initiate_with(&app, &io, &[], &[("Sec-Fetch-Dest", "document")]);
    assert_eq!(top.status, 302);
}

#[test]
fn an_lti_storage_target_that_is_not_a_frame_name_is_refused() {
    let (app, io) = (lti_app(&[]), TestIo::new());
    for bad in ["x\"</script>", "javascript:alert(1)", "a b"] {
        let r = initiate_with(&app, &io, &[("lti_storage_target", bad)], &[]);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.headers.get_all("set-cookie").next().is_none(), "{bad}");
    }
}

#[test]
fn a_launch_without_the_flow_cookie_but_with_lti_storage_target_answers_the_check_page_and_reaches_nothing(
) {
    let s = started();
    let token = s.id_token();
    let r = s.first_leg(&token);
    assert_eq!(r.status, 200, "{}", body(&r));
    let d = page_data(&r);
    assert_eq!(d["state_key"], format!("hubgate_state_{}", s.state));
    assert_eq!(d["nonce_key"], format!("hubgate_nonce_{}", s.nonce));
    assert_eq!(d["platform_origin"], "https://lms.example.edu");
    assert_eq!(d["action"], "/hub/lti13/oauth_callback");
    assert!(body(&r)
        .contains("<form id=\"launch\" method=\"post\" action=\"/hub/lti13/oauth_callback\">"));
    assert!(body(&r).contains(&format!("name=\"id_token\" value=\"{token}\"")));
    assert!(csp(&r).contains("form-action 'self'") && csp(&r).contains("connect-src 'none'"));
    assert!(session_set_cookie(&r).is_none());
    assert!(s.io.hub_calls.borrow().is_empty());
    assert!(
        s.io.used_once.borrow().is_empty(),
        "the nonce is not spent by the check page"
    );
}

#[test]
fn the_check_pages_same_origin_post_with_the_flow_from_storage_lands_the_student_at_the_hub() {
    let s = started();
    let token = s.id_token();
    let r = s.second_leg(&token, &s.state, &s.sealed(), SAME_ORIGIN);
    assert_eq!(r.status, 302, "{}", body(&r));
    assert!(session_set_cookie(&r).is_some());
    assert_eq!(s.io.hub_calls.borrow().len(), 1);
    // Chromium omits nothing here, but a browser without Fetch Metadata still sends Origin.
    let s2 = started();
    let r2 = s2.second_leg(
        &s2.id_token(),
        &s2.state,
        &s2.sealed(),
        &[("Origin", ORIGIN)],
    );
    assert_eq!(r2.status, 302, "{}", body(&r2));
}

#[test]
fn with_storage_offered_even_a_browser_that_kept_the_cookie_is_checked_against_storage_and_both_must_agree(
) {
    let s = started();
    let token = s.id_token();
    let mut first = post(
        "/hub/lti13/oauth_callback",
        form(&[
            ("id_token", &token),
            ("state", &s.state),
            ("lti_storage_target", "_parent"),
        ]),
    );
    first = with_cookies(first, &s.init);
    let page = respond(&s.app, first, &s.io);
    assert_eq!(page.status, 200, "{}", body(&page));
    assert!(s.io.hub_calls.borrow().is_empty());
    // The check page's post: the flow from storage and the cookie.
    let mut req = post(
        "/hub/lti13/oauth_callback",
        form(&[
            ("id_token", &token),
            ("state", &s.state),
            ("hubgate_flow", &s.sealed()),
        ]),
    );
    for (k, v) in SAME_ORIGIN {
        req.headers.push(*k, *v);
    }
    let r = respond(&s.app, with_cookies(req, &s.init), &s.io);
    assert_eq!(r.status, 302, "{}", body(&r));
}

#[test]
fn when_the_storage_had_nothing_the_check_pages_post_falls_back_to_the_cookie() {
    let s = started();
    let token = s.id_token();
    let mut req = post(
        "/hub/lti13/oauth_callback",
        form(&[("id_token", &token), ("state", &s.state)]),
    );
    for (k, v) in SAME_ORIGIN {
        req.headers.push(*k, *v);
    }
    let r = respond(&s.app, with_cookies(req, &s.init), &s.io);
    assert_eq!(r.status, 302, "{}", body(&r));
}

#[test]
fn a_flow_from_storage_posted_cross_site_or_without_origin_is_refused_before_anything_reaches_the_hub(
) {
    let s = started();
    let token = s.id_token();
    for headers in [
        &[
            ("Origin", "https://lms.example.edu"),
            ("Sec-Fetch-Site", "cross-site"),
        ][..],
        &[("Origin", "https://evil.example.net")][..],
        &[("Origin", "null")][..],
        &[("Origin", ORIGIN), ("Sec-Fetch-Site", "same-site")][..],
        &[][..],
    ] {
        let r = s.second_leg(&token, &s.state, &s.sealed(), headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", body(&r));
        assert!(session_set_cookie(&r).is_none());
    }
    assert!(s.io.hub_calls.borrow().is_empty());
    assert!(s.io.used_once.borrow().is_empty());
}

#[test]
fn a_flow_from_storage_for_another_state_a_forged_one_or_an_expired_one_is_refused() {
    let s = started();
    // A second flow in the same browser and worker (randomness is per Io).
    let other = initiate_with(&s.app, &s.io, &[("lti_storage_target", "_parent")], &[]);
    let other = page_data(&other)["state_value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(other, s.sealed());
    let token = s.id_token();
    let cases = [
        (other, "another flow's token"),
        (format!("{}x", s.sealed()), "a tampered token"),
        ("not-a-token".to_string(), "garbage"),
    ];
    for (flow, what) in cases {
        let r = s.second_leg(&token, &s.state, &flow, SAME_ORIGIN);
        assert_eq!(r.status, 400, "{what}: {}", body(&r));
    }
    s.io.advance(601);
    let r = s.second_leg(&token, &s.state, &s.sealed(), SAME_ORIGIN);
    assert_eq!(r.status, 400, "expired: {}", body(&r));
    assert!(s.io.hub_calls.borrow().is_empty());
}

#[test]
fn a_flow_from_storage_cannot_carry_another_platforms_nonce_and_cannot_be_replayed() {
    let s = started();
    // An id_token for a nonce this flow never sent.
    let wrong = s.p.sign(
        resource_link_claims("other-nonce", LMS, CLIENT),
        T0,
        T0 + 300,
    );
    let r = s.second_leg(&wrong, &s.state, &s.sealed(), SAME_ORIGIN);
    assert_eq!(r.status, 401, "{}", body(&r));
    let token = s.id_token();
    assert_eq!(
        s.second_leg(&token, &s.state, &s.sealed(), SAME_ORIGIN)
            .status,
        302
    );
    let again = s.second_leg(&token, &s.state, &s.sealed(), SAME_ORIGIN);
    assert_eq!(again.status, 401, "{}", body(&again));
    assert_eq!(s.io.hub_calls.borrow().len(), 1);
}

#[test]
fn a_launch_with_neither_cookie_nor_storage_is_the_missing_cookie_it_is() {
    let s = started();
    let token = s.id_token();
    let req = post(
        "/hub/lti13/oauth_callback",
        form(&[("id_token", &token), ("state", &s.state)]),
    );
    let r = respond(&s.app, req, &s.io);
    assert_eq!(r.status, 400);
    assert!(s.io.hub_calls.borrow().is_empty());
}

#[test]
fn the_check_page_is_only_answered_for_a_registered_platforms_id_token() {
    let s = started();
    let stranger = s.p.sign(
        resource_link_claims(&s.nonce, "https://evil.example.net", CLIENT),
        T0,
        T0 + 300,
    );
    let r = s.first_leg(&stranger);
    assert_eq!(r.status, 401, "{}", body(&r));
    assert!(!body(&r).contains("hubgate-lti"));
    let r = s.first_leg("not-a-jwt");
    assert_eq!(r.status, 400);
}

#[test]
fn flow_check_answers_whether_the_flow_cookie_came_back_without_spending_it() {
    let s = started();
    let path = s.data["flow_check"].as_str().unwrap().to_string();
    let with = respond(&s.app, with_cookies(get(&path), &s.init), &s.io);
    assert_eq!(with.status, 204);
    assert_eq!(with.headers.get("cache-control"), Some("no-store"));
    let without = respond(&s.app, get(&path), &s.io);
    assert_eq!(without.status, 404);
    let wrong = respond(
        &s.app,
        with_cookies(get("/_hubgate/lti/flow_check?state=someone-else"), &s.init),
        &s.io,
    );
    assert_eq!(wrong.status, 404);
    let post = respond(&s.app, request(Method::Post, &path, &[]), &s.io);
    assert_eq!(post.status, 405);
    // The cookie path still works after the check.
    let token = s.id_token();
    let launch = respond(
        &s.app,
        with_cookies(
            post_form(
                "/hub/lti13/oauth_callback",
                &[("id_token", &token), ("state", &s.state)],
            ),
            &s.init,
        ),
        &s.io,
    );
    assert_eq!(launch.status, 302, "{}", body(&launch));
}

fn post_form(path: &str, pairs: &[(&str, &str)]) -> hubgate::http::IncomingRequest {
    post(path, form(pairs))
}

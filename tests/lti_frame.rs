//! An LTI session inside the LMS's cross-site frame (issue 12): the hub's
//! cookies are made frame-safe and its `frame-ancestors` names the
//! registered platforms, on every response of an LTI session; OAuth
//! sessions are left as the hub answered. The real-browser proof is
//! tests/browser/lti-frame.test.mjs.

mod common;
mod lti_common;
use common::*;
use hubgate::http::Headers;
use hubgate::proxy::response_headers;
use lti_common::*;

fn frame_safe(c: &str) -> bool {
    c.contains("SameSite=None") && c.contains("Secure") && c.contains("Partitioned")
}

fn hub_answer() -> Headers {
    Headers(vec![
        (
            "Content-Security-Policy".into(),
            "frame-ancestors 'none'; report-uri /hub/security/csp-report".into(),
        ),
        (
            "Set-Cookie".into(),
            "jupyterhub-user-alice=t; HttpOnly; Path=/user/alice/; SameSite=Lax".into(),
        ),
        ("Set-Cookie".into(), "_xsrf=x; Path=/user/alice/".into()),
    ])
}

fn launched(extra: &[(&str, &str)]) -> (hubgate::app::App, TestIo, hubgate::http::Response) {
    let (app, io) = (lti_app(extra), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(r.status, 302, "{}", body(&r));
    (app, io, r)
}

#[test]
fn the_hubs_login_cookies_from_a_launch_are_samesite_none_secure_partitioned() {
    let (_, _, r) = launched(&[]);
    for name in [
        "jupyterhub-hub-login=new",
        "jupyterhub-session-id=s",
        "_xsrf=x",
    ] {
        let set: Vec<&str> = r
            .headers
            .get_all("set-cookie")
            .filter(|c| c.starts_with(name))
            .collect();
        assert_eq!(set.len(), 1, "{name}: {set:?}");
        assert!(frame_safe(set[0]), "{}", set[0]);
    }
}

#[test]
fn a_launch_expires_the_previous_hub_cookies_in_the_frames_partition_and_at_top_level() {
    let (_, _, r) = launched(&[]);
    let deletions: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .filter(|c| c.starts_with("jupyterhub-hub-login=;") && c.contains("Max-Age=0"))
        .collect();
    assert_eq!(deletions.len(), 2, "{deletions:?}");
    assert_eq!(deletions.iter().filter(|c| frame_safe(c)).count(), 1);
}

#[test]
fn an_lti_sessions_hub_responses_are_frame_safe_and_framed_by_the_platform_only() {
    let (app, io, r) = launched(&[]);
    let plan = proxied(&app, with_cookies(get("/user/alice/lab"), &r), &io);
    assert_eq!(
        plan.frame_ancestors.as_deref(),
        Some(&["https://lms.example.edu".to_string()][..])
    );
    let h = response_headers(&hub_answer(), &plan);
    assert_eq!(
        h.get("content-security-policy"),
        Some("frame-ancestors 'self' https://lms.example.edu; report-uri /hub/security/csp-report")
    );
    let set: Vec<&str> = h.get_all("set-cookie").collect();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|c| frame_safe(c)), "{set:?}");
}

#[test]
fn lti13_frame_ancestors_replaces_the_default_origins() {
    let (app, io, r) = launched(&[(
        "LTI13_FRAME_ANCESTORS",
        "https://school.instructure.com, https://*.brightspace.com",
    )]);
    let plan = proxied(&app, with_cookies(get("/hub/home"), &r), &io);
    let h = response_headers(&hub_answer(), &plan);
    assert!(h.get("content-security-policy").unwrap().starts_with(
        "frame-ancestors 'self' https://*.brightspace.com https://school.instructure.com;"
    ));
}

#[test]
fn lti13_frame_ancestors_refuses_what_is_not_an_origin() {
    for bad in [
        "https://lms.example.edu/course",
        "http://lms.example.edu",
        "*",
        "https://lms.example.edu?x=1",
    ] {
        let b = lti_bindings(&[("LTI13_FRAME_ANCESTORS", bad)]);
        let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let env = bindings(&refs);
        let errors = hubgate::config::parse(&env).expect_err(bad);
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("LTI13_FRAME_ANCESTORS")),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn an_oauth_sessions_hub_responses_pass_unchanged() {
    let app = app(&[]);
    let io = TestIo::new();
    let _idp = good_idp_for(&io, "alice");
    let login = login_round_trip(&app, &io, "/hub/home", |u| u);
    let plan = proxied(&app, with_cookies(get("/hub/home"), &login), &io);
    assert_eq!(plan.frame_ancestors, None);
    let h = response_headers(&hub_answer(), &plan);
    assert_eq!(h, hub_answer());
}

#[test]
fn logout_sends_the_hubs_deletions_for_the_frame_as_well() {
    let (app, io, r) = launched(&[]);
    let out = respond(&app, with_cookies(get("/hub/logout"), &r), &io);
    let hub_deletions: Vec<&str> = out
        .headers
        .get_all("set-cookie")
        .filter(|c| c.starts_with("jupyterhub-hub-login=;"))
        .collect();
    assert!(
        hub_deletions.iter().any(|c| frame_safe(c)),
        "{hub_deletions:?}"
    );
    assert!(
        hub_deletions.iter().any(|c| !frame_safe(c)),
        "{hub_deletions:?}"
    );
    let worker: Vec<&str> = out
        .headers
        .get_all("set-cookie")
        .filter(|c| c.starts_with("__Host-hubgate="))
        .collect();
    assert_eq!(worker.len(), 2, "{worker:?}");
}

// ---------- one scheme everywhere (TRUST_FORWARDED_PROTO) ----------

fn initiation_behind_tls_proxy(extra: &[(&str, &str)]) -> hubgate::http::Response {
    let app = lti_app(extra);
    let io = TestIo::new();
    let mut req = get(&format!(
        "/hub/lti13/oauth_login?iss={}&client_id={CLIENT}&login_hint=u&target_link_uri={}",
        urlenc(LMS),
        urlenc("https://hub.example.edu/hub/")
    ));
    req.url.set_scheme("http").unwrap();
    req.headers.push("X-Forwarded-Proto", "https");
    respond(&app, req, &io)
}

#[test]
fn behind_a_trusted_tls_front_end_redirect_uri_and_cookies_are_https() {
    let r = initiation_behind_tls_proxy(&[("TRUST_FORWARDED_PROTO", "true")]);
    assert_eq!(r.status, 302, "{}", body(&r));
    assert_eq!(
        query(r.location().unwrap(), "redirect_uri").as_deref(),
        Some("https://hub.example.edu/hub/lti13/oauth_callback")
    );
    let flow = r.headers.get("set-cookie").unwrap();
    assert!(
        flow.starts_with("__Host-hubgate-lti-") && flow.contains("Secure"),
        "{flow}"
    );
}

#[test]
fn x_forwarded_proto_is_ignored_unless_the_operator_trusts_it() {
    let r = initiation_behind_tls_proxy(&[]);
    assert_eq!(r.status, 302, "{}", body(&r));
    assert_eq!(
        query(r.location().unwrap(), "redirect_uri").as_deref(),
        Some("http://hub.example.edu/hub/lti13/oauth_callback")
    );
    assert!(r
        .headers
        .get("set-cookie")
        .unwrap()
        .starts_with("hubgate-lti-"));
}

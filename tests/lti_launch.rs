//! LTI 1.3 login initiation and launch through the core, against RSA
//! platforms made here. Includes the cases of ltiauthenticator's own suite
//! (bad signature, wrong issuer, expired, iat in the future, aud mismatch,
//! version 1.0.0, empty resource_link.id, azp, state/nonce, username).

mod common;
mod lti_common;
use common::*;
use hubgate::http::Method;
use lti_common::*;
use serde_json::{json, Value};

fn setup() -> (hubgate::app::App, TestIo, RsaPlatform) {
    let (app, io) = (lti_app(&[]), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    (app, io, p)
}

fn assert_refused(r: &hubgate::http::Response, io: &TestIo, status: u16, detail: &str) {
    assert_eq!(r.status, status, "{}", body(r));
    assert!(
        io.logged(detail),
        "expected {detail:?} in the log: {:?}",
        io.logs.borrow()
    );
}

// ---------- login initiation ----------

#[test]
fn login_redirects_to_platform_authorize_url_with_every_oidc_parameter() {
    let (app, io, _) = setup();
    let r = initiate(&app, &io, LMS, CLIENT);
    assert_eq!(r.status, 302);
    let loc = r.location().unwrap();
    assert!(loc.starts_with("https://lms.example.edu/auth?"), "{loc}");
    for (k, v) in [
        ("scope", "openid"),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("prompt", "none"),
        ("client_id", CLIENT),
        ("login_hint", "user-1234"),
        ("lti_message_hint", "rl-1"),
        (
            "redirect_uri",
            "https://hub.example.edu/hub/lti13/oauth_callback",
        ),
    ] {
        assert_eq!(query(loc, k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(query(loc, "state").unwrap().len(), 43);
    assert_eq!(query(loc, "nonce").unwrap().len(), 43);
}

#[test]
fn login_flow_cookie_works_inside_an_lms_iframe() {
    let (app, io, _) = setup();
    let r = initiate(&app, &io, LMS, CLIENT);
    let c = r.headers.get("set-cookie").unwrap();
    assert!(c.starts_with("__Host-hubgate-lti-"), "{c}");
    for attr in [
        "SameSite=None",
        "Secure",
        "Partitioned",
        "HttpOnly",
        "Path=/",
    ] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
}

#[test]
fn login_accepts_a_form_post() {
    let (app, io, _) = setup();
    let r = respond(
        &app,
        post(
            "/hub/lti13/oauth_login",
            form(&[
                ("iss", LMS),
                ("login_hint", "u"),
                ("target_link_uri", "https://hub.example.edu/hub/"),
            ]),
        ),
        &io,
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        query(r.location().unwrap(), "client_id").as_deref(),
        Some(CLIENT)
    );
}

#[test]
fn login_without_iss_login_hint_or_target_link_uri_is_400() {
    let (app, io, _) = setup();
    let full = [
        ("iss", LMS),
        ("login_hint", "u"),
        ("target_link_uri", "https://hub.example.edu/hub/"),
    ];
    for missing in ["iss", "login_hint", "target_link_uri"] {
        let pairs: Vec<(&str, &str)> = full
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let q = String::from_utf8(form(&pairs)).unwrap();
        let r = respond(&app, get(&format!("/hub/lti13/oauth_login?{q}")), &io);
        assert_refused(
            &r,
            &io,
            400,
            &format!("missing parameter \\\"{missing}\\\""),
        );
    }
}

#[test]
fn login_from_an_unregistered_issuer_is_401() {
    let (app, io, _) = setup();
    let r = initiate(&app, &io, "https://evil.example", CLIENT);
    assert_refused(&r, &io, 401, "is not a registered platform");
}

#[test]
fn login_with_an_unregistered_client_id_is_401() {
    let (app, io, _) = setup();
    let r = initiate(&app, &io, LMS, "other-client");
    assert_refused(&r, &io, 401, "is not registered for issuer");
}

#[test]
fn login_with_an_unregistered_deployment_is_403() {
    let (app, io, _) = setup();
    let q = String::from_utf8(form(&[
        ("iss", LMS),
        ("login_hint", "u"),
        ("target_link_uri", "https://hub.example.edu/hub/"),
        ("lti_deployment_id", "dep-9"),
    ]))
    .unwrap();
    let r = respond(&app, get(&format!("/hub/lti13/oauth_login?{q}")), &io);
    assert_refused(&r, &io, 403, "deployment \\\"dep-9\\\" is not registered");
}

// ---------- the launch ----------

#[test]
fn launch_starts_an_embedded_session_and_lands_on_the_target_through_hub_login() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(r.status, 302, "{}", body(&r));
    assert_eq!(r.location(), Some("/hub/user-redirect/lab"));
    let cookies: Vec<&str> = r.headers.get_all("set-cookie").collect();
    assert!(cookies.iter().any(|c| c.starts_with("__Host-hubgate=")
        && c.contains("SameSite=None")
        && c.contains("Partitioned")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("__Host-hubgate-lti-") && c.contains("Max-Age=0")));
    let plan = io.hub_calls.borrow().last().cloned().unwrap();
    assert!(
        plan.url
            .ends_with("/hub/login?next=%2Fhub%2Fuser-redirect%2Flab"),
        "{}",
        plan.url
    );
    assert_eq!(
        plan.headers.get("x-forwarded-user"),
        Some("alice@example.edu")
    );
    assert_eq!(
        plan.headers.get("x-forwarded-groups"),
        Some("lti:lms.example.edu:course-42,lti:lms.example.edu:DS101")
    );
    assert_eq!(plan.headers.get("x-forwarded-admin"), Some("false"));
}

#[test]
fn launch_answers_get_with_405() {
    let (app, io, _) = setup();
    let r = respond(&app, get("/hub/lti13/oauth_callback"), &io);
    assert_eq!(r.status, 405);
    assert_eq!(r.headers.get("allow"), Some("POST"));
}

#[test]
fn launch_without_state_is_400() {
    let (app, io, p) = setup();
    let login = initiate(&app, &io, LMS, CLIENT);
    let nonce = query(login.location().unwrap(), "nonce").unwrap();
    let token = p.sign(resource_link_claims(&nonce, LMS, CLIENT), T0, T0 + 300);
    let r = respond(
        &app,
        with_cookies(
            post("/hub/lti13/oauth_callback", form(&[("id_token", &token)])),
            &login,
        ),
        &io,
    );
    assert_refused(&r, &io, 400, "state parameter missing");
}

#[test]
fn launch_with_a_state_that_does_not_match_the_flow_cookie_is_400() {
    let (app, io, p) = setup();
    let login = initiate(&app, &io, LMS, CLIENT);
    let loc = login.location().unwrap();
    let nonce = query(loc, "nonce").unwrap();
    let state = query(loc, "state").unwrap();
    // Same cookie-name prefix (first 16 characters), different state.
    let forged = format!("{}{}", &state[..16], "x".repeat(state.len() - 16));
    let token = p.sign(resource_link_claims(&nonce, LMS, CLIENT), T0, T0 + 300);
    let r = respond(
        &app,
        with_cookies(
            post(
                "/hub/lti13/oauth_callback",
                form(&[("id_token", &token), ("state", &forged)]),
            ),
            &login,
        ),
        &io,
    );
    assert_refused(&r, &io, 400, "state does not match");
}

#[test]
fn launch_without_the_flow_cookie_is_400() {
    let (app, io, p) = setup();
    let login = initiate(&app, &io, LMS, CLIENT);
    let loc = login.location().unwrap();
    let token = p.sign(
        resource_link_claims(&query(loc, "nonce").unwrap(), LMS, CLIENT),
        T0,
        T0 + 300,
    );
    let r = respond(
        &app,
        post(
            "/hub/lti13/oauth_callback",
            form(&[
                ("id_token", &token),
                ("state", &query(loc, "state").unwrap()),
            ]),
        ),
        &io,
    );
    assert_refused(&r, &io, 400, "no flow cookie");
}

#[test]
fn launch_without_id_token_is_400() {
    let (app, io, _) = setup();
    let login = initiate(&app, &io, LMS, CLIENT);
    let state = query(login.location().unwrap(), "state").unwrap();
    let r = respond(
        &app,
        with_cookies(
            post("/hub/lti13/oauth_callback", form(&[("state", &state)])),
            &login,
        ),
        &io,
    );
    assert_refused(&r, &io, 400, "missing parameter \\\"id_token\\\"");
}

#[test]
fn launch_carrying_a_platform_error_is_401() {
    let (app, io, _) = setup();
    let login = initiate(&app, &io, LMS, CLIENT);
    let state = query(login.location().unwrap(), "state").unwrap();
    let r = respond(
        &app,
        with_cookies(
            post(
                "/hub/lti13/oauth_callback",
                form(&[("state", &state), ("error", "login_required")]),
            ),
            &login,
        ),
        &io,
    );
    assert_refused(&r, &io, 401, "login_required");
}

#[test]
fn rejects_launch_signed_by_another_key_with_the_same_kid() {
    let (app, io, _) = setup();
    let impostor = RsaPlatform::new(1, "lms-k1");
    let r = launch(&app, &io, &impostor, |_| {});
    assert_refused(&r, &io, 401, "signature does not verify");
}

#[test]
fn rejects_launch_with_a_kid_the_platform_does_not_publish() {
    let (app, io, _) = setup();
    let stranger = RsaPlatform::new(1, "unknown-kid");
    let r = launch(&app, &io, &stranger, |_| {});
    assert_refused(&r, &io, 401, "no key with kid");
}

#[test]
fn rejects_launch_with_alg_none_or_hmac_keyed_with_the_public_key() {
    let (app, io, p) = setup();
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    for alg in ["none", "HS256"] {
        let r = launch_with(&app, &io, LMS, CLIENT, |nonce| {
            let mut c = resource_link_claims(nonce, LMS, CLIENT);
            c["iat"] = T0.into();
            c["exp"] = (T0 + 300).into();
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": alg, "kid": p.kid})),
                b64(&c),
                "c2lnbmF0dXJl"
            )
        });
        assert_refused(
            &r,
            &io,
            401,
            &format!("algorithm \\\"{alg}\\\" is not accepted"),
        );
    }
}

#[test]
fn rejects_launch_from_the_wrong_issuer() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| c["iss"] = "https://evil.example".into());
    assert_refused(&r, &io, 401, "is not the expected issuer");
}

#[test]
fn rejects_launch_for_another_audience() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| c["aud"] = "someone-else".into());
    assert_refused(&r, &io, 401, "aud does not contain client_id");
}

#[test]
fn rejects_launch_with_several_audiences_and_no_azp() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| c["aud"] = json!([CLIENT, "other"]));
    assert_refused(&r, &io, 401, "several audiences and no azp");
}

#[test]
fn rejects_launch_whose_azp_is_another_client() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c["aud"] = json!([CLIENT, "other"]);
        c["azp"] = "other".into();
    });
    assert_refused(&r, &io, 401, "azp \\\"other\\\" is not client_id");
}

#[test]
fn accepts_launch_with_several_audiences_and_matching_azp() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c["aud"] = json!(["other", CLIENT]);
        c["azp"] = CLIENT.into();
    });
    assert_eq!(r.status, 302, "{}", body(&r));
}

#[test]
fn rejects_expired_launch() {
    let (app, io, p) = setup();
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        p.sign(resource_link_claims(n, LMS, CLIENT), T0 - 600, T0 - 1)
    });
    assert_refused(&r, &io, 401, "token expired");
}

#[test]
fn accepts_a_just_expired_launch_within_the_time_leeway() {
    let (app, io) = (lti_app(&[("LTI13_TIME_LEEWAY", "10")]), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        p.sign(resource_link_claims(n, LMS, CLIENT), T0 - 600, T0 - 5)
    });
    assert_eq!(r.status, 302, "{}", body(&r));
}

#[test]
fn rejects_launch_issued_in_the_future() {
    let (app, io, p) = setup();
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        p.sign(resource_link_claims(n, LMS, CLIENT), T0 + 120, T0 + 600)
    });
    assert_refused(&r, &io, 401, "is in the future");
}

#[test]
fn rejects_launch_not_yet_valid() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| c["nbf"] = (T0 + 120).into());
    assert_refused(&r, &io, 401, "nbf");
}

#[test]
fn rejects_launch_whose_nonce_does_not_match_the_flow() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| c["nonce"] = "another-nonce".into());
    assert_refused(&r, &io, 401, "nonce does not match");
}

#[test]
fn rejects_launch_whose_nonce_was_already_used() {
    let (app, io, p) = setup();
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
    let replay = post_it();
    assert_refused(&replay, &io, 401, "nonce was already used");
}

#[test]
fn rejects_launch_without_deployment_id() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c.as_object_mut()
            .unwrap()
            .remove(&format!("{CLAIM}deployment_id"));
    });
    assert_refused(&r, &io, 400, "launch claim deployment_id: missing");
}

#[test]
fn rejects_launch_from_an_unregistered_deployment() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}deployment_id")] = "dep-2".into()
    });
    assert_refused(&r, &io, 403, "deployment \\\"dep-2\\\" is not registered");
}

#[test]
fn rejects_launch_with_version_1_0_0() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}version")] = "1.0.0".into()
    });
    assert_refused(&r, &io, 400, "launch claim version");
}

#[test]
fn rejects_launch_with_an_unknown_message_type() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}message_type")] = "LtiSubmissionReviewRequest".into()
    });
    assert_refused(&r, &io, 400, "launch claim message_type");
}

#[test]
fn rejects_launch_with_an_empty_resource_link_id() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}resource_link")] = json!({"id": ""})
    });
    assert_refused(&r, &io, 400, "launch claim resource_link");
}

#[test]
fn rejects_launch_without_target_link_uri() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c.as_object_mut()
            .unwrap()
            .remove(&format!("{CLAIM}target_link_uri"));
    });
    assert_refused(&r, &io, 400, "launch claim target_link_uri");
}

#[test]
fn rejects_launch_without_roles() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c.as_object_mut().unwrap().remove(&format!("{CLAIM}roles"));
    });
    assert_refused(&r, &io, 400, "launch claim roles");
}

#[test]
fn accepts_launch_with_an_empty_roles_array() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| c[format!("{CLAIM}roles")] = json!([]));
    assert_eq!(r.status, 302, "{}", body(&r));
}

// ---------- who the user is ----------

fn user_of(
    app: &hubgate::app::App,
    io: &TestIo,
    r: &hubgate::http::Response,
) -> (String, String, String) {
    assert_eq!(r.status, 302, "{}", body(r));
    let _ = (app, with_cookies(get("/hub/"), r));
    // Identity reaches the hub only on the worker's own login subrequest.
    let call = io
        .hub_calls
        .borrow()
        .last()
        .cloned()
        .expect("a login at the hub");
    let h = |n: &str| call.headers.get(n).unwrap_or("").to_string();
    (
        h("x-forwarded-user"),
        h("x-forwarded-admin"),
        h("x-forwarded-groups"),
    )
}

#[test]
fn username_is_the_email_claim_by_default() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(user_of(&app, &io, &r).0, "alice@example.edu");
}

#[test]
fn username_key_custom_x_reads_the_custom_claim() {
    let (app, io) = (
        lti_app(&[("LTI13_USERNAME_KEY", "custom_uname")]),
        TestIo::new(),
    );
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(user_of(&app, &io, &r).0, "alice_c");
}

#[test]
fn username_key_can_name_another_top_level_claim() {
    let (app, io) = (lti_app(&[("LTI13_USERNAME_KEY", "name")]), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(user_of(&app, &io, &r).0, "alice");
}

#[test]
fn username_falls_back_to_sub_when_the_claim_is_absent() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c.as_object_mut().unwrap().remove("email");
    });
    assert_eq!(user_of(&app, &io, &r).0, "user-1234");
}

#[test]
fn username_falls_back_to_sub_when_the_custom_claim_is_absent() {
    let (app, io) = (
        lti_app(&[("LTI13_USERNAME_KEY", "custom_missing")]),
        TestIo::new(),
    );
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch(&app, &io, &p, |_| {});
    assert_eq!(user_of(&app, &io, &r).0, "user-1234");
}

#[test]
fn launch_without_any_username_is_400() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        let m = c.as_object_mut().unwrap();
        m.remove("email");
        m.remove("sub");
    });
    assert_refused(&r, &io, 400, "no username in claim");
}

#[test]
fn instructor_role_makes_an_admin() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}roles")] =
            json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"])
    });
    assert_eq!(user_of(&app, &io, &r).1, "true");
}

#[test]
fn teaching_assistant_sub_role_is_not_an_admin_by_default() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}roles")] = json!([
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
        ])
    });
    assert_eq!(user_of(&app, &io, &r).1, "false");
}

#[test]
fn admin_roles_binding_accepts_short_role_names() {
    let (app, io) = (lti_app(&[("LTI13_ADMIN_ROLES", "Mentor")]), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}roles")] =
            json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"])
    });
    assert_eq!(user_of(&app, &io, &r).1, "true");
}

#[test]
fn blocked_user_is_refused_with_403() {
    let (app, io) = (
        lti_app(&[("BLOCKED_USERS", "alice@example.edu")]),
        TestIo::new(),
    );
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let r = launch(&app, &io, &p, |_| {});
    assert_refused(&r, &io, 403, "is blocked");
}

// ---------- where the launch lands ----------

#[test]
fn target_on_another_origin_lands_on_the_hub_home() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}target_link_uri")] = "https://evil.example/hub/".into()
    });
    assert_eq!(r.location(), Some("/hub/"));
}

#[test]
fn target_outside_base_url_lands_on_the_hub_home() {
    let (app, io) = (lti_app(&[("BASE_URL", "/jh/")]), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let login = respond(
        &app,
        get(&format!(
            "/jh/hub/lti13/oauth_login?iss={}&login_hint=u&target_link_uri=x&client_id={CLIENT}",
            urlenc(LMS)
        )),
        &io,
    );
    let loc = login.location().unwrap().to_string();
    let mut c = resource_link_claims(&query(&loc, "nonce").unwrap(), LMS, CLIENT);
    c[format!("{CLAIM}target_link_uri")] = format!("{ORIGIN}/other/app").into();
    let token = p.sign(c, T0, T0 + 300);
    let r = respond(
        &app,
        with_cookies(
            post(
                "/jh/hub/lti13/oauth_callback",
                form(&[
                    ("id_token", &token),
                    ("state", &query(&loc, "state").unwrap()),
                ]),
            ),
            &login,
        ),
        &io,
    );
    assert_eq!(r.location(), Some("/jh/hub/"));
}

#[test]
fn target_naming_the_launch_url_lands_on_its_next_parameter() {
    let (app, io, p) = setup();
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}target_link_uri")] =
            format!("{ORIGIN}/hub/lti13/oauth_callback?next=%2Fhub%2Fuser-redirect%2Fgit-pull")
                .into()
    });
    assert_eq!(r.location(), Some("/hub/user-redirect/git-pull"));
}

// ---------- platform keys ----------

#[test]
fn platform_jwks_down_without_a_cached_set_is_502() {
    let (app, io) = (lti_app(&[]), TestIo::new());
    io.route("https://lms.example.edu/jwks", |_| {
        json_response(503, json!({}))
    });
    let p = RsaPlatform::new(0, "lms-k1");
    let r = launch(&app, &io, &p, |_| {});
    assert_refused(&r, &io, 502, "could not be fetched");
}

#[test]
fn keeps_serving_launches_from_stale_keys_when_platform_is_down() {
    let (app, io, p) = setup();
    assert_eq!(launch(&app, &io, &p, |_| {}).status, 302);
    io.route("https://lms.example.edu/jwks", |_| {
        json_response(503, json!({}))
    });
    io.advance(2 * 3600); // past the TTL: a refetch is tried and fails
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        p.sign(resource_link_claims(n, LMS, CLIENT), T0 + 7200, T0 + 7500)
    });
    assert_eq!(r.status, 302, "{}", body(&r));
    assert!(io.logged("jwks_stale_used"));
}

#[test]
fn platform_key_rotation_is_picked_up_by_one_refetch() {
    let (app, io, p) = setup();
    assert_eq!(launch(&app, &io, &p, |_| {}).status, 302);
    let rotated = RsaPlatform::new(1, "lms-k2");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![rotated.jwk()]);
    io.advance(5);
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        rotated.sign(resource_link_claims(n, LMS, CLIENT), T0 + 5, T0 + 300)
    });
    assert_eq!(r.status, 302, "{}", body(&r));
    assert_eq!(io.fetch_count("https://lms.example.edu/jwks"), 2);
}

#[test]
fn warm_isolate_fetches_no_jwks_per_launch() {
    let (app, io, p) = setup();
    for _ in 0..20 {
        assert_eq!(launch(&app, &io, &p, |_| {}).status, 302);
    }
    assert_eq!(io.fetch_count("https://lms.example.edu/jwks"), 1);
}

// ---------- several platforms ----------

fn two_platforms() -> (hubgate::app::App, TestIo, RsaPlatform, RsaPlatform) {
    let platforms = json!([
        {"issuer": LMS, "client_id": CLIENT, "authorize_url": "https://lms.example.edu/auth",
         "jwks_endpoint": "https://lms.example.edu/jwks", "deployment_ids": [DEPLOYMENT]},
        {"issuer": LMS2, "client_id": ["c-a", "c-b"], "authorize_url": "https://canvas.example.org/auth",
         "jwks_endpoint": "https://canvas.example.org/jwks"},
    ])
    .to_string();
    let app = lti_app(&[
        ("LTI13_ISSUER", ""),
        ("LTI13_CLIENT_ID", ""),
        ("LTI13_AUTHORIZE_URL", ""),
        ("LTI13_JWKS_ENDPOINT", ""),
        ("LTI13_DEPLOYMENT_IDS", ""),
        ("LTI13_PLATFORMS", &platforms),
    ]);
    let io = TestIo::new();
    let a = RsaPlatform::new(0, "a1");
    let b = RsaPlatform::new(1, "b1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![a.jwk()]);
    serve_jwks(&io, "https://canvas.example.org/jwks", vec![b.jwk()]);
    (app, io, a, b)
}

#[test]
fn two_platforms_each_launch_with_their_own_keys() {
    let (app, io, a, b) = two_platforms();
    let ra = launch(&app, &io, &a, |_| {});
    assert_eq!(ra.status, 302, "{}", body(&ra));
    let rb = launch_with(&app, &io, LMS2, "c-b", |n| {
        b.sign(resource_link_claims(n, LMS2, "c-b"), T0, T0 + 300)
    });
    assert_eq!(rb.status, 302, "{}", body(&rb));
    assert_eq!(io.fetch_count("https://lms.example.edu/jwks"), 1);
    assert_eq!(io.fetch_count("https://canvas.example.org/jwks"), 1);
}

#[test]
fn launch_signed_by_one_platform_in_a_flow_started_by_another_is_401() {
    let (app, io, _a, b) = two_platforms();
    // Flow started for LMS; id_token from LMS2 claiming to be LMS.
    let r = launch_with(&app, &io, LMS, CLIENT, |n| {
        let mut c = resource_link_claims(n, LMS, CLIENT);
        c["iss"] = LMS.into();
        RsaPlatform {
            key: b.key.clone(),
            kid: "a1".into(),
        }
        .sign(c, T0, T0 + 300)
    });
    assert_refused(&r, &io, 401, "signature does not verify");
}

#[test]
fn issuer_with_several_client_ids_needs_client_id_at_login() {
    let (app, io, _a, _b) = two_platforms();
    let q = String::from_utf8(form(&[
        ("iss", LMS2),
        ("login_hint", "u"),
        ("target_link_uri", "https://hub.example.edu/hub/"),
    ]))
    .unwrap();
    let r = respond(&app, get(&format!("/hub/lti13/oauth_login?{q}")), &io);
    assert_refused(&r, &io, 400, "has several client ids");
}

#[test]
fn unknown_method_on_login_is_405() {
    let (app, io, _) = setup();
    let r = respond(
        &app,
        request(Method::Other, "/hub/lti13/oauth_login", &[]),
        &io,
    );
    assert_eq!(r.status, 405);
}

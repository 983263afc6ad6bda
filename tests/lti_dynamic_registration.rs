//! LTI Dynamic Registration (issue 12): the administrator's one URL, the
//! platform's configuration checked, the tool's registration posted, the
//! platform kept in KV and launching right away; guarded by the
//! registration secret or a hub admin's session; bindings win.

mod common;
mod lti_common;
use common::*;
use hubgate::http::{Method, OutboundRequest, Response};
use lti_common::*;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const SECRET_R: &str = "registration-secret-of-at-least-32-chars";
const CONFIG: &str = "https://canvas.example.org/.well-known/openid-configuration";

struct Setup {
    app: hubgate::app::App,
    io: TestIo,
    posted: Rc<RefCell<Vec<OutboundRequest>>>,
}

fn platform_config(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": "https://canvas.example.org/auth",
        "token_endpoint": "https://canvas.example.org/token",
        "jwks_uri": "https://canvas.example.org/jwks",
        "registration_endpoint": "https://canvas.example.org/register",
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "canvas", "version": "1", "messages_supported": [{"type": "LtiResourceLinkRequest"}]
        }
    })
}

fn setup(extra: &[(&str, &str)], issuer: &str, register_status: u16) -> Setup {
    let mut b = vec![
        ("LTI13_DYNAMIC_REGISTRATION", "true"),
        ("LTI13_REGISTRATION_SECRET", SECRET_R),
    ];
    b.extend_from_slice(extra);
    let (app, io) = (lti_app(&b), TestIo::new());
    let cfg = platform_config(issuer);
    io.route(CONFIG, move |_| json_response(200, cfg.clone()));
    let posted: Rc<RefCell<Vec<OutboundRequest>>> = Rc::default();
    let p = posted.clone();
    io.route("https://canvas.example.org/register", move |req| {
        p.borrow_mut().push(req.clone());
        json_response(
            register_status,
            json!({
                "client_id": "dyn-1",
                "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": "dep-dyn"}
            }),
        )
    });
    serve_jwks(
        &io,
        "https://lms.example.edu/jwks",
        vec![RsaPlatform::new(0, "lms-k1").jwk()],
    );
    serve_jwks(
        &io,
        "https://canvas.example.org/jwks",
        vec![RsaPlatform::new(1, "cv-k1").jwk()],
    );
    Setup { app, io, posted }
}

fn register_path(secret: Option<&str>) -> String {
    let mut q = format!(
        "openid_configuration={}&registration_token=reg-tok-1",
        urlenc(CONFIG)
    );
    if let Some(s) = secret {
        q = format!("secret={}&{q}", urlenc(s));
    }
    format!("/hub/lti13/register?{q}")
}

fn stored(io: &TestIo) -> Option<Value> {
    io.kv
        .borrow()
        .iter()
        .find(|((_, k), _)| k == "lti-registrations:v1")
        .map(|(_, v)| serde_json::from_str(v).unwrap())
}

fn dyn_launch(s: &Setup) -> Response {
    let p = RsaPlatform::new(1, "cv-k1");
    launch_with(
        &s.app,
        &s.io,
        "https://canvas.example.org",
        "dyn-1",
        |nonce| {
            let mut c = resource_link_claims(nonce, "https://canvas.example.org", "dyn-1");
            c[format!("{CLAIM}deployment_id")] = "dep-dyn".into();
            p.sign(c, T0, T0 + 300)
        },
    )
}

#[test]
fn with_the_registration_secret_the_tool_registers_and_the_platform_launches_right_away() {
    let s = setup(&[], "https://canvas.example.org", 200);
    let r = respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io);
    assert_eq!(r.status, 200, "{}", body(&r));
    assert!(body(&r).contains("org.imsglobal.lti.close"));
    assert!(r
        .headers
        .get("content-security-policy")
        .unwrap()
        .contains("script-src 'sha256-"));
    // What the platform was sent.
    let posted = s.posted.borrow();
    let req = &posted[0];
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.headers.get("authorization"), Some("Bearer reg-tok-1"));
    let sent: Value = serde_json::from_slice(req.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        sent["initiate_login_uri"],
        format!("{ORIGIN}/hub/lti13/oauth_login")
    );
    assert_eq!(
        sent["redirect_uris"],
        json!([format!("{ORIGIN}/hub/lti13/oauth_callback")])
    );
    assert_eq!(sent["jwks_uri"], format!("{ORIGIN}/hub/lti13/jwks"));
    assert_eq!(sent["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(sent["response_types"], json!(["id_token"]));
    let tool = &sent["https://purl.imsglobal.org/spec/lti-tool-configuration"];
    assert_eq!(tool["domain"], "hub.example.edu");
    assert_eq!(tool["messages"][0]["type"], "LtiResourceLinkRequest");
    assert_eq!(tool["messages"][1]["type"], "LtiDeepLinkingRequest");
    drop(posted);
    // What the worker kept.
    let kept = stored(&s.io).expect("stored in KV");
    assert_eq!(kept[0]["issuer"], "https://canvas.example.org");
    assert_eq!(kept[0]["client_id"], json!(["dyn-1"]));
    assert_eq!(kept[0]["deployment_ids"], json!(["dep-dyn"]));
    assert_eq!(kept[0]["token_url"], "https://canvas.example.org/token");
    // And it launches at once, as its own platform.
    let launched = dyn_launch(&s);
    assert_eq!(launched.status, 302, "{}", s.io.logs.borrow().join("\n"));
    let groups = last_hub_login(&s.io)
        .headers
        .get("x-forwarded-groups")
        .unwrap_or_default()
        .to_string();
    assert!(
        groups.contains("lti:canvas.example.org:course-42"),
        "{groups}"
    );
}

#[test]
fn without_the_secret_or_an_admin_session_registration_is_refused_and_nothing_is_fetched() {
    let s = setup(&[], "https://canvas.example.org", 200);
    for path in [
        register_path(None),
        register_path(Some("wrong-secret-wrong-secret-wrong-secret")),
    ] {
        let r = respond(&s.app, get(&path), &s.io);
        assert_eq!(r.status, 403, "{path}: {}", body(&r));
    }
    assert_eq!(s.io.fetch_count("https://canvas.example.org"), 0);
    assert!(stored(&s.io).is_none());
    // An unregistered platform cannot launch.
    let r = dyn_launch_initiation(&s);
    assert_eq!(r.status, 401, "{}", body(&r));
}

fn dyn_launch_initiation(s: &Setup) -> Response {
    initiate(&s.app, &s.io, "https://canvas.example.org", "dyn-1")
}

#[test]
fn an_admin_of_the_hubs_identity_provider_may_register_an_instructor_may_not() {
    // OAuth (carol is in ADMIN_USERS) beside LTI, with dynamic registration.
    let mut b: Vec<(String, String)> = lti_bindings(&[
        ("LTI13_DYNAMIC_REGISTRATION", "true"),
        ("LTI13_REGISTRATION_SECRET", SECRET_R),
    ]);
    b.retain(|(k, _)| {
        !k.starts_with("OAUTH")
            && !["OIDC_ISSUER", "ALLOWED_USERS", "ADMIN_USERS"].contains(&k.as_str())
    });
    let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = app(&refs);
    let io = TestIo::new();
    let cfg = platform_config("https://canvas.example.org");
    io.route(CONFIG, move |_| json_response(200, cfg.clone()));
    io.route("https://canvas.example.org/register", |_| {
        json_response(200, json!({"client_id": "dyn-1"}))
    });
    serve_jwks(
        &io,
        "https://lms.example.edu/jwks",
        vec![RsaPlatform::new(0, "lms-k1").jwk()],
    );
    let _idp = good_idp_for(&io, "carol");
    let admin = login_round_trip(&app, &io, "/hub/", |u| u);
    assert_eq!(admin.status, 302, "{}", body(&admin));
    let r = respond(&app, with_cookies(get(&register_path(None)), &admin), &io);
    assert_eq!(r.status, 200, "{}", body(&r));

    // An instructor is a hub admin by role, yet may not add platforms.
    let p = RsaPlatform::new(0, "lms-k1");
    let instructor = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}roles")] =
            json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]);
    });
    assert_eq!(instructor.status, 302, "{}", body(&instructor));
    assert_eq!(
        last_hub_login(&io).headers.get("x-forwarded-admin"),
        Some("true")
    );
    let before = io.fetch_count("https://canvas.example.org");
    let r = respond(
        &app,
        with_cookies(get(&register_path(None)), &instructor),
        &io,
    );
    assert_eq!(r.status, 403, "{}", body(&r));
    assert_eq!(io.fetch_count("https://canvas.example.org"), before);
}

#[test]
fn a_registered_platforms_users_are_namespaced_and_its_roles_make_no_admin() {
    let s = setup(&[], "https://canvas.example.org", 200);
    assert_eq!(
        respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io).status,
        200
    );
    let p = RsaPlatform::new(1, "cv-k1");
    let r = launch_with(
        &s.app,
        &s.io,
        "https://canvas.example.org",
        "dyn-1",
        |nonce| {
            let mut c = resource_link_claims(nonce, "https://canvas.example.org", "dyn-1");
            c[format!("{CLAIM}deployment_id")] = "dep-dyn".into();
            c[format!("{CLAIM}roles")] =
                json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]);
            p.sign(c, T0, T0 + 300)
        },
    );
    assert_eq!(r.status, 302, "{}", body(&r));
    let login = last_hub_login(&s.io);
    assert_eq!(
        login.headers.get("x-forwarded-user"),
        Some("canvas.example.org:alice@example.edu")
    );
    assert_eq!(login.headers.get("x-forwarded-admin"), Some("false"));
}

#[test]
fn dynamic_registration_needs_usernames_namespaced_by_platform() {
    for ns in ["none", "method"] {
        let b = lti_bindings(&[
            ("LTI13_DYNAMIC_REGISTRATION", "true"),
            ("USERNAME_NAMESPACE", ns),
        ]);
        let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let errors = hubgate::config::parse(&bindings(&refs)).expect_err(ns);
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("USERNAME_NAMESPACE")),
            "{ns}: {errors:?}"
        );
    }
}

#[test]
fn dynamic_registration_is_off_unless_the_operator_turns_it_on() {
    let s = setup(
        &[("LTI13_DYNAMIC_REGISTRATION", "")],
        "https://canvas.example.org",
        200,
    );
    let r = respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io);
    assert_eq!(r.status, 404, "{}", body(&r));
    assert_eq!(s.io.fetch_count("https://canvas.example.org"), 0);
}

#[test]
fn a_configuration_whose_issuer_is_not_its_own_url_is_refused_before_registering() {
    for issuer in [
        "https://lms.example.edu",
        "https://canvas.example.org.evil.net",
        "http://canvas.example.org",
    ] {
        let s = setup(&[], issuer, 200);
        let r = respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io);
        assert_eq!(r.status, 400, "{issuer}: {}", body(&r));
        assert!(s.posted.borrow().is_empty(), "{issuer}");
        assert!(stored(&s.io).is_none());
    }
}

#[test]
fn a_platform_that_refuses_the_registration_leaves_nothing_stored() {
    let s = setup(&[], "https://canvas.example.org", 400);
    let r = respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io);
    assert_eq!(r.status, 502, "{}", body(&r));
    assert!(stored(&s.io).is_none());
}

#[test]
fn a_registered_platform_whose_name_another_issuer_has_is_a_conflict_and_bindings_win() {
    // The bindings' platform is named lms.example.edu (its host).
    let s = setup(&[], "https://lms.example.edu/tenant", 200);
    s.io.routes.borrow_mut().insert(
        0,
        (
            "https://lms.example.edu/tenant/.well-known".to_string(),
            Box::new(|_| json_response(200, platform_config("https://lms.example.edu/tenant"))),
        ),
    );
    let path = format!(
        "/hub/lti13/register?secret={}&openid_configuration={}",
        urlenc(SECRET_R),
        urlenc("https://lms.example.edu/tenant/.well-known/openid-configuration")
    );
    let r = respond(&s.app, get(&path), &s.io);
    // Its host is the bindings' platform's name, with another issuer: the
    // two user bases would merge.
    assert_eq!(r.status, 409, "{}", body(&r));
    assert!(s.posted.borrow().is_empty());
    assert!(stored(&s.io).is_none());

    // A registered entry that collides with the bindings is left out.
    let s = setup(&[], "https://canvas.example.org", 200);
    s.io.kv.borrow_mut().insert(
        ("State".into(), "lti-registrations:v1".into()),
        json!([{
            "name": "lms.example.edu", "issuer": "https://impostor.example.net", "client_id": ["x"],
            "authorize_url": "https://impostor.example.net/auth", "jwks_endpoint": "https://impostor.example.net/jwks"
        }])
        .to_string(),
    );
    let r = initiate(&s.app, &s.io, "https://impostor.example.net", "x");
    assert_eq!(r.status, 401, "{}", body(&r));
}

#[test]
fn a_registration_keeps_stored_entries_it_cannot_read_and_refuses_to_overwrite_a_value_that_is_no_list(
) {
    let s = setup(&[], "https://canvas.example.org", 200);
    let typo = json!({"issuer": "https://typo.example.net", "client_id": ["t"], "authorise_url": "https://typo.example.net/auth"});
    s.io.kv.borrow_mut().insert(
        ("State".into(), "lti-registrations:v1".into()),
        json!([typo.clone()]).to_string(),
    );
    let r = respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io);
    assert_eq!(r.status, 200, "{}", body(&r));
    let kept = stored(&s.io).unwrap();
    assert_eq!(kept[0], typo, "the unreadable entry is kept as it was");
    assert_eq!(kept[1]["client_id"], json!(["dyn-1"]));

    let s = setup(&[], "https://canvas.example.org", 200);
    s.io.kv.borrow_mut().insert(
        ("State".into(), "lti-registrations:v1".into()),
        "{not json".into(),
    );
    let r = respond(&s.app, get(&register_path(Some(SECRET_R))), &s.io);
    assert_eq!(r.status, 409, "{}", body(&r));
    assert!(
        s.posted.borrow().is_empty(),
        "nothing registered at the platform"
    );
    let raw =
        s.io.kv
            .borrow()
            .get(&("State".to_string(), "lti-registrations:v1".to_string()))
            .cloned();
    assert_eq!(
        raw.as_deref(),
        Some("{not json"),
        "the stored value is untouched"
    );
}

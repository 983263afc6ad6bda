//! Deep linking, the tool configuration JSON and the tool's key set.

mod common;
mod lti_common;
use common::*;
use hubgate::jose::keys::{parse_key_set, verify_jwt, Alg};
use lti_common::*;
use serde_json::{json, Value};

fn setup(extra: &[(&str, &str)]) -> (hubgate::app::App, TestIo, RsaPlatform) {
    let (app, io) = (lti_app(extra), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    (app, io, p)
}

fn deep_linking_launch(
    app: &hubgate::app::App,
    io: &TestIo,
    p: &RsaPlatform,
) -> hubgate::http::Response {
    launch(app, io, p, |c| {
        c[format!("{CLAIM}message_type")] = "LtiDeepLinkingRequest".into();
        c[format!("{CLAIM}roles")] =
            json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]);
        c.as_object_mut()
            .unwrap()
            .remove(&format!("{CLAIM}resource_link"));
        c[format!("{DL}deep_linking_settings")] = json!({
            "deep_link_return_url": "https://lms.example.edu/deep_link_return",
            "accept_types": ["ltiResourceLink"],
            "data": "opaque-123",
            "title": "Notebook",
        });
    })
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap() + marker.len();
    let end = body[start..].find('"').unwrap();
    body[start..start + end].to_string()
}

fn submit(
    app: &hubgate::app::App,
    io: &TestIo,
    picker: &hubgate::http::Response,
    path: &str,
    with_session: bool,
) -> hubgate::http::Response {
    let ctx = hidden(&body(picker), "context");
    let req = post(
        "/hub/lti13/deep_link",
        form(&[("context", &ctx), ("title", "Lab 1"), ("path", path)]),
    );
    let req = if with_session {
        with_cookies(req, picker)
    } else {
        req
    };
    respond(app, req, io)
}

#[test]
fn deep_linking_launch_shows_the_picker_with_a_session() {
    let (app, io, p) = setup(&[]);
    let r = deep_linking_launch(&app, &io, &p);
    assert_eq!(r.status, 200, "{}", body(&r));
    let b = body(&r);
    assert!(
        b.contains("action=\"/hub/lti13/deep_link\"") && b.contains("value=\"Notebook\""),
        "{b}"
    );
    assert!(r
        .headers
        .get_all("set-cookie")
        .any(|c| c.starts_with("__Host-hubgate=") && c.contains("Partitioned")));
}

#[test]
fn deep_linking_response_is_signed_by_the_tool_key_published_at_jwks() {
    let (app, io, p) = setup(&[]);
    let picker = deep_linking_launch(&app, &io, &p);
    let r = submit(
        &app,
        &io,
        &picker,
        "/hub/user-redirect/lab/tree/lab1.ipynb",
        true,
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    let b = body(&r);
    assert!(
        b.contains("action=\"https://lms.example.edu/deep_link_return\""),
        "{b}"
    );
    let jwt = hidden(&b, "JWT");
    let jwks = respond(&app, get("/hub/lti13/jwks"), &io);
    assert_eq!(jwks.status, 200);
    let keys = parse_key_set(&body(&jwks)).unwrap();
    let (header, claims) =
        verify_jwt::<serde_json::Map<String, Value>>(&jwt, &keys, &[Alg::Rs256]).unwrap();
    assert!(header.key_id.is_some());
    let c = claims.custom;
    assert_eq!(c["iss"], CLIENT);
    assert_eq!(c["aud"], json!([LMS]));
    assert_eq!(c[&format!("{CLAIM}message_type")], "LtiDeepLinkingResponse");
    assert_eq!(c[&format!("{CLAIM}version")], "1.3.0");
    assert_eq!(c[&format!("{CLAIM}deployment_id")], DEPLOYMENT);
    assert_eq!(c[&format!("{DL}data")], "opaque-123");
    assert_eq!(
        c[&format!("{DL}content_items")],
        json!([{"type": "ltiResourceLink", "title": "Lab 1", "url": "https://hub.example.edu/hub/user-redirect/lab/tree/lab1.ipynb"}])
    );
    // The page may run exactly its one auto-submit script.
    let csp = r.headers.get("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("form-action https://lms.example.edu"),
        "{csp}"
    );
}

#[test]
fn deep_linking_response_without_the_instructors_session_is_403() {
    let (app, io, p) = setup(&[]);
    let picker = deep_linking_launch(&app, &io, &p);
    let r = submit(&app, &io, &picker, "/hub/", false);
    assert_eq!(r.status, 403);
}

#[test]
fn deep_linking_response_with_a_tampered_context_is_400() {
    let (app, io, p) = setup(&[]);
    let picker = deep_linking_launch(&app, &io, &p);
    let ctx = hidden(&body(&picker), "context");
    let tampered = format!("{}x", &ctx[..ctx.len() - 1]);
    let r = respond(
        &app,
        with_cookies(
            post(
                "/hub/lti13/deep_link",
                form(&[("context", &tampered), ("title", "t"), ("path", "/hub/")]),
            ),
            &picker,
        ),
        &io,
    );
    assert_eq!(r.status, 400);
}

#[test]
fn deep_linking_response_refuses_a_path_off_the_hub() {
    let (app, io, p) = setup(&[]);
    let picker = deep_linking_launch(&app, &io, &p);
    for path in ["https://evil.example/", "//evil.example/x", "relative"] {
        assert_eq!(submit(&app, &io, &picker, path, true).status, 400, "{path}");
    }
}

#[test]
fn deep_linking_response_expires_with_the_picker_context() {
    let (app, io, p) = setup(&[]);
    let picker = deep_linking_launch(&app, &io, &p);
    io.advance(601);
    assert_eq!(submit(&app, &io, &picker, "/hub/", true).status, 400);
}

#[test]
fn deep_linking_without_a_tool_key_is_500() {
    let (app, io, p) = setup(&[("LTI13_PRIVATE_KEY", "")]);
    let r = deep_linking_launch(&app, &io, &p);
    assert_eq!(r.status, 500);
}

#[test]
fn deep_linking_launch_without_settings_is_400() {
    let (app, io, p) = setup(&[]);
    let r = launch(&app, &io, &p, |c| {
        c[format!("{CLAIM}message_type")] = "LtiDeepLinkingRequest".into();
    });
    assert_eq!(r.status, 400);
}

// ---------- tool configuration and keys ----------

#[test]
fn tool_config_has_everything_an_lms_admin_pastes() {
    let (app, io, _) = setup(&[("LTI13_TOOL_NAME", "Course Hub")]);
    let r = respond(&app, get("/hub/lti13/config"), &io);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["title"], "Course Hub");
    assert!(v["description"].is_string());
    assert_eq!(
        v["oidc_initiation_url"],
        "https://hub.example.edu/hub/lti13/oauth_login"
    );
    assert_eq!(v["target_link_uri"], "https://hub.example.edu/hub/");
    assert_eq!(
        v["redirect_uris"],
        json!(["https://hub.example.edu/hub/lti13/oauth_callback"])
    );
    assert_eq!(
        v["public_jwk_url"],
        "https://hub.example.edu/hub/lti13/jwks"
    );
    assert_eq!(v["custom_fields"]["email"], "$Person.email.primary");
    assert!(v["scopes"].is_array());
    let placements = v["extensions"][0]["settings"]["placements"]
        .as_array()
        .unwrap();
    assert!(placements
        .iter()
        .any(|p| p["message_type"] == "LtiDeepLinkingRequest"));
    assert_eq!(v["extensions"][0]["domain"], "hub.example.edu");
}

#[test]
fn tool_config_honours_x_forwarded_proto_first_value() {
    let (app, io, _) = setup(&[]);
    let mut req = get("/hub/lti13/config");
    req.url = url::Url::parse("http://hub.example.edu/hub/lti13/config").unwrap();
    req.headers.push("X-Forwarded-Proto", "https,http");
    let v: Value = serde_json::from_slice(&respond(&app, req, &io).body).unwrap();
    assert_eq!(
        v["oidc_initiation_url"],
        "https://hub.example.edu/hub/lti13/oauth_login"
    );
}

#[test]
fn tool_config_ignores_a_forwarded_downgrade_to_http() {
    let (app, io, _) = setup(&[]);
    let mut req = get("/hub/lti13/config");
    req.headers.push("X-Forwarded-Proto", "http");
    let v: Value = serde_json::from_slice(&respond(&app, req, &io).body).unwrap();
    assert_eq!(
        v["public_jwk_url"],
        "https://hub.example.edu/hub/lti13/jwks"
    );
}

#[test]
fn tool_config_on_plain_http_without_forwarding_stays_http() {
    let (app, io, _) = setup(&[]);
    let mut req = get("/hub/lti13/config");
    req.url = url::Url::parse("http://127.0.0.1:8787/hub/lti13/config").unwrap();
    let v: Value = serde_json::from_slice(&respond(&app, req, &io).body).unwrap();
    assert_eq!(
        v["oidc_initiation_url"],
        "http://127.0.0.1:8787/hub/lti13/oauth_login"
    );
}

#[test]
fn tool_jwks_publishes_one_rs256_signing_key_with_a_thumbprint_kid() {
    let (app, io, _) = setup(&[]);
    let v: Value =
        serde_json::from_slice(&respond(&app, get("/hub/lti13/jwks"), &io).body).unwrap();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["kid"].as_str().unwrap().len(), 43);
    assert!(
        keys[0].get("d").is_none(),
        "private part must never be published"
    );
}

#[test]
fn tool_jwks_is_empty_without_a_tool_key() {
    let (app, io, _) = setup(&[("LTI13_PRIVATE_KEY", "")]);
    let v: Value =
        serde_json::from_slice(&respond(&app, get("/hub/lti13/jwks"), &io).body).unwrap();
    assert_eq!(v["keys"], json!([]));
}

#[test]
fn lti_routes_are_404_when_lti_is_not_configured() {
    let (app, io) = (app(&[]), TestIo::new());
    for path in [
        "/hub/lti13/config",
        "/hub/lti13/jwks",
        "/hub/lti13/oauth_login?iss=x",
    ] {
        assert_eq!(respond(&app, get(path), &io).status, 404, "{path}");
    }
}

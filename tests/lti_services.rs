//! LTI Advantage (issue 12): Names and Roles at launch (the user's roster
//! roles as course groups, the roster read once per TTL through `Link`
//! paging, a failure costing the launch nothing but those groups) and the
//! Assignment and Grade endpoint for hub services (authenticated by the
//! service secret or a hub API token the hub vouches for; line items and
//! scores only for courses and users that launched; the platform token only
//! ever sent to the platform, and cached).

mod common;
mod lti_common;
use common::*;
use hubgate::http::{Method, OutboundRequest, OutboundResponse, Response};
use jwt_compact::{alg::Rsa, AlgorithmExt, UntrustedToken};
use lti_common::*;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const TOKEN_URL: &str = "https://lms.example.edu/token";
const NRPS_URL: &str = "https://lms.example.edu/nrps/course-42";
const LINEITEMS: &str = "https://lms.example.edu/ags/course-42/lineitems";
const LINEITEM: &str = "https://lms.example.edu/ags/course-42/lineitems/1";
const SERVICE_SECRET: &str = "a-service-secret-of-at-least-32-characters";
const AGS: &str = "https://purl.imsglobal.org/spec/lti-ags/";
const NRPS_CLAIM: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
const ROLE: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#";

/// What the fake platform saw.
#[derive(Default)]
struct Seen {
    token_requests: Vec<Vec<(String, String)>>,
    service_calls: Vec<OutboundRequest>,
}

struct Lms {
    app: hubgate::app::App,
    io: TestIo,
    p: RsaPlatform,
    seen: Rc<RefCell<Seen>>,
}

fn form_of(req: &OutboundRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.body.as_deref().unwrap_or_default())
        .into_owned()
        .collect()
}

fn ok(status: u16, v: Value) -> Result<OutboundResponse, hubgate::http::FetchError> {
    json_response(status, v)
}

fn lms(extra: &[(&str, &str)]) -> Lms {
    let mut bindings = vec![
        ("LTI13_TOKEN_URL", TOKEN_URL),
        ("LTI13_SERVICE_SECRET", SERVICE_SECRET),
    ];
    bindings.extend_from_slice(extra);
    let (app, io) = (lti_app(&bindings), TestIo::new());
    let p = RsaPlatform::new(0, "lms-k1");
    serve_jwks(&io, "https://lms.example.edu/jwks", vec![p.jwk()]);
    let seen: Rc<RefCell<Seen>> = Rc::default();
    let s = seen.clone();
    io.route(TOKEN_URL, move |req| {
        let form = form_of(req);
        s.borrow_mut().token_requests.push(form.clone());
        let scope = form
            .iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let n = s.borrow().token_requests.len();
        ok(
            200,
            json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600, "scope": scope}),
        )
    });
    let s = seen.clone();
    io.route(NRPS_URL, move |req| {
        s.borrow_mut().service_calls.push(req.clone());
        let page2 = req.url.ends_with("?page=2");
        let members = if page2 {
            json!([
                {"user_id": "user-1234", "status": "Active", "roles": [format!("{ROLE}Instructor")]},
                {"user_id": "gone", "status": "Inactive", "roles": [format!("{ROLE}Learner")]},
            ])
        } else {
            json!([
                {"user_id": "user-1234", "roles": [format!("{ROLE}Learner")]},
                {"user_id": "other", "roles": [format!("{ROLE}Learner")]},
            ])
        };
        let mut r = json_response(200, json!({"id": NRPS_URL, "members": members}))?;
        if !page2 {
            r.headers.push("Link", format!("<{NRPS_URL}?page=2>; rel=\"next\""));
        }
        Ok(r)
    });
    let s = seen.clone();
    io.route("https://lms.example.edu/ags/", move |req| {
        s.borrow_mut().service_calls.push(req.clone());
        match (req.method, req.url.as_str()) {
            (Method::Get, LINEITEMS) => ok(
                200,
                json!([{"id": LINEITEM, "label": "HW1", "scoreMaximum": 10}]),
            ),
            (Method::Post, LINEITEMS) => ok(
                201,
                json!({"id": format!("{LINEITEMS}/2"), "label": "HW2", "scoreMaximum": 5}),
            ),
            (Method::Post, u) if u.ends_with("/scores") => ok(200, json!({})),
            _ => ok(404, json!({"error": "not found"})),
        }
    });
    Lms { app, io, p, seen }
}

fn services_claims(nonce: &str) -> Value {
    let mut c = resource_link_claims(nonce, LMS, CLIENT);
    c[NRPS_CLAIM] = json!({"context_memberships_url": NRPS_URL, "service_versions": ["2.0"]});
    c[format!("{AGS}claim/endpoint")] = json!({
        "scope": [format!("{AGS}scope/lineitem"), format!("{AGS}scope/lineitem.readonly"), format!("{AGS}scope/score")],
        "lineitems": LINEITEMS,
        "lineitem": LINEITEM,
    });
    c
}

impl Lms {
    fn launch(&self, tweak: impl FnOnce(&mut Value)) -> Response {
        launch_with(&self.app, &self.io, LMS, CLIENT, |nonce| {
            let mut c = services_claims(nonce);
            tweak(&mut c);
            self.p.sign(c, T0, T0 + 300)
        })
    }
    fn groups_at_hub(&self) -> String {
        last_hub_login(&self.io)
            .headers
            .get("x-forwarded-groups")
            .unwrap_or_default()
            .to_string()
    }
    fn call(&self, method: Method, path: &str, auth: Option<&str>, body: Option<&str>) -> Response {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let mut req = request(method, path, &headers);
        req.body = body.map(|b| b.as_bytes().to_vec());
        respond(&self.app, req, &self.io)
    }
    fn secret(&self) -> String {
        format!("Bearer {SERVICE_SECRET}")
    }
    fn calls_to_platform_services(&self) -> usize {
        self.seen.borrow().service_calls.len()
    }
}

const COURSE: &str = "lms.example.edu:course-42";

#[test]
fn the_users_roster_roles_reach_the_hub_as_course_groups_read_through_every_page() {
    let l = lms(&[]);
    let r = l.launch(|_| {});
    assert_eq!(r.status, 302, "{}", body(&r));
    let groups = l.groups_at_hub();
    for g in [
        "lti:lms.example.edu:course-42",
        "lti:lms.example.edu:course-42:Instructor",
    ] {
        assert!(groups.split(',').any(|x| x == g), "{g} in {groups}");
    }
    // Page 2 replaced page 1's entry for the same user (the last page wins).
    assert!(!groups.contains(":Learner"), "{groups}");
    assert_eq!(l.seen.borrow().service_calls.len(), 2, "both pages read");
    let calls = &l.seen.borrow().service_calls;
    assert_eq!(calls[0].headers.get("authorization"), Some("Bearer tok-1"));
    assert_eq!(
        calls[0].headers.get("accept"),
        Some("application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
    );
}

#[test]
fn the_token_request_is_a_client_credentials_grant_with_an_assertion_signed_by_the_tool_key() {
    let l = lms(&[]);
    l.launch(|_| {});
    let seen = l.seen.borrow();
    let form = &seen.token_requests[0];
    let f = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(f("grant_type"), Some("client_credentials"));
    assert_eq!(
        f("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(
        f("scope"),
        Some("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly")
    );
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&tool_pem()).unwrap();
    let public = rsa::RsaPublicKey::from(&key);
    let token = UntrustedToken::new(f("client_assertion").unwrap()).unwrap();
    let claims = Rsa::rs256()
        .validator::<Value>(&public)
        .validate(&token)
        .expect("the assertion verifies with the tool's public key")
        .claims()
        .clone();
    assert_eq!(claims.custom["iss"], CLIENT);
    assert_eq!(claims.custom["sub"], CLIENT);
    assert_eq!(claims.custom["aud"], TOKEN_URL);
    assert!(claims.custom["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims.expiration.is_some() && claims.issued_at.is_some());
}

#[test]
fn a_second_launch_within_the_roster_ttl_reads_neither_the_roster_nor_a_token_again() {
    let l = lms(&[]);
    l.launch(|_| {});
    l.launch(|_| {});
    assert_eq!(l.seen.borrow().service_calls.len(), 2);
    assert_eq!(l.seen.borrow().token_requests.len(), 1);
    assert!(l.groups_at_hub().contains(":Instructor"));
    // After the TTL (300 s by default) the roster is read again, the token
    // (3600 s) is still good.
    l.io.advance(301);
    let r = launch_with(&l.app, &l.io, LMS, CLIENT, |nonce| {
        let c = services_claims(nonce);
        l.p.sign(c, T0 + 301, T0 + 601)
    });
    assert_eq!(r.status, 302, "{}", body(&r));
    assert_eq!(l.seen.borrow().service_calls.len(), 4);
    assert_eq!(l.seen.borrow().token_requests.len(), 1);
}

#[test]
fn a_roster_that_fails_costs_the_launch_only_its_role_groups() {
    let l = lms(&[]);
    l.io.routes.borrow_mut().insert(
        0,
        (
            TOKEN_URL.to_string(),
            Box::new(|_| ok(400, json!({"error": "invalid_client"}))),
        ),
    );
    let r = l.launch(|_| {});
    assert_eq!(r.status, 302, "{}", body(&r));
    let groups = l.groups_at_hub();
    assert!(
        groups.contains("lti:lms.example.edu:course-42") && !groups.contains(":Instructor"),
        "{groups}"
    );
    assert!(l.io.logged("nrps_failed"));
    assert_eq!(l.calls_to_platform_services(), 0);
}

#[test]
fn without_a_token_url_or_with_roster_ttl_0_no_service_is_called() {
    for extra in [
        &[("LTI13_TOKEN_URL", "")][..],
        &[("LTI13_ROSTER_TTL", "0")][..],
    ] {
        let l = lms(extra);
        let r = l.launch(|_| {});
        assert_eq!(r.status, 302, "{}", body(&r));
        assert!(!l.groups_at_hub().contains(":Instructor"));
        assert_eq!(l.calls_to_platform_services(), 0, "{extra:?}");
    }
}

#[test]
fn a_score_is_posted_for_the_launching_users_sub_with_the_workers_timestamp() {
    let l = lms(&[]);
    l.launch(|_| {});
    let user = "alice@example.edu";
    let path = format!(
        "/_hubgate/lti/ags/scores?course={COURSE}&user={}",
        urlenc(user)
    );
    let r = l.call(
        Method::Post,
        &path,
        Some(&l.secret()),
        Some(r#"{"scoreGiven":8,"scoreMaximum":10,"comment":"good"}"#),
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    let seen = l.seen.borrow();
    let call = seen.service_calls.last().unwrap();
    assert_eq!(call.url, format!("{LINEITEM}/scores"));
    assert_eq!(
        call.headers.get("content-type"),
        Some("application/vnd.ims.lis.v1.score+json")
    );
    let sent: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["userId"], "user-1234");
    assert_eq!(sent["scoreGiven"], 8.0);
    assert_eq!(sent["timestamp"], "2025-10-09T08:53:20.000Z");
    assert_eq!(
        seen.token_requests
            .last()
            .unwrap()
            .iter()
            .find(|(k, _)| k == "scope")
            .unwrap()
            .1,
        "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    );
}

#[test]
fn line_items_are_listed_and_created_through_the_worker_with_the_platforms_answer() {
    let l = lms(&[]);
    l.launch(|_| {});
    let path = format!("/_hubgate/lti/ags/lineitems?course={COURSE}");
    let list = l.call(Method::Get, &path, Some(&l.secret()), None);
    assert_eq!(list.status, 200, "{}", body(&list));
    assert_eq!(
        serde_json::from_slice::<Value>(&list.body).unwrap()[0]["label"],
        "HW1"
    );
    let created = l.call(
        Method::Post,
        &path,
        Some(&l.secret()),
        Some(r#"{"label":"HW2","scoreMaximum":5}"#),
    );
    assert_eq!(created.status, 201, "{}", body(&created));
    let seen = l.seen.borrow();
    let post = seen.service_calls.last().unwrap();
    assert_eq!(
        post.headers.get("content-type"),
        Some("application/vnd.ims.lis.v2.lineitem+json")
    );
    // One token per scope set: readonly for the list, lineitem for the creation, roster's before.
    assert_eq!(seen.token_requests.len(), 3);
}

#[test]
fn ags_calls_without_or_with_wrong_credentials_are_refused_and_reach_no_platform() {
    let l = lms(&[]);
    l.launch(|_| {});
    let before = l.calls_to_platform_services();
    let path = format!("/_hubgate/lti/ags/lineitems?course={COURSE}");
    for (auth, status) in [
        (None, 401),
        (Some("Bearer not-the-secret"), 401),
        (Some("Basic YWxpY2U6cHc="), 401),
        (Some("token unknown-token"), 401),
    ] {
        let r = l.call(Method::Get, &path, auth, None);
        assert_eq!(r.status, status, "{auth:?}: {}", body(&r));
    }
    l.io.hub_tokens.borrow_mut().insert(
        "user-token".into(),
        json!({"kind": "user", "name": "bob", "admin": false}),
    );
    let r = l.call(Method::Get, &path, Some("token user-token"), None);
    assert_eq!(r.status, 403, "{}", body(&r));
    assert_eq!(l.calls_to_platform_services(), before);
}

#[test]
fn a_hub_service_token_or_an_admins_token_is_accepted_as_the_hub_says() {
    let l = lms(&[]);
    l.launch(|_| {});
    l.io.hub_tokens
        .borrow_mut()
        .insert("svc".into(), json!({"kind": "service", "name": "grader"}));
    l.io.hub_tokens.borrow_mut().insert(
        "adm".into(),
        json!({"kind": "user", "name": "carol", "admin": true}),
    );
    let path = format!("/_hubgate/lti/ags/lineitems?course={COURSE}");
    for auth in ["token svc", "Bearer adm"] {
        let r = l.call(Method::Get, &path, Some(auth), None);
        assert_eq!(r.status, 200, "{auth}: {}", body(&r));
    }
    let asked =
        l.io.hub_calls
            .borrow()
            .iter()
            .filter(|c| c.url.ends_with("/hub/api/user"))
            .count();
    assert_eq!(asked, 2);
    // The hub was asked with the token and nothing else of the caller's.
    let call =
        l.io.hub_calls
            .borrow()
            .iter()
            .rev()
            .find(|c| c.url.ends_with("/hub/api/user"))
            .cloned()
            .unwrap();
    assert_eq!(call.headers.get("authorization"), Some("token adm"));
    assert!(call.headers.get("cookie").is_none());
}

#[test]
fn scores_for_unknown_courses_or_users_or_foreign_line_items_are_refused_before_the_platform() {
    let l = lms(&[]);
    l.launch(|_| {});
    let before = l.calls_to_platform_services();
    let cases = [
        ("/_hubgate/lti/ags/scores?course=lms.example.edu:other&user=alice%40example.edu".to_string(), 404),
        (format!("/_hubgate/lti/ags/scores?course={COURSE}&user=mallory"), 404),
        (format!("/_hubgate/lti/ags/scores?course={COURSE}&user=alice%40example.edu&lineitem=https%3A%2F%2Fevil.example.net%2Fli"), 400),
        ("/_hubgate/lti/ags/scores?user=alice%40example.edu".to_string(), 400),
    ];
    for (path, status) in cases {
        let r = l.call(
            Method::Post,
            &path,
            Some(&l.secret()),
            Some(r#"{"scoreGiven":1,"scoreMaximum":2}"#),
        );
        assert_eq!(r.status, status, "{path}: {}", body(&r));
    }
    let bad = l.call(
        Method::Post,
        &format!("/_hubgate/lti/ags/scores?course={COURSE}&user=alice%40example.edu"),
        Some(&l.secret()),
        Some(r#"{"scoreGiven":1}"#),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(l.calls_to_platform_services(), before);
}

#[test]
fn a_platform_that_fails_or_refuses_the_workers_token_is_a_502() {
    let l = lms(&[]);
    l.launch(|_| {});
    l.io.routes.borrow_mut().insert(
        0,
        (
            "https://lms.example.edu/ags/".to_string(),
            Box::new(|_| ok(401, json!({"error": "invalid_token"}))),
        ),
    );
    let r = l.call(
        Method::Get,
        &format!("/_hubgate/lti/ags/lineitems?course={COURSE}"),
        Some(&l.secret()),
        None,
    );
    assert_eq!(r.status, 502, "{}", body(&r));
}

#[test]
fn a_short_service_secret_is_a_configuration_error() {
    let b = lti_bindings(&[("LTI13_SERVICE_SECRET", "short")]);
    let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let errors = hubgate::config::parse(&bindings(&refs)).expect_err("short secret");
    assert!(errors
        .iter()
        .any(|e| e.to_string().contains("LTI13_SERVICE_SECRET")));
}

//! `LTI13_*` bindings: one platform, several (`LTI13_PLATFORMS`), and every
//! error reported together.

mod common;
mod lti_common;
use common::*;
use hubgate::app::App;
use hubgate::bindings::ConfigError;
use lti_common::*;

fn parse(extra: &[(&str, &str)]) -> Result<App, Vec<ConfigError>> {
    let b = lti_bindings(extra);
    let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    App::from_bindings(&bindings(&refs))
}

fn errors(extra: &[(&str, &str)]) -> Vec<String> {
    parse(extra)
        .err()
        .expect("config must be refused")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn lti_only_worker_parses_with_defaults() {
    let app = parse(&[]).unwrap();
    let lti = app.config.lti.as_ref().unwrap();
    assert!(app.config.oauth.is_none());
    assert_eq!(lti.platforms.len(), 1);
    assert_eq!(lti.username_key, "email");
    assert_eq!(lti.leeway, 0);
    assert_eq!(lti.tool_name, "JupyterHub");
    assert!(lti
        .admin_roles
        .iter()
        .any(|r| r.ends_with("membership#Instructor")));
    assert!(lti.tool_key.is_some());
}

#[test]
fn client_id_takes_a_list() {
    let app = parse(&[("LTI13_CLIENT_ID", "a, b c")]).unwrap();
    assert_eq!(
        app.config.lti.unwrap().platforms[0].client_ids,
        ["a", "b", "c"]
    );
}

#[test]
fn every_missing_single_platform_binding_is_reported_at_once() {
    let e = errors(&[
        ("LTI13_CLIENT_ID", ""),
        ("LTI13_AUTHORIZE_URL", ""),
        ("LTI13_JWKS_ENDPOINT", ""),
    ]);
    for name in [
        "LTI13_CLIENT_ID",
        "LTI13_AUTHORIZE_URL",
        "LTI13_JWKS_ENDPOINT",
    ] {
        assert!(e.contains(&format!("missing {name}")), "{e:?}");
    }
}

#[test]
fn platform_urls_must_be_https_except_on_loopback() {
    let e = errors(&[("LTI13_JWKS_ENDPOINT", "http://lms.example.edu/jwks")]);
    assert!(
        e.iter()
            .any(|x| x.starts_with("LTI13_JWKS_ENDPOINT is not an https URL")),
        "{e:?}"
    );
    assert!(parse(&[("LTI13_JWKS_ENDPOINT", "http://127.0.0.1:9/jwks")]).is_ok());
}

#[test]
fn platforms_json_with_several_registrations_parses() {
    let json = r#"[{"issuer":"https://a.example","client_id":"x","authorize_url":"https://a.example/auth","jwks_endpoint":"https://a.example/jwks"},
                   {"issuer":"https://b.example","client_id":["y","z"],"authorize_url":"https://b.example/auth","jwks_endpoint":"https://b.example/jwks","deployment_ids":"d1,d2"}]"#;
    let app = parse(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", json)]).unwrap();
    let p = app.config.lti.unwrap().platforms;
    assert_eq!(p.len(), 2);
    assert_eq!(p[1].client_ids, ["y", "z"]);
    assert_eq!(p[1].deployment_ids, ["d1", "d2"]);
}

#[test]
fn platforms_json_errors_name_the_entry_and_field() {
    let json = r#"[{"issuer":"https://a.example","client_id":"x","authorize_url":"http://a.example/auth","jwks_endpoint":"https://a.example/jwks"},
                   {"issuer":"https://b.example","authorize_url":"https://b.example/auth","jwks_endpoint":"https://b.example/jwks"},
                   {"issuer":"https://c.example","client_id":"c","authorize_url":"https://c.example/auth","jwks_url":"https://c.example/jwks"}]"#;
    let e = errors(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", json)]);
    assert!(
        e.iter()
            .any(|x| x.contains("entry 0: authorize_url is not an https URL")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|x| x.contains("entry 1: missing client_id")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x.contains("entry 2: unknown field \"jwks_url\"")),
        "{e:?}"
    );
}

#[test]
fn platforms_json_must_be_an_array() {
    let e = errors(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", "{}")]);
    assert!(
        e.iter()
            .any(|x| x.contains("must be a non-empty JSON array")),
        "{e:?}"
    );
    let e = errors(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", "[not json")]);
    assert!(e.iter().any(|x| x.contains("is not valid JSON")), "{e:?}");
}

#[test]
fn the_same_issuer_and_client_id_registered_twice_is_refused() {
    let json = format!(
        r#"[{{"issuer":"{LMS}","client_id":"{CLIENT}","authorize_url":"https://x.example/a","jwks_endpoint":"https://x.example/j"}}]"#
    );
    let e = errors(&[("LTI13_PLATFORMS", &json)]);
    assert!(e.iter().any(|x| x.contains("is registered twice")), "{e:?}");
}

#[test]
fn private_key_must_be_an_rsa_pem_of_at_least_2048_bits() {
    let e = errors(&[(
        "LTI13_PRIVATE_KEY",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    )]);
    assert!(
        e.iter()
            .any(|x| x.starts_with("LTI13_PRIVATE_KEY is not an RSA private key")),
        "{e:?}"
    );
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let e = errors(&[("LTI13_PRIVATE_KEY", &pem)]);
    assert!(e.iter().any(|x| x.contains("1024-bit RSA key")), "{e:?}");
}

#[test]
fn private_key_accepts_escaped_newlines() {
    let escaped = tool_pem().replace('\n', "\\n");
    assert!(parse(&[("LTI13_PRIVATE_KEY", &escaped)])
        .unwrap()
        .config
        .lti
        .unwrap()
        .tool_key
        .is_some());
}

#[test]
fn private_key_never_appears_in_debug_output() {
    let app = parse(&[]).unwrap();
    let dbg = format!("{:?}", app.config.lti.unwrap());
    assert!(dbg.contains("ToolKey(kid="), "{dbg}");
    assert!(!dbg.contains("PRIVATE") && !dbg.contains("primes"), "{dbg}");
}

#[test]
fn time_leeway_is_bounded() {
    let e = errors(&[("LTI13_TIME_LEEWAY", "100000")]);
    assert!(
        e.iter()
            .any(|x| x.starts_with("LTI13_TIME_LEEWAY must be a whole number")),
        "{e:?}"
    );
}

#[test]
fn health_summary_lists_platforms_without_secrets() {
    let app = parse(&[]).unwrap();
    let s = app.config.summary().to_string();
    assert!(s.contains(LMS) && s.contains("tool_kid"), "{s}");
    assert!(!s.contains("PRIVATE KEY"));
}

#[test]
fn two_issuers_on_one_host_without_names_are_refused_since_their_users_would_merge() {
    let json = r#"[{"issuer":"https://lms.example/east","client_id":"x","authorize_url":"https://lms.example/auth","jwks_endpoint":"https://lms.example/jwks"},
                   {"issuer":"https://lms.example/west","client_id":"y","authorize_url":"https://lms.example/auth","jwks_endpoint":"https://lms.example/jwks"}]"#;
    let e = errors(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", json)]);
    assert!(
        e.iter()
            .any(|x| x.contains("share the platform name \"lms.example\"")),
        "{e:?}"
    );
    let named = json
        .replacen(r#"{"issuer""#, r#"{"name":"east","issuer""#, 1)
        .replacen(r#"{"issuer""#, r#"{"name":"west","issuer""#, 1);
    let app = parse(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", &named)]).unwrap();
    let names: Vec<String> = app
        .config
        .lti
        .unwrap()
        .platforms
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["east", "west"]);
}

#[test]
fn one_issuer_registered_under_two_client_ids_is_one_platform_name() {
    let json = r#"[{"issuer":"https://lms.example","client_id":"x","authorize_url":"https://lms.example/auth","jwks_endpoint":"https://lms.example/jwks"},
                   {"issuer":"https://lms.example","client_id":"y","authorize_url":"https://lms.example/auth","jwks_endpoint":"https://lms.example/jwks"}]"#;
    let app = parse(&[("LTI13_ISSUER", ""), ("LTI13_PLATFORMS", json)]).unwrap();
    assert_eq!(app.config.lti.unwrap().platforms.len(), 2);
}

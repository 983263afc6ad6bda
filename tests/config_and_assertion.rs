//! Configuration errors all at once; the identity assertion and its cache.

mod common;
use common::*;
use hubgate::assertion::{parse_key, Audience};
use hubgate::bindings::ConfigError;
use hubgate::config::parse;
use hubgate::http::UnixTime;
use hubgate::identity::{Identity, LoginMethod};
use hubgate::jose::keys::{parse_key_set, verify_jwt, Alg};

#[test]
fn reports_every_configuration_error_at_once() {
    let env = bindings(&[
        ("SESSION_SECRET", "short"),
        ("HUB_ORIGIN", "http://hub.internal:8000"),
        ("OAUTH_CLIENT_SECRET", ""),
        ("OAUTH2_TOKEN_URL", "http://idp.example.org/token"),
        ("ALLOW_ALL", "yes"),
        (
            "OAUTH_EXTRA_AUTHORIZE_PARAMS",
            r#"{"state": "fixed", "prompt": "login"}"#,
        ),
        ("SESSION_MAX_AGE", "forever"),
    ]);
    let errors: Vec<String> = parse(&env)
        .err()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    for expected in [
        "SESSION_SECRET must be at least 32 characters",
        "HUB_ORIGIN is not an https URL",
        "missing OAUTH_CLIENT_SECRET",
        "OAUTH2_TOKEN_URL is not an https URL",
        "ALLOW_ALL must be true, false, 1 or 0",
        "OAUTH_EXTRA_AUTHORIZE_PARAMS may not set `state`",
        "SESSION_MAX_AGE must be a whole number",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected:?} not in {errors:#?}"
        );
    }
}

#[test]
fn no_login_method_is_an_error() {
    let env = bindings(&[("OAUTH_CLIENT_ID", "")]);
    assert!(parse(&env)
        .err()
        .unwrap()
        .contains(&ConfigError::NoLoginMethod));
}

#[test]
fn plain_oauth2_needs_every_endpoint() {
    let env = bindings(&[("OIDC_ISSUER", "")]);
    let errors = parse(&env).err().unwrap();
    for n in [
        "OAUTH2_AUTHORIZE_URL",
        "OAUTH2_TOKEN_URL",
        "OAUTH2_USERDATA_URL",
    ] {
        assert!(errors.contains(&ConfigError::Missing(n)), "{n}");
    }
}

#[test]
fn secure_defaults_when_bindings_are_left_out() {
    let c = parse(&bindings(&[("ALLOWED_USERS", ""), ("ADMIN_USERS", "")])).unwrap();
    assert!(!c.identity.rules.allow_all && c.identity.rules.allowed_users.is_empty());
    assert!(!c.auto_login);
    assert_eq!(c.session.max_age, 86_400);
    let o = c.oauth.unwrap();
    assert_eq!(o.scopes, ["openid", "profile", "email"]);
    assert_eq!(o.token_auth, hubgate::oauth::TokenAuth::Basic);
}

#[test]
fn lists_accept_json_and_openid_scope_is_always_added() {
    let c = parse(&bindings(&[
        ("ALLOWED_USERS", r#"["Alice", "BOB"]"#),
        ("OAUTH_SCOPES", "profile groups"),
    ]))
    .unwrap();
    assert_eq!(c.identity.rules.allowed_users, ["alice", "bob"]);
    assert_eq!(c.oauth.unwrap().scopes, ["openid", "profile", "groups"]);
}

const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"hg-1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const EC_JWK_PREVIOUS: &str = r#"{"kty":"EC","crv":"P-256","kid":"hg-0","x":"fgE8nZ3ER07iqOYGedVKQfD3E_OKFl0O0yGZ3Yo2WY8","y":"q_-IhsxOJSJDFgq9DT-RfENOK4dQlO4b16S8Zp2JB98","d":"m1pSMwB6-ClM0QZ0DZV7IAGT1p0S4HzGG6MxSPBO1bw"}"#;
const ED_JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

fn alice() -> Identity {
    let mut auth_state = serde_json::Map::new();
    auth_state.insert("department".into(), "physics".into());
    Identity {
        username: "alice".into(),
        email: None,
        groups: vec!["g".into()],
        admin: true,
        method: LoginMethod::Oauth,
        auth_state,
    }
}

fn to_hub(jti: &str) -> Audience<'_> {
    Audience {
        issuer: ORIGIN,
        hub: HUB,
        login_path: "/hub/login",
        jti,
    }
}

#[test]
fn es256_assertion_verifies_against_the_published_jwks() {
    let key = parse_key(EC_JWK).unwrap();
    let cfg_keys = hubgate::assertion::AssertionKeys {
        current: key,
        previous: Some(parse_key(EC_JWK_PREVIOUS).unwrap()),
    };
    let jwks = cfg_keys.jwks();
    assert!(
        jwks.to_string().find("\"d\"").is_none(),
        "no private parts published"
    );
    let set = parse_key_set(&jwks.to_string()).unwrap();
    assert_eq!(set.keys.len(), 2);
    let token = hubgate::assertion::mint(
        &cfg_keys.current,
        &alice(),
        &to_hub("j-0123456789abcdef"),
        UnixTime(T0),
    );
    let (header, claims) = verify_jwt::<serde_json::Value>(&token, &set, &[Alg::Es256]).unwrap();
    assert_eq!(header.key_id.as_deref(), Some("hg-1"));
    let c = &claims.custom;
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str(), c["sub"].as_str()),
        (Some(ORIGIN), Some(HUB), Some("alice"))
    );
    assert_eq!(c["admin"], true);
    assert_eq!(c["method"], "oauth");
    assert_eq!(c["jti"], "j-0123456789abcdef");
    assert_eq!(c["login_path"], "/hub/login");
    assert_eq!(c["auth_state"]["department"], "physics");
    let lifetime = claims.expiration.unwrap() - claims.issued_at.unwrap();
    assert_eq!(lifetime.num_seconds(), 60);
}

#[cfg(feature = "eddsa")]
#[test]
fn eddsa_assertion_gets_a_thumbprint_kid_when_none_is_given() {
    let key = parse_key(ED_JWK).unwrap();
    assert_eq!(key.kid.len(), 43);
    let keys = hubgate::assertion::AssertionKeys {
        current: key,
        previous: None,
    };
    let set = parse_key_set(&keys.jwks().to_string()).unwrap();
    let token = hubgate::assertion::mint(&keys.current, &alice(), &to_hub("j-1"), UnixTime(T0));
    assert!(verify_jwt::<serde_json::Value>(&token, &set, &[Alg::EdDsa]).is_ok());
}

#[test]
fn refuses_public_only_or_rsa_assertion_keys() {
    let public_only = r#"{"kty":"EC","crv":"P-256","x":"fgE8nZ3ER07iqOYGedVKQfD3E_OKFl0O0yGZ3Yo2WY8","y":"q_-IhsxOJSJDFgq9DT-RfENOK4dQlO4b16S8Zp2JB98"}"#;
    assert!(parse_key(public_only).is_err());
    assert!(parse_key(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).is_err());
    assert!(parse_key("not json").is_err());
    let errors = parse(&bindings(&[("ASSERTION_SIGNING_KEY", public_only)]))
        .err()
        .unwrap();
    assert!(errors.iter().any(|e| e
        .to_string()
        .starts_with("ASSERTION_SIGNING_KEY must be a P-256 private key")));
}

#[cfg(feature = "eddsa")]
#[test]
fn refuses_a_public_only_ed25519_assertion_key() {
    let public_only =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert!(parse_key(public_only).is_err());
    let errors = parse(&bindings(&[("ASSERTION_SIGNING_KEY", public_only)]))
        .err()
        .unwrap();
    assert!(errors.iter().any(|e| e
        .to_string()
        .starts_with("ASSERTION_SIGNING_KEY must be an Ed25519 private key")));
}

/// The default build leaves EdDSA out (README, "Size"): an Ed25519 key is a
/// configuration error that names the way out, never a silent downgrade.
#[cfg(not(feature = "eddsa"))]
#[test]
fn an_ed25519_assertion_key_without_the_eddsa_feature_is_a_clear_configuration_error() {
    let errors = parse(&bindings(&[("ASSERTION_SIGNING_KEY", ED_JWK)]))
        .err()
        .unwrap();
    assert!(
        errors.iter().any(|e| {
            let e = e.to_string();
            e.starts_with("ASSERTION_SIGNING_KEY is an Ed25519 key") && e.contains("`eddsa`")
        }),
        "{errors:?}"
    );
}

fn alice_session(a: &hubgate::app::App) -> String {
    let set_cookie = hubgate::session::cookie::mint(
        &a.config.session,
        &alice(),
        "s1",
        None,
        ORIGIN,
        true,
        hubgate::cookies::Context::TopLevel,
        UnixTime(T0),
    );
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn proxied_request_carries_no_identity_and_drops_a_forged_assertion() {
    let (a, io) = (app(&[("ASSERTION_SIGNING_KEY", EC_JWK)]), TestIo::new());
    let mut req = get("/user/mallory/lab");
    req.headers.push("x-hubgate-assertion", "forged");
    req.headers.push("X_Forwarded_User", "carol");
    req.headers.push("Cookie", alice_session(&a));
    let plan = proxied(&a, req, &io);
    for h in [
        "x-hubgate-assertion",
        "x-forwarded-user",
        "x-forwarded-admin",
        "x-forwarded-groups",
    ] {
        assert_eq!(
            plan.headers.get(h),
            None,
            "{h} reached a single-user server"
        );
    }
    assert!(plan
        .headers
        .0
        .iter()
        .all(|(k, _)| k.to_ascii_lowercase().replace('_', "-") != "x-forwarded-user"));
}

#[test]
fn hub_login_subrequest_carries_a_single_use_assertion_for_the_login_path() {
    let (a, io) = (
        app(&[("ASSERTION_SIGNING_KEY", EC_JWK), ("BASE_URL", "/jh/")]),
        TestIo::new(),
    );
    let r = respond(&a, get("/jh/_hubgate/jwks.json"), &io);
    let set = parse_key_set(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let mut req = get("/jh/hub/login?next=%2Fjh%2Fhub%2Fhome");
        req.headers.push("Cookie", alice_session(&a));
        let r = respond(&a, req, &io);
        assert_eq!(r.status, 302);
        assert_eq!(r.location(), Some("/jh/hub/home"));
        let call = io.hub_calls.borrow().last().cloned().unwrap();
        assert!(
            call.url.starts_with(&format!("{HUB}/jh/hub/login?next=")),
            "{}",
            call.url
        );
        assert_eq!(
            call.headers.get("cookie"),
            None,
            "no browser cookies on the worker's own login"
        );
        let token = call.headers.get("x-hubgate-assertion").unwrap().to_string();
        let (_, c) = verify_jwt::<serde_json::Value>(&token, &set, &[Alg::Es256]).unwrap();
        assert_eq!(c.custom["login_path"], "/jh/hub/login");
        assert_eq!(c.custom["aud"], HUB);
        let life = c.expiration.unwrap() - c.issued_at.unwrap();
        assert!(life.num_seconds() <= 60);
        tokens.push(c.custom["jti"].as_str().unwrap().to_string());
        assert!(r
            .headers
            .get_all("set-cookie")
            .any(|c| c.starts_with("jupyterhub-hub-login=new")));
    }
    assert_ne!(tokens[0], tokens[1], "each login has its own jti");
}

#[test]
fn assertion_keys_are_answered_at_the_root_whatever_base_url_is() {
    let (a, io) = (
        app(&[("ASSERTION_SIGNING_KEY", EC_JWK), ("BASE_URL", "/jh/")]),
        TestIo::new(),
    );
    let r = respond(&a, get("/_hubgate/jwks.json"), &io);
    assert_eq!(r.status, 200);
    assert_eq!(
        parse_key_set(std::str::from_utf8(&r.body).unwrap())
            .unwrap()
            .keys
            .len(),
        1
    );
}

#[test]
fn auth_state_selection_stays_small() {
    let claims = serde_json::json!({"a": "x".repeat(1000), "b": "y".repeat(1000), "c": 1});
    let names = [
        "a".to_string(),
        "b".to_string(),
        "c".to_string(),
        "missing".to_string(),
    ];
    let s = hubgate::identity::from_claims::select_auth_state(&claims, &names);
    assert!(s.contains_key("a") && !s.contains_key("b") && s.contains_key("c"));
}

//! Configuration errors all at once; the identity assertion and its cache.

mod common;
use common::*;
use hubgate::assertion::{parse_key, AssertionCache};
use hubgate::config::{parse, ConfigError};
use hubgate::http::UnixTime;
use hubgate::identity::{Identity, LoginMethod};
use hubgate::jwks::{parse_key_set, verify_jwt, Alg};

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
    assert!(!c.access.allow_all && c.access.allowed_users.is_empty());
    assert!(!c.auto_login);
    assert_eq!(c.session.max_age, 86_400);
    let o = c.oauth.unwrap();
    assert_eq!(o.scopes, ["openid", "profile", "email"]);
    assert_eq!(o.token_auth, hubgate::config::TokenAuth::Basic);
}

#[test]
fn lists_accept_json_and_openid_scope_is_always_added() {
    let c = parse(&bindings(&[
        ("ALLOWED_USERS", r#"["Alice", "BOB"]"#),
        ("OAUTH_SCOPES", "profile groups"),
    ]))
    .unwrap();
    assert_eq!(c.access.allowed_users, ["alice", "bob"]);
    assert_eq!(c.oauth.unwrap().scopes, ["openid", "profile", "groups"]);
}

const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"hg-1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
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

#[test]
fn es256_assertion_verifies_against_the_published_jwks() {
    let key = parse_key(EC_JWK).unwrap();
    let cfg_keys = hubgate::assertion::AssertionKeys {
        current: key,
        previous: Some(parse_key(ED_JWK).unwrap()),
    };
    let jwks = cfg_keys.jwks();
    assert!(
        jwks.to_string().find("\"d\"").is_none(),
        "no private parts published"
    );
    let set = parse_key_set(&jwks.to_string()).unwrap();
    assert_eq!(set.keys.len(), 2);
    let token = hubgate::assertion::mint(&cfg_keys.current, &alice(), ORIGIN, HUB, UnixTime(T0));
    let (header, claims) = verify_jwt::<serde_json::Value>(&token, &set, &[Alg::Es256]).unwrap();
    assert_eq!(header.key_id.as_deref(), Some("hg-1"));
    let c = &claims.custom;
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str(), c["sub"].as_str()),
        (Some(ORIGIN), Some(HUB), Some("alice"))
    );
    assert_eq!(c["admin"], true);
    assert_eq!(c["method"], "oauth");
    assert_eq!(c["auth_state"]["department"], "physics");
    let lifetime = claims.expiration.unwrap() - claims.issued_at.unwrap();
    assert_eq!(lifetime.num_seconds(), 60);
}

#[test]
fn eddsa_assertion_gets_a_thumbprint_kid_when_none_is_given() {
    let key = parse_key(ED_JWK).unwrap();
    assert_eq!(key.kid.len(), 43);
    let keys = hubgate::assertion::AssertionKeys {
        current: key,
        previous: None,
    };
    let set = parse_key_set(&keys.jwks().to_string()).unwrap();
    let token = hubgate::assertion::mint(&keys.current, &alice(), ORIGIN, HUB, UnixTime(T0));
    assert!(verify_jwt::<serde_json::Value>(&token, &set, &[Alg::EdDsa]).is_ok());
}

#[test]
fn refuses_public_only_or_rsa_assertion_keys() {
    let public_only =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert!(parse_key(public_only).is_err());
    assert!(parse_key(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).is_err());
    assert!(parse_key("not json").is_err());
    let errors = parse(&bindings(&[("ASSERTION_SIGNING_KEY", public_only)]))
        .err()
        .unwrap();
    assert!(errors.iter().any(|e| e
        .to_string()
        .starts_with("ASSERTION_SIGNING_KEY must be an Ed25519 private key")));
}

#[test]
fn assertion_is_signed_at_most_once_per_session_per_30_seconds() {
    let key = parse_key(EC_JWK).unwrap();
    let cache = AssertionCache::default();
    let first = cache.get_or_mint(&key, "sid", &alice(), ORIGIN, HUB, UnixTime(T0));
    for t in 0..=30 {
        assert_eq!(
            cache.get_or_mint(&key, "sid", &alice(), ORIGIN, HUB, UnixTime(T0 + t)),
            first
        );
    }
    assert_eq!(cache.minted.get(), 1);
    let second = cache.get_or_mint(&key, "sid", &alice(), ORIGIN, HUB, UnixTime(T0 + 31));
    assert_ne!(second, first);
    assert_eq!(cache.minted.get(), 2);
    cache.get_or_mint(&key, "other-sid", &alice(), ORIGIN, HUB, UnixTime(T0 + 31));
    assert_eq!(cache.minted.get(), 3);
}

#[test]
fn proxied_request_carries_the_assertion_and_jwks_route_publishes_the_key() {
    let (a, io) = (app(&[("ASSERTION_SIGNING_KEY", EC_JWK)]), TestIo::new());
    let r = respond(&a, get("/_hubgate/jwks.json"), &io);
    let set = parse_key_set(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let cfg = hubgate::config::SessionConfig {
        secret: hubgate::secret::SessionSecret::new(SECRET),
        previous: None,
        max_age: 600,
    };
    let set_cookie = hubgate::session::mint(
        &cfg,
        &alice(),
        "s1",
        ORIGIN,
        true,
        hubgate::cookies::Context::TopLevel,
        UnixTime(T0),
    );
    let mut req = get("/hub/home");
    req.headers.push("x-hubgate-assertion", "forged");
    req.headers
        .push("Cookie", set_cookie.split(';').next().unwrap().to_string());
    let plan = proxied(&a, req, &io);
    let sent: Vec<&str> = plan.headers.get_all("x-hubgate-assertion").collect();
    assert_eq!(sent.len(), 1);
    assert!(verify_jwt::<serde_json::Value>(sent[0], &set, &[Alg::Es256]).is_ok());
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
    let s = hubgate::assertion::select_auth_state(&claims, &names);
    assert!(s.contains_key("a") && !s.contains_key("b") && s.contains_key("c"));
}

//! The key-set cache policy through `KeyCache`, with a scripted JWKS endpoint.

mod common;
use common::*;
use hubgate::cache::key_sets::{JwksError, KeyCache};
use hubgate::cache::CacheSettings;
use hubgate::http::{FetchError, Headers, OutboundResponse};

/// The policy's figures with the ceiling at its maximum (24 h); the
/// default ceiling (`KEY_SET_MAX_AGE`, 10 min) has its own test.
const LONG: CacheSettings = CacheSettings { max_ttl: 86_400 };

fn ttl_from_cache_control(h: Option<&str>) -> u64 {
    LONG.ttl_from_cache_control(h)
}
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str = "https://lms.example.edu/jwks";

fn serve(io: &TestIo, keys: Rc<RefCell<Vec<serde_json::Value>>>, cache_control: &'static str) {
    io.route(URL, move |_| {
        Ok(OutboundResponse {
            status: 200,
            headers: Headers(vec![("cache-control".into(), cache_control.into())]),
            body: serde_json::json!({ "keys": keys.borrow().clone() })
                .to_string()
                .into_bytes(),
        })
    });
}

fn kids(set: &hubgate::jose::keys::KeySet) -> Vec<String> {
    set.keys.iter().filter_map(|k| k.kid.clone()).collect()
}

#[test]
fn ttl_comes_from_cache_control_clamped_to_5_min_and_24_h() {
    assert_eq!(ttl_from_cache_control(Some("public, max-age=600")), 600);
    assert_eq!(ttl_from_cache_control(Some("max-age=5")), 300);
    assert_eq!(ttl_from_cache_control(Some("max-age=999999")), 86_400);
    assert_eq!(ttl_from_cache_control(Some("no-store")), 300);
    assert_eq!(ttl_from_cache_control(None), 3_600);
}

#[test]
fn no_fetch_while_fresh_and_one_after_ttl() {
    let io = TestIo::new();
    let keys = Rc::new(RefCell::new(vec![Provider::new("a").jwk()]));
    serve(&io, keys, "max-age=600");
    let cache = KeyCache::default();
    for _ in 0..1000 {
        block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap();
    }
    assert_eq!(io.fetch_count(URL), 1);
    io.advance(601);
    block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap();
    assert_eq!(io.fetch_count(URL), 2);
}

#[test]
fn key_rotated_seconds_after_the_first_fill_is_picked_up() {
    let io = TestIo::new();
    let keys = Rc::new(RefCell::new(vec![Provider::new("old").jwk()]));
    serve(&io, keys.clone(), "max-age=3600");
    let cache = KeyCache::default();
    block_on(cache.get(&io, &LONG, URL, Some("old"))).unwrap();
    keys.borrow_mut().push(Provider::new("new").jwk());
    io.advance(3);
    let set = block_on(cache.get(&io, &LONG, URL, Some("new"))).unwrap();
    assert!(kids(&set).contains(&"new".to_string()));
    assert_eq!(io.fetch_count(URL), 2);
}

#[test]
fn unknown_kid_refetches_at_most_once_per_30_seconds() {
    let io = TestIo::new();
    serve(
        &io,
        Rc::new(RefCell::new(vec![Provider::new("a").jwk()])),
        "max-age=3600",
    );
    let cache = KeyCache::default();
    block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap();
    for _ in 0..100 {
        block_on(cache.get(&io, &LONG, URL, Some("forged"))).unwrap();
    }
    assert_eq!(io.fetch_count(URL), 2);
    io.advance(30);
    block_on(cache.get(&io, &LONG, URL, Some("forged"))).unwrap();
    assert_eq!(io.fetch_count(URL), 3);
}

#[test]
fn keeps_serving_stale_keys_for_24_hours_when_the_endpoint_is_down() {
    let io = TestIo::new();
    serve(
        &io,
        Rc::new(RefCell::new(vec![Provider::new("a").jwk()])),
        "max-age=300",
    );
    let cache = KeyCache::default();
    block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap();
    io.route(URL, |_| {
        Err(FetchError::Network("connection refused".into()))
    });
    io.advance(300 + 86_399);
    assert_eq!(
        kids(&block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap()),
        ["a"]
    );
    assert!(io.logged("jwks_stale_used"));
    io.advance(2);
    assert!(matches!(
        block_on(cache.get(&io, &LONG, URL, Some("a"))),
        Err(JwksError::Unavailable { .. })
    ));
}

#[test]
fn empty_cache_and_endpoint_down_is_an_error() {
    let io = TestIo::new();
    io.route(URL, |_| {
        Ok(OutboundResponse {
            status: 503,
            headers: Headers::new(),
            body: vec![],
        })
    });
    assert!(block_on(KeyCache::default().get(&io, &LONG, URL, None)).is_err());
}

#[test]
fn skips_encryption_symmetric_and_weak_keys() {
    let mut enc = Provider::new("enc").jwk();
    enc["use"] = "enc".into();
    let set = hubgate::jose::keys::parse_key_set(
        &serde_json::json!({"keys": [
            enc,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            Provider::new("ok").jwk(),
        ]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(kids(&set), ["ok"]);
    assert_eq!(set.skipped, 3);
}

#[test]
fn a_key_declaring_another_algorithm_refuses_the_token() {
    let p = Provider::new("k");
    let mut jwk = p.jwk();
    jwk["alg"] = "EdDSA".into();
    // Declared alg does not fit an EC key: the key is left out entirely.
    let set = hubgate::jose::keys::parse_key_set(&serde_json::json!({"keys": [jwk]}).to_string())
        .unwrap();
    assert!(set.keys.is_empty());
    let token = p.sign(serde_json::json!({"sub": "x"}), T0, T0 + 60);
    assert!(hubgate::jose::keys::verify_jwt::<serde_json::Value>(
        &token,
        &set,
        &[hubgate::jose::keys::Alg::Es256]
    )
    .is_err());
}

#[test]
fn algorithm_outside_the_allowed_list_is_refused() {
    let p = Provider::new("k");
    let set =
        hubgate::jose::keys::parse_key_set(&serde_json::json!({"keys": [p.jwk()]}).to_string())
            .unwrap();
    let token = p.sign(serde_json::json!({"sub": "x"}), T0, T0 + 60);
    let err = hubgate::jose::keys::verify_jwt::<serde_json::Value>(
        &token,
        &set,
        &[hubgate::jose::keys::Alg::Rs256],
    )
    .unwrap_err();
    assert_eq!(
        err,
        hubgate::jose::keys::JwtError::AlgorithmRefused("ES256".into())
    );
    assert!(hubgate::jose::keys::verify_jwt::<serde_json::Value>(
        &token,
        &set,
        &[hubgate::jose::keys::Alg::Es256]
    )
    .is_ok());
}

fn verify_with_jwk(
    token: &str,
    jwk: serde_json::Value,
    alg: hubgate::jose::keys::Alg,
) -> Result<(), hubgate::jose::keys::JwtError> {
    let set = hubgate::jose::keys::parse_key_set(&serde_json::json!({ "keys": [jwk] }).to_string())
        .unwrap();
    assert_eq!(set.keys.len(), 1, "key parsed");
    hubgate::jose::keys::verify_jwt::<serde_json::Value>(token, &set, &[alg]).map(|_| ())
}

#[test]
fn verifies_rs256_tokens_from_an_rsa_jwk() {
    use jwt_compact::{
        alg::{Rsa, StrongKey},
        jwk::JsonWebKey,
        AlgorithmExt, Claims, Header,
    };
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let mut jwk = serde_json::to_value(JsonWebKey::from(&public)).unwrap();
    jwk["kid"] = "r1".into();
    let signing = StrongKey::try_from(private).unwrap();
    let token = Rsa::rs256()
        .token(
            &Header::empty().with_key_id("r1"),
            &Claims::new(serde_json::json!({"sub": "x"})),
            signing.as_ref(),
        )
        .unwrap();
    assert_eq!(
        verify_with_jwk(&token, jwk.clone(), hubgate::jose::keys::Alg::Rs256),
        Ok(())
    );
    // The same key refuses a PS256 claim in the header it was not signed with.
    let mut tampered = token.clone();
    tampered.replace_range(
        ..tampered.find('.').unwrap(),
        &jwt_b64(r#"{"alg":"PS256","kid":"r1"}"#),
    );
    assert!(verify_with_jwk(&tampered, jwk, hubgate::jose::keys::Alg::Ps256).is_err());
}

#[cfg(feature = "eddsa")]
#[test]
fn verifies_eddsa_tokens_from_an_okp_jwk() {
    use jwt_compact::{alg::Ed25519, jwk::JsonWebKey, AlgorithmExt, Claims, Header};
    let (secret, public) = Ed25519::generate(&mut rand::rngs::OsRng);
    let mut jwk = serde_json::to_value(JsonWebKey::from(&public)).unwrap();
    jwk["kid"] = "e1".into();
    let token = Ed25519
        .token(
            &Header::empty().with_key_id("e1"),
            &Claims::new(serde_json::json!({"sub": "x"})),
            &secret,
        )
        .unwrap();
    assert_eq!(
        verify_with_jwk(&token, jwk.clone(), hubgate::jose::keys::Alg::EdDsa),
        Ok(())
    );
    let mut forged = token.clone();
    forged.push('A');
    assert!(verify_with_jwk(&forged, jwk, hubgate::jose::keys::Alg::EdDsa).is_err());
}

/// Without the `eddsa` feature an OKP key is left out of the set and an
/// EdDSA token finds no key, whatever its header says.
#[cfg(not(feature = "eddsa"))]
#[test]
fn without_the_eddsa_feature_okp_keys_are_skipped_and_eddsa_tokens_refused() {
    let okp = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "e1",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let set = hubgate::jose::keys::parse_key_set(&serde_json::json!({"keys": [okp]}).to_string())
        .unwrap();
    assert!(set.keys.is_empty());
    assert_eq!(set.skipped, 1);
    let token = format!(
        "{}.{}.{}",
        jwt_b64(r#"{"alg":"EdDSA","kid":"e1"}"#),
        jwt_b64(r#"{"sub":"x"}"#),
        jwt_b64("sig")
    );
    assert!(hubgate::jose::keys::verify_jwt::<serde_json::Value>(
        &token,
        &set,
        &[hubgate::jose::keys::Alg::EdDsa]
    )
    .is_err());
}

fn jwt_b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn a_key_removed_by_the_provider_is_trusted_at_most_key_set_max_age() {
    let io = TestIo::new();
    let keys = Rc::new(RefCell::new(vec![Provider::new("a").jwk()]));
    serve(&io, keys.clone(), "max-age=86400");
    let cache = KeyCache::default();
    let default = CacheSettings::default();
    block_on(cache.get(&io, &default, URL, Some("a"))).unwrap();
    *keys.borrow_mut() = vec![Provider::new("b").jwk()];
    io.advance(default.max_ttl);
    let set = block_on(cache.get(&io, &default, URL, Some("a"))).unwrap();
    assert_eq!(
        kids(&set),
        ["b"],
        "the removed key is gone after KEY_SET_MAX_AGE"
    );
}

#[test]
fn a_down_endpoint_is_tried_once_per_30_seconds_while_the_stale_set_serves() {
    let io = TestIo::new();
    serve(
        &io,
        Rc::new(RefCell::new(vec![Provider::new("a").jwk()])),
        "max-age=300",
    );
    let cache = KeyCache::default();
    block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap();
    io.route(URL, |_| Err(FetchError::Timeout(5_000)));
    io.advance(301);
    for _ in 0..5 {
        assert_eq!(
            kids(&block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap()),
            ["a"]
        );
    }
    assert_eq!(
        io.fetch_count(URL),
        2,
        "one fill, one failed refetch: later launches do not wait on the upstream"
    );
    io.advance(30);
    block_on(cache.get(&io, &LONG, URL, Some("a"))).unwrap();
    assert_eq!(io.fetch_count(URL), 3, "tried again after the back-off");
}

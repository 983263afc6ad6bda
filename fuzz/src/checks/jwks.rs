//! `jose::keys::parse_key_set` on arbitrary bytes: never panics; what it
//! accepts is a JSON object whose `keys` it accounts for one by one (each
//! entry alone is accepted or skipped the same way); every accepted key is
//! a signature key (`use` absent or `sig`) of the type its `kty` and `alg`
//! say, RSA at least 2048 bits; and it round-trips: the accepted keys
//! written back as a JWKS parse to the same keys.
//!
//! Input: the key set document.

use hubgate::jose::keys::{parse_key_set, Alg, Key, KeySet, PublicKey};
use jwt_compact::jwk::JsonWebKey;
use serde_json::{json, Value};

fn jwk_of(k: &Key) -> Value {
    let jwk = match &k.key {
        PublicKey::Rsa(r) => JsonWebKey::from(r.as_ref()),
        PublicKey::P256(p) => JsonWebKey::from(p),
        #[cfg(feature = "eddsa")]
        PublicKey::Ed25519(e) => JsonWebKey::from(e),
    };
    let mut v = serde_json::to_value(&jwk).expect("JWK serialises");
    if let Some(kid) = &k.kid {
        v["kid"] = kid.clone().into();
    }
    if let Some(alg) = k.alg {
        v["alg"] = alg.name().into();
    }
    v["use"] = "sig".into();
    v
}

fn summary(set: &KeySet) -> Vec<(Option<String>, Option<Alg>, Value)> {
    set.keys
        .iter()
        .map(|k| (k.kid.clone(), k.alg, jwk_of(k)))
        .collect()
}

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let set = match parse_key_set(&text) {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let Some(raw) = super::discovery::as_value(&text) else {
        return;
    };
    // RFC 7517 5: a JWK Set is a JSON object (serde's derive also takes
    // the sequence form of a struct, `[[...]]`).
    if !super::finding("json-array", raw.is_object(), || {
        format!("a key set that is no JSON object was accepted: {text:?}")
    }) {
        return;
    }
    let entries = raw["keys"]
        .as_array()
        .expect("an accepted key set has keys");
    assert_eq!(
        set.keys.len() + set.skipped,
        entries.len(),
        "every entry counted"
    );

    let mut accepted = Vec::new();
    for e in entries {
        let one = parse_key_set(&json!({ "keys": [e] }).to_string()).expect("one entry");
        assert_eq!(one.keys.len() + one.skipped, 1);
        if let Some(k) = one.keys.into_iter().next() {
            accepted.push((e, k));
        }
    }
    assert_eq!(
        accepted.len(),
        set.keys.len(),
        "entries judged alone differ"
    );
    for ((e, alone), k) in accepted.iter().zip(&set.keys) {
        assert_eq!((&alone.kid, alone.alg), (&k.kid, k.alg));
        if let Some(u) = e.get("use") {
            assert_eq!(
                u.as_str(),
                Some("sig"),
                "a key with use {u} verifies signatures"
            );
        }
        assert_eq!(k.kid.as_deref(), e.get("kid").and_then(Value::as_str));
        match e.get("alg") {
            None => assert!(k.alg.is_none()),
            Some(a) => assert_eq!(
                a.as_str().and_then(Alg::parse),
                k.alg,
                "alg {a} taken as {:?}",
                k.alg
            ),
        }
        let kty = e.get("kty").and_then(Value::as_str);
        match &k.key {
            PublicKey::Rsa(r) => {
                assert_eq!(kty, Some("RSA"));
                let JsonWebKey::Rsa { modulus, .. } = JsonWebKey::from(r.as_ref()) else {
                    panic!("RSA key");
                };
                assert!(modulus.len() >= 256, "{}-byte RSA modulus", modulus.len());
                assert!(k.alg.is_none_or(|a| a.name().starts_with(['R', 'P'])));
            }
            PublicKey::P256(_) => {
                assert_eq!(kty, Some("EC"));
                assert!(k.alg.is_none_or(|a| a == Alg::Es256));
            }
            #[cfg(feature = "eddsa")]
            PublicKey::Ed25519(_) => {
                assert_eq!(kty, Some("OKP"));
                assert!(k.alg.is_none_or(|a| a == Alg::EdDsa));
            }
        }
    }

    let first = summary(&set);
    let written = json!({ "keys": first.iter().map(|(_, _, v)| v.clone()).collect::<Vec<_>>() });
    let again = parse_key_set(&written.to_string()).expect("written key set parses");
    assert_eq!(again.skipped, 0, "a written key was skipped");
    assert_eq!(summary(&again), first, "key set does not round-trip");
}

//! `oauth::metadata::parse_document` on arbitrary documents: never panics;
//! what it accepts has exactly the configured issuer, the endpoints the
//! document names (unchanged), each https or http on a loopback host, and
//! at least one accepted id_token algorithm, never `none` or HMAC.
//!
//! Input: a flags byte; bit 0 clear: the issuer is the fixture's and the
//! rest is the document; set: the issuer is the first line.

use super::fixtures::ISSUER;
use hubgate::oauth::metadata::{accepted_algs, parse_document};
use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr};

/// https with a host, or http on a loopback host; written independently
/// of `url_policy` on purpose.
pub fn secure_endpoint(raw: &str) -> bool {
    let Ok(u) = url::Url::parse(raw) else {
        return false;
    };
    match (u.scheme(), u.host_str()) {
        ("https", Some(h)) => !h.is_empty(),
        ("http", Some(h)) => {
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<Ipv4Addr>().is_ok_and(|ip| ip.octets()[0] == 127)
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<Ipv6Addr>()
                    .is_ok_and(|ip| ip == Ipv6Addr::LOCALHOST)
        }
        _ => false,
    }
}

/// The accepted text as a `Value`, to check it independently. `None` for
/// the few texts serde's derive accepts but `Value` cannot hold: numbers
/// beyond f64 in members the derive skips unread.
pub fn as_value(text: &str) -> Option<Value> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(e) if e.to_string().contains("number out of range") => None,
        Err(e) => panic!("accepted text is not JSON: {e}"),
    }
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let (issuer, body) = if flags & 1 == 0 {
        (ISSUER.to_string(), rest)
    } else {
        super::input::first_line(rest)
    };
    let body = String::from_utf8_lossy(body);
    let ep = match parse_document(&issuer, &body) {
        Ok(ep) => ep,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let Some(doc) = as_value(&body) else { return };
    // OpenID Connect Discovery 4.2: the document is a JSON object.
    if !super::finding("json-array", doc.is_object(), || {
        format!("a discovery document that is no JSON object was accepted: {doc}")
    }) {
        return;
    }
    assert_eq!(doc["issuer"].as_str(), Some(issuer.as_str()), "issuer");
    for (field, got) in [
        ("authorization_endpoint", Some(&ep.authorize)),
        ("token_endpoint", Some(&ep.token)),
        ("userinfo_endpoint", ep.userinfo.as_ref()),
        ("jwks_uri", ep.jwks.as_ref()),
    ] {
        match got {
            Some(u) => {
                assert_eq!(doc[field].as_str(), Some(u.as_str()), "{field} changed");
                assert!(secure_endpoint(u), "{field} {u:?} accepted");
            }
            None => assert!(doc[field].is_null(), "{field} dropped"),
        }
    }
    let algs = accepted_algs(&ep);
    assert!(!algs.is_empty());
}

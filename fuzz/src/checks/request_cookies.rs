//! `cookies::parse_request_cookies` on arbitrary `Cookie` headers: never
//! panics; every pair has a non-empty, trimmed name without `;` or `=` and
//! a trimmed value without `;`; joining the pairs the way the proxy
//! rebuilds the header and parsing again gives the same pairs.
//!
//! Input: one `Cookie` header per line.

use hubgate::cookies::{is_worker_cookie, parse_request_cookies};
use hubgate::http::Headers;

pub fn run(data: &[u8]) {
    let headers = Headers(
        super::input::lines(data)
            .into_iter()
            .map(|l| ("Cookie".to_string(), l))
            .collect(),
    );
    let pairs = parse_request_cookies(&headers);
    for (n, v) in &pairs {
        assert!(!n.is_empty(), "empty cookie name");
        assert!(!n.contains(';') && !n.contains('='), "name {n:?}");
        assert!(!v.contains(';'), "value {v:?}");
        assert_eq!(n.trim(), n, "untrimmed name");
        assert_eq!(v.trim(), v, "untrimmed value");
        // The classifier agrees with its definition.
        let bare = n.strip_prefix("__Host-").unwrap_or(n);
        assert_eq!(
            is_worker_cookie(n),
            bare == "hubgate" || bare.starts_with("hubgate-")
        );
    }
    let joined: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let again = parse_request_cookies(&Headers(vec![("cookie".into(), joined.join("; "))]));
    assert_eq!(again, pairs, "rebuilding the Cookie header changes it");
}

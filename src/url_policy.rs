//! Where the worker may send a browser and which URLs it may call: `next`
//! and every other redirect target are same-origin paths only; upstream
//! URLs are https, or http on a loopback host.

/// The path itself when it is a safe same-origin path, else `None`.
///
/// Refused: anything not starting with `/`; `//` and `/\` (browsers read both
/// as a scheme-relative URL to another host); any backslash; control
/// characters and whitespace (browsers strip tabs and newlines, which turns
/// `/\t/evil` into `//evil`).
pub fn safe_path(raw: &str) -> Option<&str> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
    if !ok {
        return None;
    }
    // Parse against a placeholder origin: the result must stay on it.
    let base = url::Url::parse("https://hubgate.invalid/").ok()?;
    let joined = base.join(raw).ok()?;
    (joined.origin() == base.origin()).then_some(raw)
}

/// `next` if given and safe; the hub's home under `base_path` if absent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect target is not a same-origin path")]
pub struct UnsafeRedirect;

/// Refused when a `next` was given but is not safe.
pub fn next_or_home(next: Option<&str>, base_path: &str) -> Result<String, UnsafeRedirect> {
    match next.filter(|n| !n.is_empty()) {
        None => Ok(format!("{base_path}hub/")),
        Some(n) => safe_path(n).map(str::to_string).ok_or(UnsafeRedirect),
    }
}

/// https anywhere; http only on loopback hosts (local development, tests).
pub fn is_secure_url(u: &url::Url) -> bool {
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => is_loopback_host(u),
        _ => false,
    }
}

pub fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `path?next=<next>`, with `next` form-encoded: the one place the
/// worker writes a `?next=` (login links, the hub's login).
pub fn with_next(path: &str, next: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("{path}?next={enc}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_refused_except_on_loopback() {
        let ok = |s: &str| is_secure_url(&url::Url::parse(s).unwrap());
        assert!(ok("https://idp.example.org/x"));
        assert!(ok("http://127.0.0.1:9000/"));
        assert!(ok("http://127.8.0.1/"));
        assert!(ok("http://localhost:1/"));
        assert!(ok("http://[::1]:8/"));
        assert!(!ok("http://idp.example.org/"));
        assert!(!ok("http://10.0.0.1/"));
        assert!(!ok("ftp://127.0.0.1/"));
    }

    #[test]
    fn accepts_plain_paths() {
        for p in ["/", "/hub/", "/user/alice/lab?x=1#f", "/a%2F%2Fb"] {
            assert_eq!(safe_path(p), Some(p));
        }
    }

    #[test]
    fn refuses_open_redirect_shapes() {
        for p in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil",
            "evil.example",
            "",
            "/%0d%0a".replace("%0d%0a", "\r\n").as_str(),
        ] {
            assert_eq!(safe_path(p), None, "{p:?} must be refused");
        }
    }

    #[test]
    fn missing_next_goes_home_under_base() {
        assert_eq!(next_or_home(None, "/jh/").unwrap(), "/jh/hub/");
        assert!(next_or_home(Some("//x"), "/").is_err());
    }
}

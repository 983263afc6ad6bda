//! Reading the `Cookie` header and writing `Set-Cookie` values, through the
//! `cookie` crate. Names get the `__Host-` prefix on https so a sibling
//! subdomain cannot plant or overwrite them.

use crate::http::Headers;
use cookie::{time::Duration, Cookie, SameSite};

pub const SESSION_BASE: &str = "hubgate";
pub const FLOW_PREFIX_BASE: &str = "hubgate-";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// First-party navigation: `SameSite=Lax`.
    TopLevel,
    /// Inside an LMS iframe (LTI): `SameSite=None; Secure; Partitioned` on https.
    Embedded,
}

pub fn cookie_name(base: &str, https: bool) -> String {
    if https {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// Every cookie in every `Cookie` header, in order.
pub fn parse_request_cookies(headers: &Headers) -> Vec<(String, String)> {
    headers
        .get_all("cookie")
        .flat_map(|h| Cookie::split_parse(h.to_string()))
        .filter_map(Result::ok)
        .map(|c| (c.name().to_string(), c.value().to_string()))
        .collect()
}

pub fn find_all<'a>(
    cookies: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    cookies
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub fn find<'a>(cookies: &'a [(String, String)], name: &str) -> Option<&'a str> {
    cookies
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// True for a cookie that belongs to hubgate (and must not reach the hub).
pub fn is_worker_cookie(name: &str) -> bool {
    let bare = name.strip_prefix("__Host-").unwrap_or(name);
    bare == SESSION_BASE || bare.starts_with(FLOW_PREFIX_BASE)
}

pub fn set_cookie(name: &str, value: &str, max_age: u64, https: bool, ctx: Context) -> String {
    let mut b = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .max_age(Duration::seconds(max_age as i64));
    b = match (https, ctx) {
        (true, Context::Embedded) => b.secure(true).same_site(SameSite::None).partitioned(true),
        (true, Context::TopLevel) => b.secure(true).same_site(SameSite::Lax),
        // http is allowed only on loopback (see config), where `Secure` would
        // make the browser drop the cookie.
        (false, _) => b.same_site(SameSite::Lax),
    };
    b.build().to_string()
}

pub fn expire_cookie(name: &str, https: bool, ctx: Context) -> String {
    let mut s = set_cookie(name, "", 0, https, ctx);
    s.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    s
}

/// Expire a cookie that the hub set (path `/hub/` or `/user/<name>/`).
pub fn expire_hub_cookie(name: &str, path: &str, secure: bool) -> String {
    let c = Cookie::build((name.to_string(), String::new()))
        .path(path.to_string())
        .secure(secure)
        .max_age(Duration::ZERO)
        .build();
    format!("{c}; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_session_cookie_is_host_prefixed_secure_httponly_lax() {
        let name = cookie_name(SESSION_BASE, true);
        let s = set_cookie(&name, "v", 60, true, Context::TopLevel);
        assert!(s.starts_with("__Host-hubgate=v"), "{s}");
        for attr in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax", "Max-Age=60"] {
            assert!(s.contains(attr), "{attr} missing in {s}");
        }
        assert!(!s.contains("Domain"));
    }

    #[test]
    fn embedded_cookie_is_samesite_none_partitioned() {
        let s = set_cookie("__Host-hubgate", "v", 60, true, Context::Embedded);
        assert!(
            s.contains("SameSite=None") && s.contains("Partitioned") && s.contains("Secure"),
            "{s}"
        );
    }

    #[test]
    fn parses_several_cookie_headers() {
        let h = Headers(vec![
            ("Cookie".into(), "a=1; hubgate=s".into()),
            ("cookie".into(), "b=2".into()),
        ]);
        let c = parse_request_cookies(&h);
        assert_eq!(find(&c, "hubgate"), Some("s"));
        assert_eq!(find(&c, "b"), Some("2"));
    }

    #[test]
    fn recognises_worker_cookies_only() {
        assert!(is_worker_cookie("__Host-hubgate"));
        assert!(is_worker_cookie("hubgate-oauth-abc"));
        assert!(!is_worker_cookie("jupyterhub-session-id"));
        assert!(!is_worker_cookie("_xsrf"));
    }
}

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
    /// Inside an LMS iframe (LTI): `SameSite=None; Secure; Partitioned`.
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
    b = match ctx {
        // A cross-site frame keeps only `SameSite=None; Secure` cookies, and
        // Chromium's third-party-cookie blocking spares only `Partitioned`
        // ones. http is allowed only on loopback (config), which browsers
        // treat as a secure context: `Secure` is kept there too.
        Context::Embedded => b.secure(true).same_site(SameSite::None).partitioned(true),
        Context::TopLevel => b.secure(https).same_site(SameSite::Lax),
    };
    b.build().to_string()
}

/// The hub's own `Set-Cookie` made to survive a cross-site LMS frame:
/// `SameSite=None; Secure; Partitioned`, everything else (path, lifetime,
/// `HttpOnly`) as the hub set it. A value the cookie parser cannot read
/// passes unchanged (the hub is trusted; the browser decides).
pub fn frame_safe(set_cookie: &str) -> String {
    match Cookie::parse(set_cookie.to_string()) {
        Ok(mut c) => {
            c.set_secure(true);
            c.set_same_site(SameSite::None);
            c.set_partitioned(true);
            c.to_string()
        }
        Err(_) => set_cookie.to_string(),
    }
}

pub fn expire_cookie(name: &str, https: bool, ctx: Context) -> String {
    let mut s = set_cookie(name, "", 0, https, ctx);
    s.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    s
}

/// Expire a cookie that the hub set (path `/hub/` or `/user/<name>/`).
/// `Embedded` targets the copy kept in an LMS frame's partition (a deletion
/// reaches a partitioned cookie only when it is `Partitioned` itself, and a
/// cross-site frame accepts only `SameSite=None; Secure`).
pub fn expire_hub_cookie(name: &str, path: &str, secure: bool, ctx: Context) -> String {
    let mut b = Cookie::build((name.to_string(), String::new()))
        .path(path.to_string())
        .secure(secure)
        .max_age(Duration::ZERO);
    if ctx == Context::Embedded {
        b = b.secure(true).same_site(SameSite::None).partitioned(true);
    }
    format!("{}; Expires=Thu, 01 Jan 1970 00:00:00 GMT", b.build())
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
    fn embedded_cookie_on_http_loopback_is_still_samesite_none_secure_partitioned() {
        let s = set_cookie("hubgate", "v", 60, false, Context::Embedded);
        for attr in ["SameSite=None", "Secure", "Partitioned", "HttpOnly"] {
            assert!(s.contains(attr), "{attr} missing in {s}");
        }
        let top = set_cookie("hubgate", "v", 60, false, Context::TopLevel);
        assert!(
            top.contains("SameSite=Lax") && !top.contains("Secure"),
            "{top}"
        );
    }

    #[test]
    fn frame_safe_keeps_the_hubs_path_lifetime_and_httponly() {
        let s = frame_safe(
            "jupyterhub-hub-login=abc; HttpOnly; Path=/hub/; SameSite=Lax; Max-Age=1209600",
        );
        for attr in [
            "jupyterhub-hub-login=abc",
            "HttpOnly",
            "Path=/hub/",
            "Max-Age=1209600",
            "SameSite=None",
            "Secure",
            "Partitioned",
        ] {
            assert!(s.contains(attr), "{attr} missing in {s}");
        }
        assert!(!s.contains("Lax"), "{s}");
        let expires = frame_safe("_xsrf=t; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert!(
            expires.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            "{expires}"
        );
        assert_eq!(frame_safe("=; ;"), "=; ;");
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

//! What a new session sets, decided without I/O: the session cookie (and
//! the deletion of its other variant), and the expiry of the hub's login
//! cookies so the hub never keeps a previous user (DESIGN.md, "Identity
//! handed to the hub").

use super::cookie::{self, extras_overflow};
use super::revocation::ProviderRefs;
use super::SessionSettings;
use crate::cookies::{self, Context};
use crate::http::{RequestCtx, UnixTime};
use crate::identity::Identity;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Python's `urllib.parse.quote` keeps letters, digits and `_.-~` always.
const QUOTE_ALWAYS_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');
/// `quote(name)`: JupyterHub's single-user cookie *name* (safe=`/`).
const QUOTE_NAME: &AsciiSet = &QUOTE_ALWAYS_SAFE.remove(b'/');
/// `quote(name, safe='@~')`: the single-user server's *path*.
const QUOTE_PATH: &AsciiSet = &QUOTE_ALWAYS_SAFE.remove(b'@');

pub fn quote_for_cookie_name(user: &str) -> String {
    utf8_percent_encode(user, QUOTE_NAME).to_string()
}

pub fn quote_for_path(user: &str) -> String {
    utf8_percent_encode(user, QUOTE_PATH).to_string()
}

/// The inputs of a session start.
pub struct Start<'a> {
    pub identity: &'a Identity,
    /// The user of the session this browser had, if any.
    pub previous_user: Option<&'a str>,
    /// The request's cookies (it may carry single-user server cookies).
    pub request_cookies: &'a [(String, String)],
    pub sid: &'a str,
    /// The identity provider's session (OpenID Connect logins).
    pub provider: Option<&'a ProviderRefs>,
    pub cookie_ctx: Context,
    pub now: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Every `Set-Cookie` of the response, in order.
    pub set_cookies: Vec<String>,
    /// Groups and auth_state do not fit the cookie: store them by `sid`.
    pub store_extras: bool,
}

pub fn start(settings: &SessionSettings, ctx: &RequestCtx, s: Start<'_>) -> Started {
    let mut set_cookies = cookie::clear_other_variants(ctx.https, s.cookie_ctx);
    set_cookies.push(cookie::mint(
        settings,
        s.identity,
        s.sid,
        s.provider,
        &ctx.origin,
        ctx.https,
        s.cookie_ctx,
        s.now,
    ));
    let mut users = vec![s.identity.username.as_str()];
    users.extend(s.previous_user);
    set_cookies.extend(hub_cookie_expiry(ctx, s.request_cookies, &users));
    Started {
        set_cookies,
        store_extras: extras_overflow(s.identity),
    }
}

/// Expire the hub's login cookies (and their `__Host-` forms on https), and
/// the single-user server cookies of `users` and of any the request carries.
/// A single-user server's cookie never reaches the worker's own paths, so it
/// is expired by name for the users the worker knows about. Each goes twice:
/// once for the browser's own jar and once for an LMS frame's partition,
/// where a launch's hub cookies live (DESIGN.md, "Sessions, state and keys").
pub fn hub_cookie_expiry(
    ctx: &RequestCtx,
    request_cookies: &[(String, String)],
    users: &[&str],
) -> Vec<String> {
    let base = &ctx.base_path;
    // (name, path, secure)
    let mut targets = vec![
        (
            "jupyterhub-hub-login".to_string(),
            format!("{base}hub/"),
            false,
        ),
        ("jupyterhub-session-id".to_string(), base.to_string(), false),
        // The hub's XSRF cookie is bound to its session: one left from the
        // previous session, in the other variant (an LTI launch's
        // partitioned one beside a top-level login's), is sent beside the
        // new one and the hub refuses its own API calls (403 "XSRF cookie
        // does not match"). The hub sets a fresh one on its next page.
        ("_xsrf".to_string(), format!("{base}hub/"), false),
    ];
    if ctx.https {
        // JupyterHub's cookie_host_prefix_enabled: `__Host-` needs Path=/ and Secure.
        targets.push(("__Host-jupyterhub-hub-login".into(), "/".into(), true));
        targets.push(("__Host-jupyterhub-session-id".into(), "/".into(), true));
    }
    let mut names: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    for (name, _) in request_cookies {
        if let Some(quoted) = name.strip_prefix("jupyterhub-user-") {
            if let Ok(user) = percent_decode_str(quoted).decode_utf8() {
                names.push(user.into_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    for user in names {
        targets.push((
            format!("jupyterhub-user-{}", quote_for_cookie_name(&user)),
            format!("{base}user/{}/", quote_for_path(&user)),
            false,
        ));
    }
    targets
        .iter()
        .flat_map(|(name, path, secure)| {
            [Context::TopLevel, Context::Embedded]
                .map(|c| cookies::expire_hub_cookie(name, path, *secure, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_python_for_cookie_name_and_path() {
        assert_eq!(quote_for_cookie_name("a.b@x.org"), "a.b%40x.org");
        assert_eq!(quote_for_path("a.b@x.org"), "a.b@x.org");
        assert_eq!(quote_for_cookie_name("a b/c~"), "a%20b/c~");
        assert_eq!(quote_for_path("a b/c~"), "a%20b%2Fc~");
    }

    #[test]
    fn expires_an_email_users_server_cookie_on_the_path_jupyterhub_uses() {
        let ctx = RequestCtx {
            origin: "https://hub.example".into(),
            https: true,
            base_path: "/".into(),
        };
        let out = hub_cookie_expiry(&ctx, &[], &["al@x.org"]);
        assert!(
            out.iter()
                .any(|c| c.starts_with("jupyterhub-user-al%40x.org=")
                    && c.contains("Path=/user/al@x.org/")),
            "{out:?}"
        );
        assert!(out
            .iter()
            .any(|c| c.starts_with("__Host-jupyterhub-hub-login=")
                && c.contains("Path=/")
                && c.contains("Secure")));
    }

    #[test]
    fn every_hub_cookie_is_expired_in_the_browsers_jar_and_in_an_lms_partition() {
        let ctx = RequestCtx {
            origin: "http://127.0.0.1:8787".into(),
            https: false,
            base_path: "/".into(),
        };
        let out = hub_cookie_expiry(&ctx, &[], &["al"]);
        for name in [
            "jupyterhub-hub-login=",
            "jupyterhub-session-id=",
            "jupyterhub-user-al=",
        ] {
            let of: Vec<&String> = out.iter().filter(|c| c.starts_with(name)).collect();
            assert_eq!(of.len(), 2, "{name}: {out:?}");
            assert_eq!(
                of.iter()
                    .filter(|c| c.contains("Partitioned") && c.contains("SameSite=None"))
                    .count(),
                1,
                "{name}: {of:?}"
            );
        }
    }
}

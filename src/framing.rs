//! What a session opened by an LTI launch changes on the hub's responses,
//! so the hub works inside the LMS's cross-site iframe with no hub
//! reconfiguration: its cookies become frame-safe (a frame keeps only
//! `SameSite=None; Secure` cookies, and browsers that block third-party
//! cookies keep only `Partitioned` ones), and its `frame-ancestors` (JupyterHub
//! sends `'none'`, jupyter_server `'self'`) names the registered platforms.
//! OAuth sessions are left exactly as the hub answered.

use crate::cookies;
use crate::http::Headers;

const CSP: &str = "content-security-policy";

/// The `frame-ancestors` directive for `ancestors` (the tool's own origin
/// always stays allowed: JupyterLab frames itself).
pub fn frame_ancestors_directive(ancestors: &[String]) -> String {
    let mut d = String::from("frame-ancestors 'self'");
    for a in ancestors {
        d.push(' ');
        d.push_str(a);
    }
    d
}

/// One policy with its `frame-ancestors` replaced (or left without one, when
/// it had none: then nothing restricted framing and nothing is added).
fn rewrite_policy(policy: &str, directive: &str) -> (String, bool) {
    let mut found = false;
    let parts: Vec<String> = policy
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let name = p.split_ascii_whitespace().next().unwrap_or_default();
            if name.eq_ignore_ascii_case("frame-ancestors") {
                found = true;
                directive.to_string()
            } else {
                p.to_string()
            }
        })
        .collect();
    (parts.join("; "), found)
}

/// Apply the frame rules to a hub response's headers in place.
pub fn frame_safe_headers(headers: &mut Headers, ancestors: &[String]) {
    let directive = frame_ancestors_directive(ancestors);
    let mut had_frame_options = false;
    let mut csp_frames = false;
    let mut out = Vec::with_capacity(headers.0.len());
    for (name, value) in headers.0.drain(..) {
        let lower = name.to_ascii_lowercase();
        if lower == "set-cookie" {
            out.push((name, cookies::frame_safe(&value)));
        } else if lower == CSP {
            let (policy, found) = rewrite_policy(&value, &directive);
            csp_frames |= found;
            out.push((name, policy));
        } else if lower == "x-frame-options" {
            // `frame-ancestors` supersedes it, and `DENY`/`SAMEORIGIN` would
            // still block the LMS in browsers that read it first.
            had_frame_options = true;
        } else {
            out.push((name, value));
        }
    }
    if had_frame_options && !csp_frames {
        out.push(("Content-Security-Policy".into(), directive));
    }
    headers.0 = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lms() -> Vec<String> {
        vec!["https://lms.example.edu".into()]
    }

    #[test]
    fn jupyterhubs_frame_ancestors_none_becomes_the_platforms() {
        let mut h = Headers(vec![(
            "Content-Security-Policy".into(),
            "frame-ancestors 'none'; report-uri /hub/security/csp-report".into(),
        )]);
        frame_safe_headers(&mut h, &lms());
        assert_eq!(
            h.get("content-security-policy"),
            Some("frame-ancestors 'self' https://lms.example.edu; report-uri /hub/security/csp-report")
        );
    }

    #[test]
    fn a_policy_without_frame_ancestors_is_left_alone() {
        let mut h = Headers(vec![(
            "Content-Security-Policy".into(),
            "default-src 'self'".into(),
        )]);
        frame_safe_headers(&mut h, &lms());
        assert_eq!(h.get("content-security-policy"), Some("default-src 'self'"));
    }

    #[test]
    fn x_frame_options_is_replaced_by_frame_ancestors() {
        let mut h = Headers(vec![("X-Frame-Options".into(), "DENY".into())]);
        frame_safe_headers(&mut h, &lms());
        assert_eq!(h.get("x-frame-options"), None);
        assert_eq!(
            h.get("content-security-policy"),
            Some("frame-ancestors 'self' https://lms.example.edu")
        );
    }

    #[test]
    fn every_hub_cookie_becomes_samesite_none_secure_partitioned() {
        let mut h = Headers(vec![
            (
                "Set-Cookie".into(),
                "jupyterhub-session-id=a; HttpOnly; Path=/; SameSite=Lax".into(),
            ),
            (
                "set-cookie".into(),
                "_xsrf=b; Path=/hub/; Max-Age=3600".into(),
            ),
        ]);
        frame_safe_headers(&mut h, &lms());
        let all: Vec<&str> = h.get_all("set-cookie").collect();
        assert_eq!(all.len(), 2);
        for c in all {
            assert!(
                c.contains("SameSite=None") && c.contains("Secure") && c.contains("Partitioned"),
                "{c}"
            );
        }
    }
}

//! The few pages the worker renders itself: login, signed out, errors.
//! Errors are generic for the client (status, one line, correlation id);
//! the detail goes to the log only.

use crate::http::{Headers, Response};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages' only style: contrast at least 4.5:1 (WCAG AA), a visible
/// keyboard focus. Allowed by its hash: no inline style or script else runs.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222;background:#fff;line-height:1.5}\
a.button{display:inline-block;padding:.6rem 1.2rem;background:#b34700;color:#fff;border-radius:4px;text-decoration:none;font-size:1rem}\
a:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}small{color:#595959}";

fn style_hash() -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(STYLE.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{t}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        t = escape(title)
    )
}

/// A page of the worker's own: no script, the style by its hash, no form,
/// nothing loaded from anywhere. Framable, as an LMS frame may show it.
fn own_page(status: u16, title: &str, body: &str) -> Response {
    let mut r = Response::html(status, page(title, body));
    r.headers.set(
        "Content-Security-Policy",
        format!(
            "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors *",
            style_hash()
        ),
    );
    r
}

pub fn wants_json(headers: &Headers) -> bool {
    let accept = headers.get("accept").unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

pub fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Not signed in",
        403 => "Access denied",
        404 => "Not found",
        405 => "Method not allowed",
        413 => "Request too large",
        500 => "Server misconfigured",
        502 => "Upstream service unavailable",
        _ => "Error",
    }
}

pub fn error(
    status: u16,
    correlation_id: &str,
    headers: &Headers,
    login_href: Option<&str>,
) -> Response {
    let text = status_text(status);
    if wants_json(headers) {
        return Response::json(
            status,
            &serde_json::json!({"status": status, "error": text, "correlation_id": correlation_id}),
        );
    }
    let again = login_href
        .map(|h| format!("<p><a href=\"{}\">Sign in again</a></p>", escape(h)))
        .unwrap_or_default();
    own_page(
        status,
        text,
        &format!(
            "<h1>{text}</h1>{again}<p><small>Reference: <code>{}</code> (status {status})</small></p>",
            escape(correlation_id)
        ),
    )
}

pub struct LoginChoice<'a> {
    pub label: &'a str,
    pub href: &'a str,
}

/// The sign-in page: one link per identity provider, labelled with its
/// `LOGIN_SERVICE`; with LTI, where students start instead.
pub fn login(choices: &[LoginChoice<'_>], lti: bool) -> Response {
    let mut body = String::from("<h1>Sign in</h1>");
    for c in choices {
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"{}\">Sign in with {}</a></p>",
            escape(c.href),
            escape(c.label)
        ));
    }
    if lti {
        body.push_str("<p>Students: open this hub from your course in the learning platform.</p>");
    }
    if choices.is_empty() && !lti {
        body.push_str("<p>No sign-in method is configured.</p>");
    }
    own_page(200, "Sign in", &body)
}

pub fn signed_out(login_href: &str) -> Response {
    own_page(
        200,
        "Signed out",
        &format!(
            "<h1>You are signed out</h1><p><a class=\"button\" href=\"{}\">Sign in again</a></p>",
            escape(login_href)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_is_generic_and_carries_correlation_id() {
        let r = error(401, "abc123", &Headers::new(), None);
        let body = String::from_utf8(r.body).unwrap();
        assert_eq!(r.status, 401);
        assert!(body.contains("abc123") && body.contains("Not signed in"));
    }

    #[test]
    fn error_is_json_when_asked() {
        let h = Headers(vec![("Accept".into(), "application/json".into())]);
        let r = error(502, "id", &h, None);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], 502);
        assert_eq!(v["correlation_id"], "id");
    }

    #[test]
    fn own_pages_allow_their_style_by_hash_and_nothing_else() {
        let r = signed_out("/hub/login");
        let csp = r.headers.get("content-security-policy").unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("<html lang=\"en\">") && body.contains("<main>"));
        assert!(!body.contains("<script"));
        assert!(body.contains(&format!("<style>{STYLE}</style>")));
    }

    #[test]
    fn login_page_escapes_the_service_name() {
        let r = login(
            &[LoginChoice {
                label: "<script>",
                href: "/x",
            }],
            false,
        );
        assert!(!String::from_utf8(r.body).unwrap().contains("<script>"));
    }
}

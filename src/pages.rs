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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
a.button,button{{display:inline-block;padding:.6rem 1.2rem;background:#f37726;color:#fff;border:0;border-radius:4px;text-decoration:none;font-size:1rem}}\
small{{color:#666}}</style></head><body>{body}</body></html>",
        t = escape(title)
    )
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
    Response::html(
        status,
        page(
            text,
            &format!(
                "<h1>{text}</h1>{again}<p><small>Reference: <code>{}</code> (status {status})</small></p>",
                escape(correlation_id)
            ),
        ),
    )
}

pub struct LoginChoice<'a> {
    pub label: &'a str,
    pub href: &'a str,
}

pub fn login(choices: &[LoginChoice<'_>], lti_only_note: bool) -> Response {
    let mut body = String::from("<h1>Sign in</h1>");
    for c in choices {
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"{}\">Sign in with {}</a></p>",
            escape(c.href),
            escape(c.label)
        ));
    }
    if lti_only_note {
        body.push_str("<p>Open this hub from your course in the learning platform.</p>");
    }
    Response::html(200, page("Sign in", &body))
}

pub fn signed_out(login_href: &str) -> Response {
    Response::html(
        200,
        page(
            "Signed out",
            &format!(
                "<h1>You are signed out</h1><p><a class=\"button\" href=\"{}\">Sign in again</a></p>",
                escape(login_href)
            ),
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

//! `worker::Request` → `IncomingRequest`, `Response` → `worker::Response`.

use crate::http::{Headers, IncomingRequest, Method, Response};
use worker::{Request, Result};

/// Forms the core reads (LTI launch) are small; anything bigger is refused.
const MAX_FORM_BYTES: usize = 64 * 1024;

fn reads_body(method: Method, path: &str) -> bool {
    method == Method::Post && path.contains("/hub/lti13/")
}

/// The core's view of the request, and the original (whose body stream the
/// proxy forwards untouched).
pub async fn incoming(mut req: Request) -> std::result::Result<(IncomingRequest, Request), u16> {
    let url = req.url().map_err(|_| 400u16)?;
    let method = Method::parse(req.method().as_ref());
    let headers = Headers(req.headers().entries().collect());
    let body = if reads_body(method, url.path()) {
        let declared = headers
            .get("content-length")
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
            return Err(413);
        }
        let bytes = req.bytes().await.map_err(|_| 400u16)?;
        if bytes.len() > MAX_FORM_BYTES {
            return Err(413);
        }
        Some(bytes)
    } else {
        None
    };
    Ok((
        IncomingRequest {
            method,
            url,
            headers,
            body,
        },
        req,
    ))
}

pub fn headers(h: &Headers) -> Result<worker::Headers> {
    let out = worker::Headers::new();
    for (k, v) in &h.0 {
        out.append(k, v)?;
    }
    Ok(out)
}

pub fn response(r: Response) -> Result<worker::Response> {
    Ok(worker::Response::builder()
        .with_status(r.status)
        .with_headers(headers(&r.headers)?)
        .fixed(r.body))
}

pub fn bare_error(status: u16) -> Result<worker::Response> {
    worker::Response::error(crate::pages::status_text(status), status)
}

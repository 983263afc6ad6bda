//! `worker::Request` → `IncomingRequest`, `Response` → `worker::Response`.
//! A body is read only when the route says it takes a form.

use crate::app::respond::EdgeFailure;
use crate::http::{Headers, IncomingRequest, Method, Response};
use crate::router::route;
use worker::{Request, Result};

/// Forms the core reads (LTI login, launch, deep link) are small; anything
/// bigger is refused.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A request the edge could not turn into an `IncomingRequest`.
pub struct Refused {
    pub headers: Headers,
    pub path: String,
    pub failure: EdgeFailure,
}

/// The core's view of the request, and the original (whose body stream the
/// proxy forwards untouched).
pub async fn incoming(
    mut req: Request,
    base_path: &str,
) -> std::result::Result<(IncomingRequest, Request), Refused> {
    let headers = Headers(req.headers().entries().collect());
    let refuse = |headers: &Headers, path: &str, status: u16, detail: &str| Refused {
        headers: headers.clone(),
        path: path.to_string(),
        failure: EdgeFailure {
            status,
            kind: "request",
            detail: detail.to_string(),
        },
    };
    let url = req
        .url()
        .map_err(|_| refuse(&headers, "", 400, "request URL does not parse"))?;
    let method = Method::parse(req.method().as_ref());
    let body = if route(base_path, url.path()).reads_body(method) {
        let declared = headers
            .get("content-length")
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
            return Err(refuse(
                &headers,
                url.path(),
                413,
                "request body over 64 KiB",
            ));
        }
        let bytes = req
            .bytes()
            .await
            .map_err(|_| refuse(&headers, url.path(), 400, "request body could not be read"))?;
        if bytes.len() > MAX_FORM_BYTES {
            return Err(refuse(
                &headers,
                url.path(),
                413,
                "request body over 64 KiB",
            ));
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

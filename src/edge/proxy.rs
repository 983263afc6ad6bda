//! Forwarding to the hub: the request body streams through, the response
//! body streams back, redirects are not followed, WebSocket upgrades pass.

use super::convert;
use super::io::{within, WorkerIo};
use crate::app::respond::{fail, EdgeFailure};
use crate::http::{FetchError, Headers};
use crate::proxy::{response_headers, ProxyPlan};
use wasm_bindgen::JsValue;
use worker::{Fetch, Request, RequestInit, RequestRedirect, Result};

async fn send(
    plan: &ProxyPlan,
    method: worker::Method,
    body: Option<JsValue>,
    io: &WorkerIo,
) -> Result<worker::Response> {
    let mut init = RequestInit::new();
    init.with_method(method)
        .with_headers(convert::headers(&plan.headers)?)
        .with_redirect(RequestRedirect::Manual)
        .with_body(body);
    let request = Request::new_with_init(&plan.url, &init)?;
    match &io.hub {
        Some(service) => service.fetch_request(request).await,
        None => Fetch::Request(request).send().await,
    }
}

pub async fn forward(
    original: &Request,
    plan: ProxyPlan,
    io: &WorkerIo,
) -> Result<worker::Response> {
    let method = original.method();
    let body = match method {
        worker::Method::Get | worker::Method::Head => None,
        _ => original.inner().body().map(JsValue::from),
    };
    // The hub answers (headers, or the upgrade) within HUB_TIMEOUT; the
    // body then streams on without a bound.
    let sent = within(plan.timeout_ms, send(&plan, method, body, io)).await;
    let resp = match sent {
        Some(Ok(r)) => r,
        failed => {
            let detail = match failed {
                Some(Err(e)) => e.to_string(),
                _ => FetchError::Timeout(plan.timeout_ms).to_string(),
            };
            let f = EdgeFailure {
                status: 502,
                kind: "hub_unreachable",
                detail,
            };
            let client = Headers(original.headers().entries().collect());
            let path = original.path();
            return convert::response(fail(io, &client, &path, &f));
        }
    };
    if plan.websocket && resp.status_code() == 101 {
        // The socket pair is handed straight to the client.
        return Ok(resp);
    }
    let headers = response_headers(&super::io::response_headers(resp.headers()), &plan);
    let out_headers = convert::headers(&headers)?;
    let (builder, body) = resp.into_parts();
    Ok(builder.with_headers(out_headers).body(body))
}

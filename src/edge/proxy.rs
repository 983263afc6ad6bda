//! Forwarding to the hub: the request body streams through, the response
//! body streams back, redirects are not followed, WebSocket upgrades pass.

use super::convert;
use super::io::WorkerIo;
use crate::http::{Headers, Response};
use crate::io::Io;
use crate::proxy::{inbound_headers, ProxyPlan};
use wasm_bindgen::JsValue;
use worker::{Fetch, Request, RequestInit, RequestRedirect, Result};

/// Response headers as a list, with each `Set-Cookie` kept apart.
fn hub_headers(h: &worker::Headers) -> Headers {
    let mut out: Vec<(String, String)> = h
        .entries()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("set-cookie"))
        .collect();
    for c in h.get_all("set-cookie").unwrap_or_default() {
        out.push(("set-cookie".into(), c));
    }
    Headers(out)
}

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

fn upstream_failed(io: &WorkerIo, detail: &str) -> Result<worker::Response> {
    let id = crate::io::random_token(io, 9);
    io.log(&crate::log::line(
        "error",
        &[
            ("kind", "hub_unreachable"),
            ("status", "502"),
            ("detail", detail),
            ("correlation_id", &id),
        ],
    ));
    convert::response(crate::pages::error(502, &id, &Headers::new(), None))
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
    let resp = match send(&plan, method, body, io).await {
        Ok(r) => r,
        Err(e) => return upstream_failed(io, &e.to_string()),
    };
    if plan.websocket && resp.status_code() == 101 {
        // The socket pair is handed straight to the client.
        return Ok(resp);
    }
    let mut headers = inbound_headers(&hub_headers(resp.headers()));
    for c in plan.set_cookies {
        headers.push("Set-Cookie", c);
    }
    let out_headers = convert::headers(&headers)?;
    let (builder, body) = resp.into_parts();
    Ok(builder.with_headers(out_headers).body(body))
}

pub async fn logout(hub: ProxyPlan, mut then: Response, io: &WorkerIo) -> Result<worker::Response> {
    match send(&hub, worker::Method::Get, None, io).await {
        Ok(resp) => {
            // The hub's cookie clearing reaches the browser; its redirect does not.
            for c in resp.headers().get_all("set-cookie").unwrap_or_default() {
                then.headers.push("Set-Cookie", c);
            }
        }
        Err(e) => io.log(&crate::log::line(
            "hub_logout_failed",
            &[("detail", &e.to_string())],
        )),
    }
    convert::response(then)
}

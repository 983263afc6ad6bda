//! `Io` over the Workers runtime: fetch with a timeout and a size cap, KV,
//! the clock, the CSPRNG, and console logging.

use crate::http::{FetchError, Headers, Method, OutboundRequest, OutboundResponse, UnixTime};
use crate::io::{Io, KvNamespace};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{Delay, Env, Fetch, RequestInit, RequestRedirect};

pub struct WorkerIo {
    jwks: Option<worker::kv::KvStore>,
    nonces: Option<worker::kv::KvStore>,
    /// A service binding `HUB`: when bound, proxied requests go through it
    /// instead of the public internet (HUB_ORIGIN still names the origin).
    pub hub: Option<worker::Fetcher>,
}

impl WorkerIo {
    pub fn new(env: &Env) -> Self {
        WorkerIo {
            jwks: env.kv("JWKS_CACHE").ok(),
            nonces: env.kv("NONCES").ok(),
            hub: env.service("HUB").ok(),
        }
    }

    fn kv(&self, ns: KvNamespace) -> Option<&worker::kv::KvStore> {
        match ns {
            KvNamespace::JwksCache => self.jwks.as_ref(),
            KvNamespace::Nonces => self.nonces.as_ref(),
        }
    }
}

pub fn to_worker_method(m: Method) -> worker::Method {
    match m {
        Method::Get => worker::Method::Get,
        Method::Head => worker::Method::Head,
        Method::Post => worker::Method::Post,
        Method::Other => worker::Method::Get,
    }
}

async fn send(req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
    let net = |e: worker::Error| FetchError::Network(e.to_string());
    let headers = worker::Headers::new();
    for (k, v) in &req.headers.0 {
        headers.append(k, v).map_err(net)?;
    }
    let mut init = RequestInit::new();
    init.with_method(to_worker_method(req.method))
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if let Some(body) = &req.body {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let request = worker::Request::new_with_init(&req.url, &init).map_err(net)?;
    let mut resp = Fetch::Request(request).send().await.map_err(net)?;
    let declared = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > req.max_body_bytes) {
        return Err(FetchError::TooLarge(req.max_body_bytes));
    }
    let body = resp.bytes().await.map_err(net)?;
    if body.len() > req.max_body_bytes {
        return Err(FetchError::TooLarge(req.max_body_bytes));
    }
    Ok(OutboundResponse {
        status: resp.status_code(),
        headers: Headers(resp.headers().entries().collect()),
        body,
    })
}

impl Io for WorkerIo {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let timeout = req.timeout_ms;
        let work = Box::pin(send(req));
        let timer = Box::pin(Delay::from(Duration::from_millis(timeout as u64)));
        match select(work, timer).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => Err(FetchError::Timeout(timeout)),
        }
    }

    async fn kv_get(&self, ns: KvNamespace, key: &str) -> Option<String> {
        let kv = self.kv(ns)?;
        match kv.get(key).text().await {
            Ok(v) => v,
            Err(e) => {
                self.log(&crate::log::line(
                    "kv_error",
                    &[("op", "get"), ("detail", &e.to_string())],
                ));
                None
            }
        }
    }

    async fn kv_put(&self, ns: KvNamespace, key: &str, value: &str, ttl_secs: u64) {
        let Some(kv) = self.kv(ns) else { return };
        // KV refuses expirations under 60 s.
        let result = match kv.put(key, value) {
            Ok(b) => b.expiration_ttl(ttl_secs.max(60)).execute().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.log(&crate::log::line(
                "kv_error",
                &[("op", "put"), ("detail", &e.to_string())],
            ));
        }
    }

    fn now(&self) -> UnixTime {
        UnixTime(worker::Date::now().as_millis() / 1000)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        getrandom::getrandom(buf).expect("crypto.getRandomValues is always available in workerd");
    }

    fn log(&self, line: &str) {
        worker::console_log!("{}", line);
    }
}

//! `Io` over the Workers runtime: fetch with a timeout and a size cap (to
//! the internet, or to the hub through the `HUB` service binding), KV, the
//! one-time store, the clock, the CSPRNG, and console logging. Every call
//! out of the isolate is bounded in time.

use crate::config::{OneTimeStore, CACHE_KV_BINDING, ONE_TIME_BINDING, STATE_KV_BINDING};
use crate::http::{
    CappedBody, FetchError, Headers, Method, OutboundRequest, OutboundResponse, UnixTime,
};
use crate::log;
use crate::ports::{Io, KvNamespace, StoreUnavailable, Use, KV_TIMEOUT_MS, ONE_TIME_TIMEOUT_MS};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::future::Future;
use std::time::Duration;
use worker::{Delay, Env, Fetch, RequestInit, RequestRedirect};

/// `work`'s output, or `None` when it takes longer than `ms`.
pub async fn within<T>(ms: u32, work: impl Future<Output = T>) -> Option<T> {
    let work = Box::pin(work);
    let timer = Box::pin(Delay::from(Duration::from_millis(u64::from(ms))));
    match select(work, timer).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

pub struct WorkerIo {
    cache: Option<worker::kv::KvStore>,
    state: Option<worker::kv::KvStore>,
    one_time: Option<worker::ObjectNamespace>,
    store: OneTimeStore,
    /// A service binding `HUB`: when bound, requests to the hub go through it
    /// instead of the public internet (HUB_ORIGIN still names the origin).
    pub hub: Option<worker::Fetcher>,
}

impl WorkerIo {
    pub fn new(env: &Env, store: OneTimeStore) -> Self {
        WorkerIo {
            cache: env.kv(CACHE_KV_BINDING).ok(),
            state: env.kv(STATE_KV_BINDING).ok(),
            one_time: env.durable_object(ONE_TIME_BINDING).ok(),
            store,
            hub: env.service("HUB").ok(),
        }
    }

    fn kv(&self, ns: KvNamespace) -> Option<&worker::kv::KvStore> {
        match ns {
            KvNamespace::Cache => self.cache.as_ref(),
            KvNamespace::State => self.state.as_ref(),
        }
    }

    async fn use_once_in_object(&self, key: &str, ttl: u64) -> Result<Use, StoreUnavailable> {
        let down = |e: worker::Error| StoreUnavailable(e.to_string());
        let ns = self
            .one_time
            .as_ref()
            .ok_or_else(|| StoreUnavailable(format!("{ONE_TIME_BINDING} is not bound")))?;
        let stub = ns
            .id_from_name(key)
            .map_err(down)?
            .get_stub()
            .map_err(down)?;
        let mut resp = stub
            .fetch_with_str(&format!("https://one-time.invalid/use?ttl={ttl}"))
            .await
            .map_err(down)?;
        match resp.text().await.map_err(down)?.as_str() {
            "first" => Ok(Use::First),
            "replay" => Ok(Use::Replay),
            other => Err(StoreUnavailable(format!("unexpected answer {other:?}"))),
        }
    }

    /// The explicit, warned KV fallback: a read then a write.
    async fn use_once_in_kv(&self, key: &str, ttl: u64) -> Result<Use, StoreUnavailable> {
        let kv = self
            .state
            .as_ref()
            .ok_or_else(|| StoreUnavailable(format!("{STATE_KV_BINDING} is not bound")))?;
        let down = |e: worker::kv::KvError| StoreUnavailable(e.to_string());
        if kv.get(key).text().await.map_err(down)?.is_some() {
            return Ok(Use::Replay);
        }
        kv.put(key, "1")
            .map_err(down)?
            .expiration_ttl(ttl.max(60))
            .execute()
            .await
            .map_err(down)?;
        Ok(Use::First)
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

/// Response headers as a list, with each `Set-Cookie` kept apart.
pub fn response_headers(h: &worker::Headers) -> Headers {
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
    req: OutboundRequest,
    hub: Option<&worker::Fetcher>,
) -> Result<OutboundResponse, FetchError> {
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
    let mut resp = match hub {
        Some(service) => service.fetch_request(request).await.map_err(net)?,
        None => Fetch::Request(request).send().await.map_err(net)?,
    };
    let declared = resp.headers().get("content-length").ok().flatten();
    let mut body = CappedBody::new(req.max_body_bytes, declared.as_deref())?;
    match resp.stream() {
        // Chunk by chunk: past the cap the stream is dropped, which cancels it.
        Ok(mut chunks) => {
            while let Some(chunk) = chunks.next().await {
                body.push(&chunk.map_err(net)?)?;
            }
        }
        // No stream: an empty body, or one already in memory.
        Err(_) => body.push(&resp.bytes().await.map_err(net)?)?,
    }
    Ok(OutboundResponse {
        status: resp.status_code(),
        headers: response_headers(resp.headers()),
        body: body.into_bytes(),
    })
}

async fn with_timeout(
    req: OutboundRequest,
    hub: Option<&worker::Fetcher>,
) -> Result<OutboundResponse, FetchError> {
    let timeout = req.timeout_ms;
    within(timeout, send(req, hub))
        .await
        .unwrap_or(Err(FetchError::Timeout(timeout)))
}

impl Io for WorkerIo {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        with_timeout(req, None).await
    }

    async fn fetch_hub(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        with_timeout(req, self.hub.as_ref()).await
    }

    async fn kv_get(&self, ns: KvNamespace, key: &str) -> Option<String> {
        let kv = self.kv(ns)?;
        let detail = match within(KV_TIMEOUT_MS, kv.get(key).text()).await {
            Some(Ok(v)) => return v,
            Some(Err(e)) => e.to_string(),
            None => FetchError::Timeout(KV_TIMEOUT_MS).to_string(),
        };
        self.log(&log::line(
            "kv_error",
            &[("op", "get"), ("detail", &detail)],
        ));
        None
    }

    async fn kv_put(&self, ns: KvNamespace, key: &str, value: &str, ttl_secs: u64) {
        let Some(kv) = self.kv(ns) else { return };
        // KV refuses expirations under 60 s.
        let put = async {
            match kv.put(key, value) {
                Ok(b) => b.expiration_ttl(ttl_secs.max(60)).execute().await,
                Err(e) => Err(e),
            }
        };
        let detail = match within(KV_TIMEOUT_MS, put).await {
            Some(Ok(())) => return,
            Some(Err(e)) => e.to_string(),
            None => FetchError::Timeout(KV_TIMEOUT_MS).to_string(),
        };
        self.log(&log::line(
            "kv_error",
            &[("op", "put"), ("detail", &detail)],
        ));
    }

    async fn use_once(&self, key: &str, ttl_secs: u64) -> Result<Use, StoreUnavailable> {
        let asked = async {
            match self.store {
                OneTimeStore::DurableObject => self.use_once_in_object(key, ttl_secs).await,
                OneTimeStore::Kv => self.use_once_in_kv(key, ttl_secs).await,
            }
        };
        within(ONE_TIME_TIMEOUT_MS, asked).await.unwrap_or_else(|| {
            Err(StoreUnavailable(
                FetchError::Timeout(ONE_TIME_TIMEOUT_MS).to_string(),
            ))
        })
    }

    fn now(&self) -> UnixTime {
        UnixTime(worker::Date::now().as_millis() / 1000)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        // crypto.getRandomValues is always there in workerd; should it ever
        // fail, the buffer is not used as if it were random.
        if getrandom::getrandom(buf).is_err() {
            worker::console_error!("crypto.getRandomValues failed");
            std::process::abort();
        }
    }

    fn log(&self, line: &str) {
        worker::console_log!("{}", line);
    }
}

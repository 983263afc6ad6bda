//! The I/O of a provider's extra requests (`Provider::extra_requests`):
//! paged lists followed through `Link: <…>; rel="next"` on the first
//! page's origin only, at most `MAX_PAGES`; membership probes read by
//! status.

use super::provider::{Extra, ExtraKind};
use super::OAuthError;
use crate::http::OutboundResponse;
use crate::ports::Io;
use serde_json::Value;

pub const MAX_PAGES: usize = 10;

pub async fn fetch(io: &impl Io, extra: &Extra) -> Result<Value, OAuthError> {
    match extra.kind {
        ExtraKind::Pages => pages(io, extra).await,
        ExtraKind::Probe => probe(io, extra).await,
    }
}

fn failed(extra: &Extra, detail: impl std::fmt::Display) -> OAuthError {
    OAuthError::Userinfo(format!("{}: {detail}", extra.name))
}

async fn pages(io: &impl Io, extra: &Extra) -> Result<Value, OAuthError> {
    let first = url::Url::parse(&extra.request.url).map_err(|e| failed(extra, e))?;
    let mut items = Vec::new();
    let mut request = extra.request.clone();
    for _ in 0..MAX_PAGES {
        let resp = io
            .fetch(request.clone())
            .await
            .map_err(|e| failed(extra, e))?;
        if resp.status != 200 {
            return Err(failed(extra, format!("status {}", resp.status)));
        }
        match serde_json::from_slice::<Value>(&resp.body) {
            Ok(Value::Array(page)) => items.extend(page),
            _ => return Err(failed(extra, "not a JSON array")),
        }
        match next_link(&resp, &request.url) {
            Some(next) if next.origin() == first.origin() => request.url = next.to_string(),
            _ => break,
        }
    }
    Ok(Value::Array(items))
}

async fn probe(io: &impl Io, extra: &Extra) -> Result<Value, OAuthError> {
    let resp = io
        .fetch(extra.request.clone())
        .await
        .map_err(|e| failed(extra, e))?;
    match resp.status {
        200..=299 => Ok(serde_json::from_slice(&resp.body).unwrap_or(Value::Bool(true))),
        403 | 404 => Ok(Value::Null),
        s => Err(failed(extra, format!("status {s}"))),
    }
}

/// RFC 8288: the target of the `rel="next"` link, resolved against the
/// request's URL.
pub fn next_link(resp: &OutboundResponse, base: &str) -> Option<url::Url> {
    let base = url::Url::parse(base).ok()?;
    resp.headers.get_all("link").find_map(|header| {
        header.split(',').find_map(|link| {
            let (target, params) = link.trim().split_once('>')?;
            let target = target.trim().strip_prefix('<')?;
            let next = params.split(';').any(|p| {
                let (k, v) = p.trim().split_once('=').unwrap_or((p.trim(), ""));
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            next.then(|| base.join(target).ok()).flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;

    fn with_link(v: &str) -> OutboundResponse {
        OutboundResponse {
            status: 200,
            headers: Headers(vec![("Link".into(), v.into())]),
            body: b"[]".to_vec(),
        }
    }

    #[test]
    fn finds_the_next_link_among_others() {
        let r = with_link(
            r#"<https://api.example/user/orgs?page=1>; rel="prev", <https://api.example/user/orgs?page=3>; rel="next""#,
        );
        assert_eq!(
            next_link(&r, "https://api.example/user/orgs?page=2")
                .unwrap()
                .as_str(),
            "https://api.example/user/orgs?page=3"
        );
        let rel = with_link(r#"</user/orgs?page=2>; rel=next"#);
        assert_eq!(
            next_link(&rel, "https://api.example/user/orgs")
                .unwrap()
                .as_str(),
            "https://api.example/user/orgs?page=2"
        );
        assert!(next_link(&with_link(r#"<x>; rel="last""#), "https://a/").is_none());
        assert!(next_link(&with_link("garbage"), "https://a/").is_none());
    }
}

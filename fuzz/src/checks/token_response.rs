//! `oauth::token::parse` on arbitrary status and body: never panics; a
//! success is a 200 whose JSON object has a non-empty `access_token`, no
//! `error`, a Bearer (or absent) `token_type`, and the `id_token` it
//! returns; a failure is 401 (refused) or 502 (unusable), 502 for every
//! 5xx and 401 for every 4xx.
//!
//! Input: the status on the first line (200 when not a number), the body.

use hubgate::http::{Headers, OutboundResponse};
use hubgate::oauth::token::parse;

pub fn run(data: &[u8]) {
    let (status, body) = super::input::first_line(data);
    let status = super::input::status(&status);
    let resp = OutboundResponse {
        status,
        headers: Headers::new(),
        body: body.to_vec(),
    };
    match parse(&resp) {
        Ok(t) => {
            assert_eq!(status, 200, "a {status} was taken as tokens");
            // Lossy: serde_json skips ignored members without checking UTF-8.
            let Some(v) = super::discovery::as_value(&String::from_utf8_lossy(body)) else {
                return;
            };
            // RFC 6749 5.1: the response is a JSON object.
            if !super::finding("json-array", v.is_object(), || {
                format!("a token response that is no JSON object was accepted: {v}")
            }) {
                return;
            }
            let at = v["access_token"].as_str().expect("access_token");
            assert!(!at.is_empty());
            assert_eq!(t.access_token.expose(), at);
            assert!(
                v["error"].is_null(),
                "an error response was taken as tokens"
            );
            if let Some(tt) = v.get("token_type").filter(|t| !t.is_null()) {
                assert!(tt
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case("bearer")));
            }
            assert_eq!(t.id_token.as_deref(), v["id_token"].as_str());
        }
        Err(e) => {
            let s = e.status();
            assert!(s == 401 || s == 502, "status {s} for {e}");
            if status >= 500 {
                assert_eq!(s, 502);
            }
            if (400..500).contains(&status) {
                assert_eq!(s, 401);
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

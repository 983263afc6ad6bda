//! `oauth::userinfo::parse` on arbitrary status and body: never panics; a
//! success is a 200 whose body is exactly the returned JSON object and, when
//! the id_token named a subject, whose `sub` is that subject; failures are
//! 401 or 502.
//!
//! Input: the status on the first line, the id_token's `sub` on the second
//! (empty: no id_token), the body.

use hubgate::http::{Headers, OutboundResponse};
use hubgate::oauth::userinfo::parse;
use serde_json::Value;

pub fn run(data: &[u8]) {
    let (status, rest) = super::input::first_line(data);
    let (sub, body) = super::input::first_line(rest);
    let status = super::input::status(&status);
    let expected = (!sub.is_empty()).then_some(sub.as_str());
    let resp = OutboundResponse {
        status,
        headers: Headers::new(),
        body: body.to_vec(),
    };
    match parse(&resp, expected) {
        Ok(map) => {
            assert_eq!(status, 200);
            let v: Value = serde_json::from_slice(body).expect("accepted body is JSON");
            assert_eq!(v, Value::Object(map.clone()));
            if let Some(s) = expected {
                assert_eq!(map.get("sub").and_then(Value::as_str), Some(s), "sub");
            }
        }
        Err(e) => {
            let s = e.status();
            assert!(s == 401 || s == 502, "status {s} for {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}

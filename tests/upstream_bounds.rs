//! Every call out of the worker is bounded: an upstream body is read only up
//! to its cap (also when it comes without a length), and a proxied request
//! waits for the hub at most `HUB_TIMEOUT`. The edge applies these bounds;
//! the decisions are here. In workerd: tests/e2e/faults.test.mjs.

mod common;
use common::*;
use hubgate::bindings::{ConfigError, Reader};
use hubgate::config;
use hubgate::http::{CappedBody, FetchError, Method};
use hubgate::proxy::{ProxySettings, DEFAULT_HUB_TIMEOUT_SECS};

const CAP: usize = 1024;

#[test]
fn a_body_without_a_length_is_refused_at_the_chunk_that_passes_the_cap() {
    let mut body = CappedBody::new(CAP, None).unwrap();
    body.push(&[b'a'; 1000]).unwrap();
    assert_eq!(body.push(&[b'a'; 25]), Err(FetchError::TooLarge(CAP)));
}

#[test]
fn a_body_of_exactly_the_cap_is_read_whole() {
    let mut body = CappedBody::new(CAP, Some("1024")).unwrap();
    body.push(&[b'a'; 1000]).unwrap();
    body.push(&[b'a'; 24]).unwrap();
    body.push(&[]).unwrap();
    assert_eq!(body.into_bytes().len(), CAP);
}

#[test]
fn a_declared_length_over_the_cap_is_refused_before_reading() {
    assert_eq!(
        CappedBody::new(CAP, Some("1025")).err(),
        Some(FetchError::TooLarge(CAP))
    );
    assert_eq!(
        CappedBody::new(CAP, Some(" 99999999999999999999 ")).err(),
        None,
        "a length that does not parse is not trusted either way: the read is still capped"
    );
    let mut lying = CappedBody::new(CAP, Some("10")).unwrap();
    assert_eq!(
        lying.push(&[0; 2048]),
        Err(FetchError::TooLarge(CAP)),
        "a body longer than it said is still stopped at the cap"
    );
}

fn proxy_settings(extra: &[(&str, &str)]) -> (Option<ProxySettings>, Vec<ConfigError>) {
    let env = bindings(extra);
    let mut r = Reader::new(&env);
    let s = ProxySettings::parse(&mut r);
    (s, r.errors)
}

#[test]
fn a_proxied_request_waits_for_the_hub_at_most_hub_timeout() {
    let (a, io) = (app(&[("HUB_TIMEOUT", "3")]), TestIo::new());
    let plan = proxied(
        &a,
        request(
            Method::Get,
            "/hub/api/user",
            &[("Authorization", "token abc")],
        ),
        &io,
    );
    assert_eq!(plan.timeout_ms, 3_000);
}

#[test]
fn hub_timeout_defaults_to_what_cloudflare_gives_an_origin() {
    let (s, errors) = proxy_settings(&[]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.unwrap().timeout_ms, 100_000);
    assert_eq!(DEFAULT_HUB_TIMEOUT_SECS, 100);
    let plan = proxied(
        &app(&[]),
        request(
            Method::Get,
            "/user/alice/lab",
            &[("Authorization", "token abc")],
        ),
        &TestIo::new(),
    );
    assert_eq!(plan.timeout_ms, 100_000);
}

#[test]
fn hub_timeout_out_of_range_is_a_configuration_error() {
    for bad in ["0", "601", "-1", "ten", "1.5"] {
        let env = bindings(&[("HUB_TIMEOUT", bad)]);
        let errors = config::parse(&env).err().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e.to_string().contains("HUB_TIMEOUT")),
            "HUB_TIMEOUT={bad}: {errors:?}"
        );
    }
    for good in ["1", "600"] {
        let (s, errors) = proxy_settings(&[("HUB_TIMEOUT", good)]);
        assert!(errors.is_empty(), "HUB_TIMEOUT={good}: {errors:?}");
        assert_eq!(
            u64::from(s.unwrap().timeout_ms),
            good.parse::<u64>().unwrap() * 1000
        );
    }
}

//! `lti::form_pairs` and `lti::login::Initiation::parse` on arbitrary
//! bodies: never panic; the pairs round-trip through form encoding; an
//! initiation takes exactly the first value of each parameter, refuses a
//! missing or empty required one with 400, and the launch's state is the
//! first non-empty `state`. An `lti_storage_target` is accepted only as a
//! frame name (it is written into a page's data), and the initiation's
//! new-window query gives back the same initiation.
//!
//! Input: an `application/x-www-form-urlencoded` body (or query).

use hubgate::http::{Headers, IncomingRequest, Method};
use hubgate::lti::login::Initiation;
use hubgate::lti::storage::StorageTarget;
use hubgate::lti::{form_pairs, LtiError};

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub fn run(data: &[u8]) {
    let pairs = form_pairs(data);
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    assert_eq!(
        form_pairs(encoded.as_bytes()),
        pairs,
        "form pairs round trip"
    );

    if let Some(t) = first(&pairs, "lti_storage_target") {
        let frame_name = t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        match StorageTarget::parse(t) {
            Ok(_) => assert!(frame_name, "accepted {t:?}"),
            Err(e) => {
                assert!(!frame_name, "refused {t:?}");
                assert_eq!(e.status(), 400);
            }
        }
    }

    match Initiation::parse(&pairs) {
        Ok(i) => {
            let again = Initiation::parse(&form_pairs(i.query().as_bytes())).expect("query parses");
            assert_eq!(again.query(), i.query(), "new-window query round trip");
            assert_eq!(again.iss, i.iss);
            assert_eq!(again.login_hint, i.login_hint);
            assert_eq!(Some(i.iss.as_str()), first(&pairs, "iss"));
            assert_eq!(Some(i.login_hint.as_str()), first(&pairs, "login_hint"));
            assert_eq!(
                Some(i.target_link_uri.as_str()),
                first(&pairs, "target_link_uri")
            );
            assert_eq!(i.client_id.as_deref(), first(&pairs, "client_id"));
            assert_eq!(
                i.lti_message_hint.as_deref(),
                first(&pairs, "lti_message_hint")
            );
            assert_eq!(
                i.lti_deployment_id.as_deref(),
                first(&pairs, "lti_deployment_id")
            );
        }
        Err(e) => {
            assert_eq!(e.status(), 400);
            let LtiError::MissingParameter(n) = e else {
                panic!("unexpected error {e:?}");
            };
            assert!(["iss", "login_hint", "target_link_uri"].contains(&n));
            assert!(first(&pairs, n).is_none(), "{n} was there");
        }
    }

    let req = IncomingRequest {
        method: Method::Post,
        url: url::Url::parse("https://hub.example/hub/lti13/oauth_callback").expect("url"),
        headers: Headers::new(),
        body: Some(data.to_vec()),
    };
    assert_eq!(
        hubgate::lti::routes::launch_state(&req).as_deref(),
        first(&pairs, "state")
    );
}

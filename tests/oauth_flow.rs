//! The OAuth/OIDC login end to end through the core, with a scripted IdP.

mod common;
use common::*;
use hubgate::http::Method;
use std::rc::Rc;

fn good_idp(io: &TestIo, user: &'static str) -> Rc<Provider> {
    let p = Rc::new(Provider::new("k1"));
    let signer = p.clone();
    serve_idp(io, vec![p.jwk()], move |nonce| {
        signer.sign(standard_claims(nonce, user), T0, T0 + 300)
    });
    p
}

#[test]
fn authorize_redirect_carries_pkce_s256_state_nonce_and_scopes() {
    let (app, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let r = respond(&app, get("/hub/oauth_login?next=/user/alice/lab"), &io);
    assert_eq!(r.status, 302);
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&format!("{ISSUER}/auth?")));
    assert_eq!(query(loc, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query(loc, "code_challenge").unwrap().len(), 43);
    assert_eq!(query(loc, "scope").as_deref(), Some("openid profile email"));
    assert_eq!(
        query(loc, "redirect_uri").as_deref(),
        Some("https://hub.example.edu/hub/oauth_callback")
    );
    assert!(query(loc, "nonce").is_some() && query(loc, "state").is_some());
    let cookie = r.headers.get("set-cookie").unwrap();
    assert!(
        cookie.starts_with("__Host-hubgate-oauth-")
            && cookie.contains("HttpOnly")
            && cookie.contains("Secure")
    );
}

#[test]
fn full_login_sets_session_and_goes_through_hub_login_to_next() {
    let (app, io) = (app(&[]), TestIo::new());
    good_idp(&io, "Alice");
    let r = login_round_trip(&app, &io, "/user/alice/lab?x=1", |cb| cb);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.location(), Some("/user/alice/lab?x=1"));
    let cookies: Vec<&str> = r.headers.get_all("set-cookie").collect();
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("__Host-hubgate=") && c.contains("SameSite=Lax")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("jupyterhub-hub-login=;") && c.contains("Path=/hub/")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("__Host-hubgate-oauth-") && c.contains("Max-Age=0")));
    // The worker logged in at the hub itself, with the lower-cased
    // username and userinfo's groups; the hub's cookies came back.
    let plan = last_hub_login(&io);
    assert_eq!(
        plan.url,
        format!("{HUB}/hub/login?next=%2Fuser%2Falice%2Flab%3Fx%3D1")
    );
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("jupyterhub-hub-login=new")));
    assert_eq!(plan.headers.get("x-forwarded-user"), Some("alice"));
    assert_eq!(
        plan.headers.get("x-forwarded-email"),
        Some("Alice@example.edu")
    );
    assert_eq!(plan.headers.get("x-forwarded-groups"), Some("students"));
    assert_eq!(plan.headers.get("x-forwarded-admin"), Some("false"));
}

#[test]
fn admin_user_gets_admin_and_disallowed_user_gets_403() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "carol");
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, 302);
    let plan = last_hub_login(&io);
    assert_eq!(plan.headers.get("x-forwarded-admin"), Some("true"));

    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "mallory");
    assert_eq!(login_round_trip(&a, &io, "/hub/", |cb| cb).status, 403);
}

#[test]
fn group_rules_allow_by_allowed_groups() {
    let (a, io) = (
        app(&[("ALLOWED_USERS", ""), ("ALLOWED_GROUPS", "students")]),
        TestIo::new(),
    );
    good_idp(&io, "dan");
    assert_eq!(login_round_trip(&a, &io, "/hub/", |cb| cb).status, 302);
}

#[test]
fn rejects_callback_without_state() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let r = login_round_trip(&a, &io, "/hub/", |cb| {
        cb.split("&state=").next().unwrap().to_string()
    });
    assert_eq!(r.status, 400);
    assert_eq!(
        io.fetch_count(&format!("{ISSUER}/token")),
        0,
        "code must not be redeemed"
    );
}

#[test]
fn rejects_callback_with_mismatched_state_before_redeeming_the_code() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    // Same 16-char prefix (same cookie name), different state.
    let r = login_round_trip(&a, &io, "/hub/", |cb| format!("{cb}X"));
    assert_eq!(r.status, 400);
    assert!(io.logged("state does not match"));
    assert_eq!(io.fetch_count(&format!("{ISSUER}/token")), 0);
}

#[test]
fn rejects_replayed_state_even_with_the_flow_cookie_kept() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let start = respond(&a, get("/hub/oauth_login"), &io);
    let loc = start.location().unwrap().to_string();
    let cb = format!(
        "/hub/oauth_callback?code={}&state={}",
        urlenc(&format!("code:{}", query(&loc, "nonce").unwrap())),
        urlenc(&query(&loc, "state").unwrap())
    );
    assert_eq!(respond(&a, with_cookies(get(&cb), &start), &io).status, 302);
    let again = respond(&a, with_cookies(get(&cb), &start), &io);
    assert_eq!(again.status, 400);
    assert!(io.logged("state was already used"));
}

#[test]
fn rejects_tampered_flow_cookie() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let mut start = respond(&a, get("/hub/oauth_login"), &io);
    let c = start
        .headers
        .0
        .iter_mut()
        .find(|(k, _)| k == "Set-Cookie")
        .unwrap();
    c.1 = c.1.replacen(".", ".x", 1);
    let loc = start.location().unwrap().to_string();
    let cb = format!(
        "/hub/oauth_callback?code=c&state={}",
        urlenc(&query(&loc, "state").unwrap())
    );
    assert_eq!(respond(&a, with_cookies(get(&cb), &start), &io).status, 400);
}

#[test]
fn flow_cookie_expires_after_ten_minutes() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let start = respond(&a, get("/hub/oauth_login"), &io);
    io.advance(601);
    let loc = start.location().unwrap().to_string();
    let cb = format!(
        "/hub/oauth_callback?code=c&state={}",
        urlenc(&query(&loc, "state").unwrap())
    );
    assert_eq!(respond(&a, with_cookies(get(&cb), &start), &io).status, 400);
}

#[test]
fn parallel_tabs_each_keep_their_own_flow() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let s1 = respond(&a, get("/hub/oauth_login?next=/one"), &io);
    let s2 = respond(&a, get("/hub/oauth_login?next=/two"), &io);
    let mut both = get("/");
    let c1 = s1
        .headers
        .get("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let c2 = s2
        .headers
        .get("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(c1.split('=').next(), c2.split('=').next());
    both.headers.push("Cookie", format!("{c1}; {c2}"));
    for (s, next) in [(&s1, "/one"), (&s2, "/two")] {
        let loc = s.location().unwrap().to_string();
        let cb = format!(
            "/hub/oauth_callback?code={}&state={}",
            urlenc(&format!("code:{}", query(&loc, "nonce").unwrap())),
            urlenc(&query(&loc, "state").unwrap())
        );
        let mut req = get(&cb);
        req.headers = both.headers.clone();
        let r = respond(&a, req, &io);
        assert_eq!(r.location(), Some(next));
    }
}

#[test]
fn refuses_open_redirect_next_values() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    for bad in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\t/evil.example",
    ] {
        let r = respond(
            &a,
            get(&format!("/hub/oauth_login?next={}", urlenc(bad))),
            &io,
        );
        assert_eq!(r.status, 400, "{bad:?}");
    }
}

fn idp_with_claims(
    io: &TestIo,
    claims: impl Fn(&str) -> serde_json::Value + 'static,
    iat: u64,
    exp: u64,
) {
    let p = Rc::new(Provider::new("k1"));
    let signer = p.clone();
    serve_idp(io, vec![p.jwk()], move |nonce| {
        signer.sign(claims(nonce), iat, exp)
    });
}

fn assert_callback_status(
    extra: &[(&str, &str)],
    setup: impl FnOnce(&TestIo),
    status: u16,
    log_needle: &str,
) {
    let (a, io) = (app(extra), TestIo::new());
    setup(&io);
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, status, "{}", io.logs.borrow().join("\n"));
    assert!(
        io.logged(log_needle),
        "log lacks {log_needle:?}: {}",
        io.logs.borrow().join("\n")
    );
}

#[test]
fn rejects_id_token_for_another_audience() {
    assert_callback_status(
        &[],
        |io| {
            idp_with_claims(
                io,
                |n| {
                    let mut c = standard_claims(n, "alice");
                    c["aud"] = "other".into();
                    c
                },
                T0,
                T0 + 300,
            )
        },
        401,
        "aud does not contain",
    );
}

#[test]
fn rejects_id_token_from_another_issuer() {
    assert_callback_status(
        &[],
        |io| {
            idp_with_claims(
                io,
                |n| {
                    let mut c = standard_claims(n, "alice");
                    c["iss"] = "https://evil.example".into();
                    c
                },
                T0,
                T0 + 300,
            )
        },
        401,
        "is not the expected issuer",
    );
}

#[test]
fn rejects_id_token_with_wrong_nonce() {
    assert_callback_status(
        &[],
        |io| {
            idp_with_claims(
                io,
                |_| standard_claims("not-the-nonce", "alice"),
                T0,
                T0 + 300,
            )
        },
        401,
        "nonce does not match",
    );
}

#[test]
fn rejects_expired_id_token() {
    assert_callback_status(
        &[],
        |io| idp_with_claims(io, |n| standard_claims(n, "alice"), T0 - 1000, T0 - 61),
        401,
        "expired",
    );
}

#[test]
fn rejects_id_token_issued_in_the_future() {
    assert_callback_status(
        &[],
        |io| idp_with_claims(io, |n| standard_claims(n, "alice"), T0 + 3600, T0 + 7200),
        401,
        "in the future",
    );
}

#[test]
fn rejects_several_audiences_without_azp() {
    assert_callback_status(
        &[],
        |io| {
            idp_with_claims(
                io,
                |n| {
                    let mut c = standard_claims(n, "alice");
                    c["aud"] = serde_json::json!(["hubgate", "other"]);
                    c
                },
                T0,
                T0 + 300,
            )
        },
        401,
        "no azp",
    );
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn rejects_alg_none_id_token() {
    assert_callback_status(
        &[],
        |io| {
            let p = Provider::new("k1");
            serve_idp(io, vec![p.jwk()], |n| {
                format!(
                    "{}.{}.",
                    b64(r#"{"alg":"none","kid":"k1"}"#),
                    b64(&standard_claims(n, "alice").to_string())
                )
            });
        },
        401,
        "algorithm \\\"none\\\" is not accepted",
    );
}

#[test]
fn rejects_hs256_signed_with_the_public_key() {
    assert_callback_status(
        &[],
        |io| {
            let p = Provider::new("k1");
            let public = p.jwk().to_string();
            serve_idp(io, vec![p.jwk()], move |n| {
                use jwt_compact::{
                    alg::{Hs256, Hs256Key},
                    AlgorithmExt, Claims, Header,
                };
                let mut c = Claims::new(standard_claims(n, "alice"));
                c.issued_at = Some(hubgate::jose::hs256::to_datetime(hubgate::http::UnixTime(
                    T0,
                )));
                c.expiration = Some(hubgate::jose::hs256::to_datetime(hubgate::http::UnixTime(
                    T0 + 300,
                )));
                Hs256
                    .token(
                        &Header::empty().with_key_id("k1"),
                        &c,
                        &Hs256Key::new(public.as_bytes()),
                    )
                    .unwrap()
            });
        },
        401,
        "HS256",
    );
}

#[test]
fn rejects_id_token_signed_by_an_unknown_kid_after_one_refetch() {
    let (a, io) = (app(&[]), TestIo::new());
    let known = Provider::new("k1");
    let stranger = Rc::new(Provider::new("k-unknown"));
    let s = stranger.clone();
    serve_idp(&io, vec![known.jwk()], move |n| {
        s.sign(standard_claims(n, "alice"), T0, T0 + 300)
    });
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, 401);
    assert_eq!(io.fetch_count(&format!("{ISSUER}/jwks")), 1, "first fill");
    // The fill does not start the cooldown: the next unknown kid refetches once...
    io.advance(2);
    assert_eq!(login_round_trip(&a, &io, "/hub/", |cb| cb).status, 401);
    assert_eq!(io.fetch_count(&format!("{ISSUER}/jwks")), 2);
    // ...and then not again within 30 s.
    for _ in 0..5 {
        io.advance(5);
        assert_eq!(login_round_trip(&a, &io, "/hub/", |cb| cb).status, 401);
    }
    assert_eq!(
        io.fetch_count(&format!("{ISSUER}/jwks")),
        2,
        "cooldown: no refetch within 30 s"
    );
    io.advance(10);
    assert_eq!(login_round_trip(&a, &io, "/hub/", |cb| cb).status, 401);
    assert_eq!(
        io.fetch_count(&format!("{ISSUER}/jwks")),
        3,
        "after 30 s one more refetch"
    );
}

#[test]
fn rejects_token_response_with_error_even_on_200() {
    assert_callback_status(
        &[],
        |io| {
            good_idp(io, "alice");
            io.route(&format!("{ISSUER}/token"), |_| {
                json_response(
                    200,
                    serde_json::json!({"error": "invalid_grant", "access_token": "x"}),
                )
            });
        },
        401,
        "invalid_grant",
    );
}

#[test]
fn token_endpoint_down_is_502() {
    assert_callback_status(
        &[],
        |io| {
            good_idp(io, "alice");
            io.route(&format!("{ISSUER}/token"), |_| {
                Err(hubgate::http::FetchError::Timeout(10_000))
            });
        },
        502,
        "timed out",
    );
}

#[test]
fn rejects_userinfo_for_another_subject() {
    assert_callback_status(
        &[],
        |io| {
            good_idp(io, "alice");
            io.route(&format!("{ISSUER}/me"), |_| {
                json_response(200, serde_json::json!({"sub": "someone-else"}))
            });
        },
        401,
        "userinfo sub",
    );
}

#[test]
fn provider_error_access_denied_is_403() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let r = login_round_trip(&a, &io, "/hub/", |cb| format!("{cb}&error=access_denied"));
    assert_eq!(r.status, 403);
}

#[test]
fn rejects_mix_up_iss_parameter() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    let r = login_round_trip(&a, &io, "/hub/", |cb| {
        format!("{cb}&iss={}", urlenc("https://evil.example"))
    });
    assert_eq!(r.status, 401);
    assert_eq!(io.fetch_count(&format!("{ISSUER}/token")), 0);
}

#[test]
fn discovery_with_another_issuer_is_502() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    io.route(&format!("{ISSUER}/.well-known"), |_| {
        json_response(200, serde_json::json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a", "token_endpoint": "https://evil.example/t"}))
    });
    assert_eq!(respond(&a, get("/hub/oauth_login"), &io).status, 502);
}

#[test]
fn discovery_and_keys_are_fetched_once_across_many_logins() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    for _ in 0..50 {
        assert_eq!(login_round_trip(&a, &io, "/hub/", |cb| cb).status, 302);
        io.advance(5);
    }
    assert_eq!(io.fetch_count(&format!("{ISSUER}/.well-known")), 1);
    assert_eq!(io.fetch_count(&format!("{ISSUER}/jwks")), 1);
}

#[test]
fn a_new_isolate_reads_keys_and_discovery_from_kv() {
    let io = TestIo::new();
    good_idp(&io, "alice");
    assert_eq!(
        login_round_trip(&app(&[]), &io, "/hub/", |cb| cb).status,
        302
    );
    // A fresh App is a fresh isolate: same KV, empty memory.
    assert_eq!(
        login_round_trip(&app(&[]), &io, "/hub/", |cb| cb).status,
        302
    );
    assert_eq!(io.fetch_count(&format!("{ISSUER}/jwks")), 1);
    assert_eq!(io.fetch_count(&format!("{ISSUER}/.well-known")), 1);
}

#[test]
fn plain_oauth2_uses_userdata_url_and_username_claim() {
    let extra = [
        ("OIDC_ISSUER", ""),
        ("OAUTH2_AUTHORIZE_URL", "https://gh.example/authorize"),
        ("OAUTH2_TOKEN_URL", "https://gh.example/token"),
        ("OAUTH2_USERDATA_URL", "https://gh.example/user"),
        ("OAUTH2_USERNAME_KEY", "login"),
        ("OAUTH_BASIC_AUTH", "false"),
    ];
    let (a, io) = (app(&extra), TestIo::new());
    io.route("https://gh.example/token", |req| {
        let body = String::from_utf8(req.body.clone().unwrap()).unwrap();
        assert!(body.contains("client_secret=client-secret") && body.contains("code_verifier="));
        assert!(req.headers.get("authorization").is_none());
        json_response(
            200,
            serde_json::json!({"access_token": "gho", "token_type": "bearer"}),
        )
    });
    io.route("https://gh.example/user", |req| {
        assert_eq!(req.headers.get("authorization"), Some("Bearer gho"));
        json_response(200, serde_json::json!({"login": "Bob", "id": 7}))
    });
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, 302, "{}", io.logs.borrow().join("\n"));
    assert_eq!(
        last_hub_login(&io).headers.get("x-forwarded-user"),
        Some("bob")
    );
}

#[test]
fn missing_username_claim_is_400_and_names_the_claims_present() {
    assert_callback_status(
        &[("OAUTH2_USERNAME_KEY", "upn")],
        |io| {
            good_idp(io, "alice");
        },
        400,
        "no username in claim",
    );
}

#[test]
fn basic_auth_is_the_default_token_endpoint_authentication() {
    let (a, io) = (app(&[]), TestIo::new());
    good_idp(&io, "alice");
    login_round_trip(&a, &io, "/hub/", |cb| cb);
    let token_req = io
        .fetched
        .borrow()
        .iter()
        .find(|r| r.url.ends_with("/token"))
        .cloned()
        .unwrap();
    assert_eq!(token_req.method, Method::Post);
    assert!(token_req
        .headers
        .get("authorization")
        .unwrap()
        .starts_with("Basic "));
    let body = String::from_utf8(token_req.body.unwrap()).unwrap();
    assert!(!body.contains("client_secret"));
}

fn login_with_userinfo(
    userinfo: serde_json::Value,
) -> (hubgate::app::App, TestIo, hubgate::http::Response) {
    let (a, io) = (app(&[("ALLOW_ALL", "true")]), TestIo::new());
    good_idp(&io, "alice");
    io.route(&format!("{ISSUER}/me"), move |_| {
        json_response(200, userinfo.clone())
    });
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    (a, io, r)
}

#[test]
fn many_groups_keep_the_session_cookie_under_4_kb_and_still_reach_the_hub() {
    let groups: Vec<String> = (0..150)
        .map(|i| format!("course-{i:03}-a-rather-long-group-name"))
        .collect();
    let (_a, io, r) = login_with_userinfo(serde_json::json!({"sub": "u-1", "groups": groups}));
    assert_eq!(r.status, 302);
    let session = r
        .headers
        .get_all("set-cookie")
        .find(|c| c.starts_with("__Host-hubgate=") && !c.contains("Max-Age=0"))
        .unwrap();
    assert!(
        session.len() < 4096,
        "session cookie is {} bytes",
        session.len()
    );
    let plan = last_hub_login(&io);
    assert_eq!(
        plan.headers
            .get("x-forwarded-groups")
            .unwrap()
            .split(',')
            .count(),
        150
    );
    // A new isolate reads the groups from KV (the hub's login again).
    let fresh = app(&[("ALLOW_ALL", "true")]);
    let r2 = respond(
        &fresh,
        with_cookies(get("/hub/login?next=%2Fhub%2F"), &r),
        &io,
    );
    assert_eq!(r2.status, 302);
    let plan = last_hub_login(&io);
    assert_eq!(
        plan.headers
            .get("x-forwarded-groups")
            .unwrap()
            .split(',')
            .count(),
        150
    );
}

#[test]
fn session_whose_stored_groups_are_gone_is_no_session() {
    let groups: Vec<String> = (0..150)
        .map(|i| format!("course-{i:03}-a-rather-long-group-name"))
        .collect();
    let (_, io, r) = login_with_userinfo(serde_json::json!({"sub": "u-1", "groups": groups}));
    io.kv
        .borrow_mut()
        .retain(|(_, k), _| !k.starts_with("session:"));
    let fresh = app(&[("ALLOW_ALL", "true")]);
    let resp = respond(
        &fresh,
        with_cookies(
            hubgate::http::IncomingRequest {
                headers: hubgate::http::Headers(vec![("Accept".into(), "application/json".into())]),
                ..get("/hub/api")
            },
            &r,
        ),
        &io,
    );
    assert_eq!(resp.status, 401);
}

#[test]
fn rejects_username_with_control_characters() {
    let (a, io) = (app(&[("ALLOW_ALL", "true")]), TestIo::new());
    good_idp(&io, "alice\r\nx-forwarded-admin: true");
    let r = login_round_trip(&a, &io, "/hub/", |cb| cb);
    assert_eq!(r.status, 400);
    assert!(r
        .headers
        .get_all("set-cookie")
        .all(|c| !c.starts_with("__Host-hubgate=")));
}

#[test]
fn drops_email_and_groups_with_control_characters() {
    let (_a, io, r) = login_with_userinfo(
        serde_json::json!({"sub": "u-1", "email": "a@b\r\nx: y", "groups": ["ok", "bad\nname", "a,b"]}),
    );
    assert_eq!(r.status, 302);
    let plan = last_hub_login(&io);
    assert_eq!(plan.headers.get("x-forwarded-email"), None);
    assert_eq!(plan.headers.get("x-forwarded-groups"), Some("ok"));
    assert!(io.logged("claim_dropped"));
}

#[test]
fn a_new_login_expires_the_previous_users_single_user_server_cookie() {
    let (a, io) = (app(&[]), TestIo::new());
    let p = good_idp(&io, "alice");
    let first = login_round_trip(&a, &io, "/hub/", |cb| cb);
    let signer = p.clone();
    serve_idp(&io, vec![p.jwk()], move |n| {
        signer.sign(standard_claims(n, "bob"), T0, T0 + 300)
    });
    // bob logs in in the same browser: the callback carries alice's session cookie.
    let start = respond(&a, get("/hub/oauth_login"), &io);
    let loc = start.location().unwrap().to_string();
    let cb = format!(
        "/hub/oauth_callback?code={}&state={}",
        urlenc(&format!("code:{}", query(&loc, "nonce").unwrap())),
        urlenc(&query(&loc, "state").unwrap())
    );
    let mut req = with_cookies(get(&cb), &start);
    let alice_session = first
        .headers
        .get_all("set-cookie")
        .find(|c| c.starts_with("__Host-hubgate=") && !c.contains("Max-Age=0"))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    req.headers.push("Cookie", alice_session);
    let r = respond(&a, req, &io);
    assert_eq!(r.status, 302);
    let expiries: Vec<&str> = r.headers.get_all("set-cookie").collect();
    assert!(
        expiries
            .iter()
            .any(|c| c.starts_with("jupyterhub-user-alice=;")
                && c.contains("Path=/user/alice/")
                && c.contains("Max-Age=0")),
        "{expiries:#?}"
    );
    assert!(expiries
        .iter()
        .any(|c| c.starts_with("jupyterhub-user-bob=;")));
}

//! `OAUTH_PROVIDERS`: several identity providers on one hub, each on its
//! own paths with its own mix-up defence, and the login page listing them.

mod common;
use common::*;
use hubgate::app::App;
use hubgate::http::{Method, Response};
use serde_json::json;

const PLAIN: &str = "https://oauth.partner.example";

fn providers() -> String {
    json!([{
        "name": "partner",
        "OAUTH_CLIENT_ID": "partner-client",
        "OAUTH_CLIENT_SECRET_BINDING": "PARTNER_SECRET",
        "OAUTH2_AUTHORIZE_URL": format!("{PLAIN}/authorize"),
        "OAUTH2_TOKEN_URL": format!("{PLAIN}/token"),
        "OAUTH2_USERDATA_URL": format!("{PLAIN}/me"),
        "OAUTH2_USERNAME_KEY": "login",
        "LOGIN_SERVICE": "Partner University",
    }])
    .to_string()
}

fn two(more: &[(&'static str, &'static str)]) -> App {
    let p: &'static str = Box::leak(providers().into_boxed_str());
    let mut all = vec![
        ("OAUTH_PROVIDERS", p),
        ("PARTNER_SECRET", "partner-secret"),
        ("LOGIN_SERVICE", "Home IdP"),
        ("ALLOWED_USERS", "alice,partner:bob"),
    ];
    all.extend_from_slice(more);
    app(&all)
}

fn partner_idp(io: &TestIo) {
    io.route(&format!("{PLAIN}/token"), |_| {
        json_response(200, json!({"access_token": "pt", "token_type": "Bearer"}))
    });
    io.route(&format!("{PLAIN}/me"), |_| {
        json_response(200, json!({"login": "bob"}))
    });
}

fn start(app: &App, io: &TestIo, path: &str) -> (Response, String) {
    let r = respond(app, get(path), io);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let state = query(r.location().unwrap(), "state").unwrap();
    (r, state)
}

#[test]
fn the_login_page_lists_every_provider_with_its_login_service() {
    let (a, io) = (two(&[]), TestIo::new());
    let page = respond(&a, get("/hub/login?next=/user/bob/lab"), &io);
    assert_eq!(page.status, 200);
    let body = String::from_utf8(page.body).unwrap();
    assert!(body.contains("Sign in with Home IdP"), "{body}");
    assert!(body.contains("Sign in with Partner University"));
    assert!(
        body.contains("href=\"/hub/oauth_login?next=%2Fuser%2Fbob%2Flab\""),
        "{body}"
    );
    assert!(
        body.contains("href=\"/hub/oauth_login/partner?next=%2Fuser%2Fbob%2Flab\""),
        "{body}"
    );
    // AUTO_LOGIN cannot choose between two.
    let auto = two(&[("AUTO_LOGIN", "true")]);
    assert_eq!(respond(&auto, get("/hub/login"), &io).status, 200);
}

#[test]
fn a_named_provider_has_its_own_authorize_redirect_and_callback() {
    let (a, io) = (two(&[]), TestIo::new());
    partner_idp(&io);
    let (r, state) = start(&a, &io, "/hub/oauth_login/partner");
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&format!("{PLAIN}/authorize?")));
    assert_eq!(query(loc, "client_id").as_deref(), Some("partner-client"));
    assert_eq!(
        query(loc, "redirect_uri"),
        Some(format!("{ORIGIN}/hub/oauth_callback/partner"))
    );
    let cb = format!(
        "/hub/oauth_callback/partner?code=c&state={}",
        urlenc(&state)
    );
    let done = respond(&a, with_cookies(get(&cb), &r), &io);
    assert_eq!(done.status, 302, "{}", String::from_utf8_lossy(&done.body));
    let token = io
        .fetched
        .borrow()
        .iter()
        .find(|f| f.url.ends_with("/token"))
        .cloned()
        .unwrap();
    assert!(token
        .headers
        .get("authorization")
        .is_some_and(|h| h.starts_with("Basic ")));
    // A second provider's users carry its name (USERNAME_NAMESPACE).
    assert!(last_hub_login(&io)
        .headers
        .0
        .iter()
        .any(|(_, v)| v == "partner:bob"));
}

/// The partner's IdP says its user is "alice", as the home IdP's alice.
fn partner_says_alice(a: &App, io: &TestIo) -> Response {
    io.route(&format!("{PLAIN}/token"), |_| {
        json_response(200, json!({"access_token": "pt", "token_type": "Bearer"}))
    });
    io.route(&format!("{PLAIN}/me"), |_| {
        json_response(200, json!({"login": "alice"}))
    });
    let (r, state) = start(a, io, "/hub/oauth_login/partner");
    let cb = format!(
        "/hub/oauth_callback/partner?code=c&state={}",
        urlenc(&state)
    );
    respond(a, with_cookies(get(&cb), &r), io)
}

#[test]
fn a_second_provider_cannot_assert_a_user_of_the_first() {
    let (a, io) = (two(&[]), TestIo::new());
    assert_eq!(
        partner_says_alice(&a, &io).status,
        403,
        "partner:alice is in no allow list"
    );
    assert!(io.hub_calls.borrow().is_empty(), "nothing reached the hub");
    // Everyone let in: the hub still sees the partner's alice apart from alice.
    let (a, io) = (two(&[("ALLOW_ALL", "true")]), TestIo::new());
    assert_eq!(partner_says_alice(&a, &io).status, 302);
    let user = last_hub_login(&io)
        .headers
        .get("x-forwarded-user")
        .map(str::to_string);
    assert_eq!(user.as_deref(), Some("partner:alice"));
}

#[test]
fn a_login_started_at_one_provider_cannot_finish_at_anothers_callback() {
    let (a, io) = (two(&[]), TestIo::new());
    partner_idp(&io);
    good_idp_for(&io, "alice");
    // Started at the partner, delivered to the home provider's callback.
    let (r, state) = start(&a, &io, "/hub/oauth_login/partner");
    let cb = format!("/hub/oauth_callback?code=c&state={}", urlenc(&state));
    assert_eq!(respond(&a, with_cookies(get(&cb), &r), &io).status, 400);
    // Started at home, delivered to the partner's callback.
    let (r, state) = start(&a, &io, "/hub/oauth_login");
    let cb = format!(
        "/hub/oauth_callback/partner?code=c&state={}",
        urlenc(&state)
    );
    assert_eq!(respond(&a, with_cookies(get(&cb), &r), &io).status, 400);
    assert!(io.hub_calls.borrow().is_empty(), "nothing reached the hub");
    assert_eq!(
        io.fetch_count(&format!("{PLAIN}/token")),
        0,
        "no code was redeemed"
    );
    assert!(io.logged("came back to"));
}

#[test]
fn an_unknown_provider_name_is_404() {
    let (a, io) = (two(&[]), TestIo::new());
    assert_eq!(respond(&a, get("/hub/oauth_login/nobody"), &io).status, 404);
}

#[test]
fn provider_entries_are_checked_at_configuration() {
    let cases = [
        json!([{"name": "Bad Name", "OAUTH_CLIENT_ID": "x"}]),
        json!([{"name": "a", "OAUTH_CLIENT_ID": "x", "OAUTH_CLIENT_SECRET": "inline"}]),
        json!([{"name": "a", "OAUTH_CLIENT_ID": "x", "OAUTH_CLIENT_SECRET_BINDING": "UNSET"}]),
        json!([{"name": "a", "OAUTH_PROVIDER": "github", "OAUTH_CLIENT_ID": "x", "OAUTH_CLIENT_SECRET_BINDING": "PARTNER_SECRET"},
               {"name": "a", "OAUTH_PROVIDER": "github", "OAUTH_CLIENT_ID": "y", "OAUTH_CLIENT_SECRET_BINDING": "PARTNER_SECRET"}]),
        json!({"name": "a"}),
        json!([{"name": "a", "OAUTH_CLIENT_SECRET_BINDING": "PARTNER_SECRET"}]),
    ];
    for c in cases {
        let text = c.to_string();
        let env = bindings(&[("OAUTH_PROVIDERS", &text), ("PARTNER_SECRET", "s")]);
        let err = App::from_bindings(&env).err();
        assert!(err.is_some(), "{text} was accepted");
        assert!(
            err.unwrap()
                .iter()
                .any(|e| e.to_string().contains("OAUTH_PROVIDERS")),
            "{text}"
        );
    }
}

#[test]
fn a_session_from_a_named_provider_logs_out_and_refreshes_with_that_provider() {
    let p: &'static str = Box::leak(
        json!([{
            "name": "uni",
            "OIDC_ISSUER": "https://idp.uni.example",
            "OAUTH_CLIENT_ID": "hubgate",
            "OAUTH_CLIENT_SECRET_BINDING": "PARTNER_SECRET",
            "OAUTH2_USERNAME_KEY": "preferred_username",
        }])
        .to_string()
        .into_boxed_str(),
    );
    let a = app(&[
        ("OAUTH_PROVIDERS", p),
        ("PARTNER_SECRET", "s"),
        ("OIDC_ISSUER", ""),
        ("OAUTH_CLIENT_ID", ""),
        ("OAUTH_CLIENT_SECRET", ""),
        ("OAUTH2_USERNAME_KEY", ""),
    ]);
    let io = TestIo::new();
    let key = Provider::new("k-uni");
    let jwk = key.jwk();
    io.route(
        "https://idp.uni.example/.well-known/openid-configuration",
        |_| {
            json_response(
                200,
                json!({
                    "issuer": "https://idp.uni.example",
                    "authorization_endpoint": "https://idp.uni.example/auth",
                    "token_endpoint": "https://idp.uni.example/token",
                    "jwks_uri": "https://idp.uni.example/jwks",
                    "end_session_endpoint": "https://idp.uni.example/logout",
                    "id_token_signing_alg_values_supported": ["ES256"],
                }),
            )
        },
    );
    io.route("https://idp.uni.example/jwks", move |_| {
        json_response(200, json!({"keys": [jwk.clone()]}))
    });
    let signer = std::rc::Rc::new(key);
    let s2 = signer.clone();
    io.route("https://idp.uni.example/token", move |r| {
        let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
        let nonce = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.trim_start_matches("code:").to_string())
            .unwrap_or_default();
        let claims = json!({"iss": "https://idp.uni.example", "aud": "hubgate", "sub": "u9", "sid": "uni-s1", "nonce": nonce, "preferred_username": "alice"});
        json_response(200, json!({"access_token": "a", "token_type": "Bearer", "id_token": s2.sign(claims, T0, T0 + 300)}))
    });
    let (r, state) = start(&a, &io, "/hub/oauth_login/uni");
    let nonce = query(r.location().unwrap(), "nonce").unwrap();
    let cb = format!(
        "/hub/oauth_callback/uni?code={}&state={}",
        urlenc(&format!("code:{nonce}")),
        urlenc(&state)
    );
    let done = respond(&a, with_cookies(get(&cb), &r), &io);
    assert_eq!(done.status, 302, "{}", String::from_utf8_lossy(&done.body));
    let cookie = session_set_cookie(&done)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // The provider's logout is uni's.
    let out = respond(
        &a,
        request(Method::Get, "/hub/logout", &[("Cookie", &cookie)]),
        &io,
    );
    assert!(out
        .location()
        .unwrap()
        .starts_with("https://idp.uni.example/logout?"));
    // Uni's back-channel endpoint carries its name, and verifies with its keys.
    let token = signer.sign(
        json!({"iss": "https://idp.uni.example", "aud": "hubgate", "sid": "uni-s1", "jti": "j1",
               "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
        T0,
        T0 + 60,
    );
    let mut post = request(Method::Post, "/_hubgate/oidc/backchannel_logout/uni", &[]);
    post.body = Some(format!("logout_token={}", urlenc(&token)).into_bytes());
    assert_eq!(respond(&a, post, &io).status, 200);
    let nav = request(
        Method::Get,
        "/user/alice/",
        &[("Cookie", &cookie), ("Accept", "text/html")],
    );
    assert_eq!(respond(&a, nav, &io).status, 302, "revoked");
}

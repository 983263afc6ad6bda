//! `OAUTH_PROVIDER` presets through the core, each against a scripted
//! stand-in answering with that provider's documented shapes, with a named
//! test per quirk and per refusal; and the "writing your own" hooks as
//! bindings.

mod common;
use common::*;
use hubgate::app::App;
use hubgate::http::{Headers, Method, OutboundRequest, OutboundResponse, Response};
use serde_json::{json, Value};
use std::rc::Rc;

fn no_oidc() -> Vec<(&'static str, &'static str)> {
    vec![("OIDC_ISSUER", ""), ("OAUTH2_USERNAME_KEY", "")]
}

fn with(base: &[(&'static str, &'static str)], more: &[(&'static str, &'static str)]) -> App {
    let mut all = base.to_vec();
    all.extend_from_slice(more);
    app(&all)
}

fn body_of(req: &OutboundRequest) -> String {
    String::from_utf8(req.body.clone().unwrap_or_default()).unwrap()
}

fn page(items: Value, next: Option<&str>) -> Result<OutboundResponse, hubgate::http::FetchError> {
    let mut headers = Headers(vec![("content-type".into(), "application/json".into())]);
    if let Some(n) = next {
        headers.push("Link", format!("<{n}>; rel=\"next\""));
    }
    Ok(OutboundResponse {
        status: 200,
        headers,
        body: items.to_string().into_bytes(),
    })
}

fn status(code: u16) -> Result<OutboundResponse, hubgate::http::FetchError> {
    json_response(code, json!({"message": "Not Found"}))
}

fn login_status(app: &App, io: &TestIo) -> Response {
    login_round_trip(app, io, "/hub/", |cb| cb)
}

fn hub_identity(io: &TestIo) -> String {
    last_hub_login(io)
        .headers
        .0
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------- GitHub ----------

const GH: &str = "https://github.example.edu";
const GH_API: &str = "https://github.example.edu/api/v3";

fn github(io: &TestIo, email: Value, orgs_pages: Vec<Value>, teams: Value) {
    io.route(&format!("{GH}/login/oauth/access_token"), |_| {
        json_response(
            200,
            json!({"access_token": "gho_x", "token_type": "bearer", "scope": "read:user"}),
        )
    });
    io.route(&format!("{GH_API}/user"), move |r| {
        if r.headers.get("user-agent").is_none() {
            return json_response(403, json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}));
        }
        json_response(200, json!({"login": "Octo", "id": 1, "email": email.clone()}))
    });
    io.route(&format!("{GH_API}/user/emails"), |_| {
        page(
            json!([
                {"email": "unverified@x.edu", "primary": true, "verified": false},
                {"email": "other@x.edu", "primary": false, "verified": true},
            ]),
            None,
        )
    });
    let n = orgs_pages.len();
    io.route(&format!("{GH_API}/user/orgs"), move |r| {
        let p: usize = query(&r.url, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let next = (p < n).then(|| format!("{GH_API}/user/orgs?per_page=100&page={}", p + 1));
        page(orgs_pages[p - 1].clone(), next.as_deref())
    });
    io.route(&format!("{GH_API}/user/teams"), move |_| {
        page(teams.clone(), None)
    });
}

/// A plain OAuth 2.0 preset at `url` (its `<PRESET>_URL` binding), with
/// no allow list of its own.
fn oauth2_preset(
    preset: &'static str,
    url_binding: &'static str,
    url: &'static str,
    more: &[(&'static str, &'static str)],
) -> App {
    let mut base = no_oidc();
    base.extend_from_slice(&[
        ("OAUTH_PROVIDER", preset),
        (url_binding, url),
        ("ALLOWED_USERS", ""),
    ]);
    with(&base, more)
}

fn gh_app(more: &[(&'static str, &'static str)]) -> App {
    oauth2_preset("github", "GITHUB_URL", GH, more)
}

#[test]
fn github_enterprise_endpoints_scopes_and_api_headers() {
    let (app, io) = (
        gh_app(&[("ALLOWED_ORGANIZATIONS", "jupyter")]),
        TestIo::new(),
    );
    github(
        &io,
        json!("octo@x.edu"),
        vec![json!([{"login": "jupyter"}])],
        json!([]),
    );
    let start = respond(&app, get("/hub/oauth_login"), &io);
    let loc = start.location().unwrap();
    assert!(
        loc.starts_with(&format!("{GH}/login/oauth/authorize?")),
        "{loc}"
    );
    assert_eq!(
        query(loc, "scope").as_deref(),
        Some("read:user user:email read:org")
    );
    let r = login_status(&app, &io);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let token = io
        .fetched
        .borrow()
        .iter()
        .find(|f| f.url.contains("access_token"))
        .cloned()
        .unwrap();
    assert!(
        body_of(&token).contains("client_secret=client-secret"),
        "GitHub takes the secret in the body"
    );
    for f in io
        .fetched
        .borrow()
        .iter()
        .filter(|f| f.url.starts_with(GH_API))
    {
        assert_eq!(f.headers.get("user-agent"), Some("hubgate"), "{}", f.url);
        assert_eq!(f.headers.get("accept"), Some("application/vnd.github+json"));
        assert_eq!(f.headers.get("authorization"), Some("Bearer gho_x"));
    }
    let id = hub_identity(&io);
    assert!(id.contains("octo"), "{id}");
}

#[test]
fn github_org_membership_on_a_later_page_admits_and_becomes_groups() {
    let (app, io) = (
        gh_app(&[("ALLOWED_ORGANIZATIONS", "uni:staff,jupyter")]),
        TestIo::new(),
    );
    github(
        &io,
        json!("octo@x.edu"),
        vec![
            json!([{"login": "other"}]),
            json!([{"login": "more"}]),
            json!([{"login": "Jupyter"}]),
        ],
        json!([{"slug": "graders", "organization": {"login": "uni"}}]),
    );
    assert_eq!(login_status(&app, &io).status, 302);
    assert_eq!(io.fetch_count(&format!("{GH_API}/user/orgs")), 3);
    let id = hub_identity(&io);
    assert!(id.contains("jupyter") && id.contains("uni:graders"), "{id}");
    assert!(
        !id.contains("other") && !id.contains("more"),
        "only the listed organisations' memberships: {id}"
    );
}

#[test]
fn github_team_entry_admits_a_member_of_that_team_only() {
    let (app, io) = (
        gh_app(&[("ALLOWED_ORGANIZATIONS", "uni:staff")]),
        TestIo::new(),
    );
    github(
        &io,
        json!("o@x.edu"),
        vec![json!([{"login": "uni"}])],
        json!([{"slug": "staff", "organization": {"login": "uni"}}]),
    );
    assert_eq!(login_status(&app, &io).status, 302);
    let (app, io) = (
        gh_app(&[("ALLOWED_ORGANIZATIONS", "uni:staff")]),
        TestIo::new(),
    );
    github(
        &io,
        json!("o@x.edu"),
        vec![json!([{"login": "uni"}])],
        json!([{"slug": "students", "organization": {"login": "uni"}}]),
    );
    let r = login_status(&app, &io);
    assert_eq!(r.status, 403, "a member of the org but not of the team");
    assert!(io.hub_calls.borrow().is_empty(), "nothing reached the hub");
}

#[test]
fn github_user_in_no_listed_organization_is_refused() {
    let (app, io) = (
        gh_app(&[("ALLOWED_ORGANIZATIONS", "jupyter")]),
        TestIo::new(),
    );
    github(
        &io,
        json!("o@x.edu"),
        vec![json!([{"login": "elsewhere"}])],
        json!([]),
    );
    assert_eq!(login_status(&app, &io).status, 403);
    assert!(io.hub_calls.borrow().is_empty());
}

#[test]
fn github_next_link_to_another_origin_is_not_followed() {
    let (app, io) = (
        gh_app(&[("ALLOWED_ORGANIZATIONS", "jupyter")]),
        TestIo::new(),
    );
    github(
        &io,
        json!("o@x.edu"),
        vec![json!([{"login": "x"}])],
        json!([]),
    );
    io.route(&format!("{GH_API}/user/orgs"), |_| {
        page(
            json!([{"login": "x"}]),
            Some("https://evil.example/orgs?page=2"),
        )
    });
    io.route("https://evil.example/", |_| {
        page(json!([{"login": "jupyter"}]), None)
    });
    assert_eq!(login_status(&app, &io).status, 403);
    assert_eq!(io.fetch_count("https://evil.example/"), 0);
}

#[test]
fn github_email_is_the_verified_primary_never_an_unverified_one() {
    let (app, io) = (gh_app(&[("ALLOWED_USERS", "octo")]), TestIo::new());
    github(&io, Value::Null, vec![json!([])], json!([]));
    assert_eq!(login_status(&app, &io).status, 302);
    let id = hub_identity(&io);
    assert!(
        !id.contains("unverified@x.edu") && !id.contains("other@x.edu"),
        "{id}"
    );
    assert_eq!(io.fetch_count(&format!("{GH_API}/user/emails")), 1);
    assert_eq!(
        io.fetch_count(&format!("{GH_API}/user/orgs")),
        0,
        "no org rule: no org calls"
    );
}

// ---------- GitLab ----------

const GL: &str = "https://gitlab.example.edu";

fn gitlab(io: &TestIo, members: &'static [(&'static str, u16, u64)]) {
    io.route(&format!("{GL}/oauth/token"), |_| {
        json_response(
            200,
            json!({"access_token": "glpat", "token_type": "Bearer"}),
        )
    });
    io.route(&format!("{GL}/api/v4/"), move |r| {
        for (path, code, level) in members {
            if r.url == format!("{GL}/api/v4/{path}") {
                return json_response(*code, json!({"id": 42, "access_level": level}));
            }
        }
        status(404)
    });
    // Registered last: the more specific route wins.
    io.route(&format!("{GL}/api/v4/user"), |_| {
        json_response(
            200,
            json!({"id": 42, "username": "Ada", "email": "ada@x.edu"}),
        )
    });
}

fn gl_app(more: &[(&'static str, &'static str)]) -> App {
    oauth2_preset("gitlab", "GITLAB_URL", GL, more)
}

#[test]
fn gitlab_subgroup_path_is_one_url_segment() {
    let (app, io) = (
        gl_app(&[("ALLOWED_GITLAB_GROUPS", "org/sub")]),
        TestIo::new(),
    );
    gitlab(&io, &[("groups/org%2Fsub/members/all/42", 200, 10)]);
    let start = respond(&app, get("/hub/oauth_login"), &io);
    assert_eq!(
        query(start.location().unwrap(), "scope").as_deref(),
        Some("read_user read_api")
    );
    assert_eq!(login_status(&app, &io).status, 302);
    assert!(hub_identity(&io).contains("ada"));
}

#[test]
fn gitlab_project_needs_developer_access() {
    let (app, io) = (gl_app(&[("ALLOWED_PROJECT_IDS", "7")]), TestIo::new());
    gitlab(&io, &[("projects/7/members/all/42", 200, 20)]);
    assert_eq!(
        login_status(&app, &io).status,
        403,
        "Reporter (20) is not enough"
    );
    let (app, io) = (gl_app(&[("ALLOWED_PROJECT_IDS", "7")]), TestIo::new());
    gitlab(&io, &[("projects/7/members/all/42", 200, 30)]);
    assert_eq!(login_status(&app, &io).status, 302, "Developer (30)");
}

#[test]
fn gitlab_non_member_is_refused_and_a_server_error_is_502() {
    let (app, io) = (gl_app(&[("ALLOWED_GITLAB_GROUPS", "org")]), TestIo::new());
    gitlab(&io, &[]);
    assert_eq!(login_status(&app, &io).status, 403);
    let (app, io) = (gl_app(&[("ALLOWED_GITLAB_GROUPS", "org")]), TestIo::new());
    gitlab(&io, &[("groups/org/members/all/42", 500, 0)]);
    assert_eq!(login_status(&app, &io).status, 502);
    assert!(io.hub_calls.borrow().is_empty());
}

// ---------- OpenID Connect presets: a scripted issuer ----------

fn oidc(
    io: &TestIo,
    issuer: &'static str,
    doc_issuer: &'static str,
    claims: impl Fn(&str) -> Value + 'static,
) -> Rc<Provider> {
    let p = Rc::new(Provider::new("k1"));
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let base = issuer.trim_end_matches('/').to_string();
    let b = base.clone();
    io.route(&discovery, move |_| {
        json_response(
            200,
            json!({
                "issuer": doc_issuer,
                "authorization_endpoint": format!("{b}/authorize"),
                "token_endpoint": format!("{b}/token"),
                "jwks_uri": format!("{b}/keys"),
                "id_token_signing_alg_values_supported": ["ES256"],
            }),
        )
    });
    let jwks = json!({"keys": [p.jwk()]});
    io.route(&format!("{base}/keys"), move |_| {
        json_response(200, jwks.clone())
    });
    let signer = p.clone();
    io.route(&format!("{base}/token"), move |r| {
        let body = body_of(r);
        let code = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let nonce = code.strip_prefix("code:").unwrap_or("");
        let mut c = claims(nonce);
        c["nonce"] = json!(nonce);
        json_response(200, json!({"access_token": "at", "token_type": "Bearer", "id_token": signer.sign(c, T0, T0 + 300)}))
    });
    p
}

const GOOGLE: &str = "https://accounts.google.example";

fn google_app(domains: &'static str) -> App {
    app(&[
        ("OAUTH_PROVIDER", "google"),
        ("OIDC_ISSUER", GOOGLE),
        ("OAUTH2_USERNAME_KEY", ""),
        ("HOSTED_DOMAIN", domains),
        ("ALLOWED_USERS", ""),
        ("ALLOW_ALL", "true"),
    ])
}

fn google_user(hd: Option<&'static str>, verified: Value) -> impl Fn(&str) -> Value {
    move |_| {
        let mut c = json!({"iss": GOOGLE, "aud": "hubgate", "sub": "g-1", "email": "ada@uni.edu", "email_verified": verified.clone()});
        if let Some(hd) = hd {
            c["hd"] = json!(hd);
        }
        c
    }
}

#[test]
fn google_hosted_domain_is_checked_against_hd_and_one_domain_is_stripped() {
    let (app, io) = (google_app("uni.edu"), TestIo::new());
    oidc(
        &io,
        GOOGLE,
        GOOGLE,
        google_user(Some("uni.edu"), json!(true)),
    );
    assert_eq!(login_status(&app, &io).status, 302);
    assert!(hub_identity(&io).contains("ada"));
    assert!(!hub_identity(&io).contains("X-Forwarded-User: ada@uni.edu"));
}

#[test]
fn google_email_in_the_domain_without_hd_is_refused() {
    let (app, io) = (google_app("uni.edu"), TestIo::new());
    oidc(&io, GOOGLE, GOOGLE, google_user(None, json!(true)));
    let r = login_status(&app, &io);
    assert_eq!(r.status, 403);
    assert!(io.hub_calls.borrow().is_empty());
    let (app, io) = (google_app("uni.edu"), TestIo::new());
    oidc(
        &io,
        GOOGLE,
        GOOGLE,
        google_user(Some("evil.com"), json!(true)),
    );
    assert_eq!(login_status(&app, &io).status, 403);
}

#[test]
fn google_unverified_email_is_refused() {
    let (app, io) = (google_app(""), TestIo::new());
    oidc(&io, GOOGLE, GOOGLE, google_user(None, json!(false)));
    assert_eq!(login_status(&app, &io).status, 403);
}

#[test]
fn google_several_hosted_domains_keep_the_whole_email() {
    let (app, io) = (google_app("uni.edu,other.edu"), TestIo::new());
    oidc(
        &io,
        GOOGLE,
        GOOGLE,
        google_user(Some("uni.edu"), json!(true)),
    );
    assert_eq!(login_status(&app, &io).status, 302);
    assert!(hub_identity(&io).contains("ada@uni.edu"));
}

const AZ: &str = "https://login.azure.example";
const AZ_COMMON: &str = "https://login.azure.example/common/v2.0";
const AZ_TEMPLATE: &str = "https://login.azure.example/{tenantid}/v2.0";
const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn azure_app(more: &[(&'static str, &'static str)]) -> App {
    let base = [
        ("OAUTH_PROVIDER", "azuread"),
        ("AZURE_AUTHORITY_HOST", AZ),
        ("OIDC_ISSUER", ""),
        ("OAUTH2_USERNAME_KEY", "preferred_username"),
        ("ALLOWED_USERS", ""),
        ("ALLOW_ALL", "true"),
    ];
    with(&base, more)
}

fn azure_claims(
    iss: &'static str,
    tid: Option<&'static str>,
    extra: Value,
) -> impl Fn(&str) -> Value {
    move |_| {
        let mut c = json!({"iss": iss, "aud": "hubgate", "sub": "az-1", "preferred_username": "ada@uni.edu"});
        if let Some(t) = tid {
            c["tid"] = json!(t);
        }
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }
}

const AZ_TENANT_ISS: &str = "https://login.azure.example/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";

#[test]
fn azure_multi_tenant_issuer_is_the_template_filled_with_the_tokens_tid() {
    let (app, io) = (azure_app(&[]), TestIo::new());
    oidc(
        &io,
        AZ_COMMON,
        AZ_TEMPLATE,
        azure_claims(AZ_TENANT_ISS, Some(TID), json!({})),
    );
    let r = login_status(&app, &io);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn azure_token_naming_another_tenant_than_its_tid_is_refused() {
    let (app, io) = (azure_app(&[]), TestIo::new());
    oidc(
        &io,
        AZ_COMMON,
        AZ_TEMPLATE,
        azure_claims(
            AZ_TENANT_ISS,
            Some("00000000-0000-0000-0000-000000000001"),
            json!({}),
        ),
    );
    assert_eq!(login_status(&app, &io).status, 401);
    let (app, io) = (azure_app(&[]), TestIo::new());
    oidc(
        &io,
        AZ_COMMON,
        AZ_TEMPLATE,
        azure_claims(AZ_TENANT_ISS, None, json!({})),
    );
    assert_eq!(login_status(&app, &io).status, 401, "no tid");
    assert!(io.hub_calls.borrow().is_empty());
}

#[test]
fn azure_single_tenant_issuer_is_exact() {
    let (app, io) = (azure_app(&[("AZURE_TENANT_ID", TID)]), TestIo::new());
    oidc(
        &io,
        AZ_TENANT_ISS,
        AZ_TENANT_ISS,
        azure_claims(AZ_TENANT_ISS, Some(TID), json!({})),
    );
    assert_eq!(login_status(&app, &io).status, 302);
}

#[test]
fn azure_group_overage_with_group_rules_is_refused_with_a_message_saying_so() {
    let (app, io) = (
        azure_app(&[("ALLOW_ALL", ""), ("ALLOWED_GROUPS", "g-students")]),
        TestIo::new(),
    );
    oidc(
        &io,
        AZ_COMMON,
        AZ_TEMPLATE,
        azure_claims(
            AZ_TENANT_ISS,
            Some(TID),
            json!({
                "_claim_names": {"groups": "src1"},
                "_claim_sources": {"src1": {"endpoint": "https://graph.example/v1.0/users/x/getMemberObjects"}},
            }),
        ),
    );
    let r = login_status(&app, &io);
    assert_eq!(r.status, 403);
    assert!(
        io.logs.borrow().iter().any(|l| l.contains("overage")),
        "{:?}",
        io.logs.borrow()
    );
}

const AUTH0: &str = "https://uni.auth0.example/";

#[test]
fn auth0_issuer_ends_in_a_slash_and_logout_uses_v2_logout() {
    let a = app(&[
        ("OAUTH_PROVIDER", "auth0"),
        ("AUTH0_DOMAIN", "uni.auth0.example"),
        ("OIDC_ISSUER", ""),
        ("OAUTH2_USERNAME_KEY", "nickname"),
    ]);
    let io = TestIo::new();
    oidc(
        &io,
        AUTH0,
        AUTH0,
        |_| json!({"iss": AUTH0, "aud": "hubgate", "sub": "auth0|1", "nickname": "alice"}),
    );
    let r = login_status(&a, &io);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        io.fetch_count("https://uni.auth0.example/.well-known/openid-configuration"),
        1
    );
    let cookie = session_set_cookie(&r)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let out = respond(
        &a,
        request(Method::Get, "/hub/logout", &[("Cookie", &cookie)]),
        &io,
    );
    let loc = out.location().unwrap();
    assert!(
        loc.starts_with("https://uni.auth0.example/v2/logout?"),
        "{loc}"
    );
    assert_eq!(
        query(loc, "returnTo"),
        Some(format!("{ORIGIN}/_hubgate/signed_out"))
    );
    assert_eq!(query(loc, "client_id").as_deref(), Some("hubgate"));
}

const CIL: &str = "https://cilogon.example";

fn cilogon_app(idps: &'static str) -> App {
    app(&[
        ("OAUTH_PROVIDER", "cilogon"),
        ("CILOGON_HOST", CIL),
        ("OIDC_ISSUER", ""),
        ("OAUTH2_USERNAME_KEY", ""),
        ("ALLOWED_USERS", ""),
        ("CILOGON_IDPS", idps),
        ("CILOGON_SKIN", "uni"),
    ])
}

const IDPS: &str = r#"{
  "https://github.com/login/oauth/authorize": {"username_derivation": {"username_claim": "preferred_username", "action": "prefix", "prefix": "github"}},
  "https://idp.uni.edu/shibboleth": {"username_derivation": {"username_claim": "email", "action": "strip_idp_domain", "domain": "uni.edu"}, "allowed_domains": ["uni.edu", "*.uni.edu"], "default": true}
}"#;

fn cil_user(idp: &'static str, email: &'static str) -> impl Fn(&str) -> Value {
    move |_| json!({"iss": CIL, "aud": "hubgate", "sub": "http://cilogon.org/serverA/users/1", "idp": idp, "email": email, "preferred_username": "octo"})
}

#[test]
fn cilogon_selected_idp_puts_the_default_first_and_carries_the_skin() {
    let (app, io) = (cilogon_app(IDPS), TestIo::new());
    oidc(
        &io,
        CIL,
        CIL,
        cil_user("https://idp.uni.edu/shibboleth", "ada@uni.edu"),
    );
    let start = respond(&app, get("/hub/oauth_login"), &io);
    let loc = start.location().unwrap();
    assert_eq!(
        query(loc, "selected_idp").as_deref(),
        Some("https://idp.uni.edu/shibboleth,https://github.com/login/oauth/authorize")
    );
    assert_eq!(query(loc, "skin").as_deref(), Some("uni"));
}

#[test]
fn cilogon_username_is_derived_per_idp_and_allowed_domains_admit() {
    let (app, io) = (cilogon_app(IDPS), TestIo::new());
    oidc(
        &io,
        CIL,
        CIL,
        cil_user("https://idp.uni.edu/shibboleth", "ada@cs.uni.edu"),
    );
    assert_eq!(login_status(&app, &io).status, 302, "*.uni.edu admits");
    assert!(
        hub_identity(&io).contains("ada@cs.uni.edu"),
        "another domain is not stripped"
    );
    let (app, io) = (cilogon_app(IDPS), TestIo::new());
    oidc(
        &io,
        CIL,
        CIL,
        cil_user("https://idp.uni.edu/shibboleth", "ada@uni.edu"),
    );
    assert_eq!(login_status(&app, &io).status, 302);
    assert!(hub_identity(&io).contains(": ada"));
}

#[test]
fn cilogon_refuses_an_idp_not_configured_and_a_user_no_rule_admits() {
    let (app, io) = (cilogon_app(IDPS), TestIo::new());
    oidc(
        &io,
        CIL,
        CIL,
        cil_user("https://idp.other.edu/idp", "x@other.edu"),
    );
    assert_eq!(login_status(&app, &io).status, 403);
    let (app, io) = (cilogon_app(IDPS), TestIo::new());
    oidc(
        &io,
        CIL,
        CIL,
        cil_user("https://github.com/login/oauth/authorize", "x@gh"),
    );
    assert_eq!(
        login_status(&app, &io).status,
        403,
        "github:octo is in no allow list"
    );
    assert!(io.hub_calls.borrow().is_empty());
}

const KC: &str = "https://sso.uni.example/realms/hub";

fn keycloak(roles: &'static [&'static str]) -> (App, TestIo) {
    let a = app(&[
        ("OAUTH_PROVIDER", "keycloak"),
        ("KEYCLOAK_URL", "https://sso.uni.example"),
        ("KEYCLOAK_REALM", "hub"),
        ("OIDC_ISSUER", ""),
        ("OAUTH2_USERNAME_KEY", ""),
        ("ALLOWED_USERS", ""),
        ("ALLOWED_GROUPS", "jupyter"),
        ("GROUPS_CLAIM", "realm_access.roles"),
    ]);
    let io = TestIo::new();
    oidc(
        &io,
        KC,
        KC,
        move |_| json!({"iss": KC, "aud": "hubgate", "sub": "kc-1", "preferred_username": "ada", "realm_access": {"roles": roles}}),
    );
    (a, io)
}

#[test]
fn keycloak_realm_roles_through_groups_claim_admit_or_refuse() {
    let (a, io) = keycloak(&["jupyter", "offline_access"]);
    assert_eq!(login_status(&a, &io).status, 302);
    let (a, io) = keycloak(&["offline_access"]);
    assert_eq!(login_status(&a, &io).status, 403);
}

#[test]
fn an_unknown_preset_or_a_missing_preset_binding_is_a_configuration_error() {
    for bad in [
        vec![("OAUTH_PROVIDER", "myspace")],
        vec![("OAUTH_PROVIDER", "auth0"), ("OIDC_ISSUER", "")],
        vec![("OAUTH_PROVIDER", "cilogon"), ("OIDC_ISSUER", "")],
        vec![
            ("OAUTH_PROVIDER", "gitlab"),
            ("ALLOWED_PROJECT_IDS", "seven"),
        ],
        vec![("OAUTH_TOKEN_PARAMS", r#"{"grant_type": "password"}"#)],
        vec![("OAUTH2_USERDATA_METHOD", "PUT")],
    ] {
        assert!(App::from_bindings(&bindings(&bad)).is_err(), "{bad:?}");
    }
}

// ---------- the hooks as bindings ----------

fn plain_app(more: &[(&'static str, &'static str)]) -> App {
    let mut base = no_oidc();
    base.extend_from_slice(&[
        (
            "OAUTH2_AUTHORIZE_URL",
            "https://idp.plain.example/authorize",
        ),
        ("OAUTH2_TOKEN_URL", "https://idp.plain.example/token"),
        ("OAUTH2_USERDATA_URL", "https://idp.plain.example/me"),
    ]);
    with(&base, more)
}

fn plain_idp(io: &TestIo) {
    io.route("https://idp.plain.example/token", |_| {
        json_response(200, json!({"access_token": "tok", "token_type": "Bearer"}))
    });
    io.route("https://idp.plain.example/me", |_| {
        json_response(
            200,
            json!({"data": {"user": {"name": "Alice"}}, "dept": "cs"}),
        )
    });
}

#[test]
fn hooks_token_params_userdata_post_with_params_token_in_url_and_a_dotted_username() {
    let a = plain_app(&[
        (
            "OAUTH_TOKEN_PARAMS",
            r#"{"audience": "hub", "resource": 7}"#,
        ),
        ("OAUTH2_USERDATA_METHOD", "POST"),
        ("OAUTH2_USERDATA_PARAMS", r#"{"fields": "name,dept"}"#),
        ("OAUTH2_USERDATA_TOKEN_METHOD", "url"),
        ("OAUTH2_USERNAME_KEY", "data.user.name"),
        ("USER_AUTH_STATE_KEY", "user"),
        ("ASSERTION_AUTH_STATE_CLAIMS", "dept"),
    ]);
    let io = TestIo::new();
    plain_idp(&io);
    let r = login_status(&a, &io);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let fetched = io.fetched.borrow();
    let token = fetched.iter().find(|f| f.url.ends_with("/token")).unwrap();
    let tb = body_of(token);
    assert!(
        tb.contains("audience=hub") && tb.contains("resource=7"),
        "{tb}"
    );
    let me = fetched.iter().find(|f| f.url.contains("/me")).unwrap();
    assert_eq!(me.method, Method::Post);
    assert!(me.url.contains("access_token=tok"), "{}", me.url);
    assert!(me.headers.get("authorization").is_none());
    assert_eq!(body_of(me), "fields=name%2Cdept");
    let id = hub_identity(&io);
    assert!(id.contains("alice"), "{id}");
}

#[test]
fn user_auth_state_key_nests_the_claims_under_one_key() {
    let a = plain_app(&[
        ("OAUTH2_USERNAME_KEY", "data.user.name"),
        ("USER_AUTH_STATE_KEY", "user"),
        ("ASSERTION_AUTH_STATE_CLAIMS", "dept"),
        ("ASSERTION_SIGNING_KEY", ""),
    ]);
    let io = TestIo::new();
    plain_idp(&io);
    let r = login_status(&a, &io);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let cookie = session_set_cookie(&r)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let v = cookie.split('=').nth(1).unwrap();
    let payload = v.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["auth_state"], json!({"user": {"dept": "cs"}}));
}

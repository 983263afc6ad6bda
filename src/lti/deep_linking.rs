//! LTI Deep Linking 2.0: an `LtiDeepLinkingRequest` launch shows the
//! instructor a small picker (a hub path and a title); the tool answers with
//! an `LtiDeepLinkingResponse` JWT signed with its own key (RS256, `kid` in
//! `/hub/lti13/jwks`), auto-posted to `deep_link_return_url` (4.5).
//!
//! Between the two requests the picker form carries the verified launch's
//! context in a short-lived HS256 token (the flow key), bound to the
//! instructor's session: a response is only signed for the user the
//! platform launched, for the platform and deployment that launched them.

use super::launch::{DeepLinkingSettings, LTI_VERSION};
use super::tool_keys::ToolKey;
use super::{LtiError, CLAIM, DL_CLAIM};
use crate::http::{Response, UnixTime};
use crate::jose::hs256::{self as signing, to_datetime, Purpose};
use crate::pages::escape;
use crate::session::flow_cookie::FLOW_TTL;
use crate::session::SessionSettings;
use base64::Engine;
use jwt_compact::Claims;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How long the signed response is valid for the platform.
pub const RESPONSE_TTL: u64 = 300;
const KIND: &str = "lti-deep-link";
const MAX_TITLE: usize = 200;

/// What the picker form carries from the launch to the response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeepLinkContext {
    kind: String,
    pub issuer: String,
    pub client_id: String,
    pub deployment_id: String,
    pub return_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// The username the session was started for.
    pub user: String,
}

impl DeepLinkContext {
    pub fn new(
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
        settings: &DeepLinkingSettings,
    ) -> Self {
        DeepLinkContext {
            kind: KIND.into(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            deployment_id: deployment_id.into(),
            return_url: settings.return_url.to_string(),
            data: settings.data.clone(),
            user: String::new(),
        }
    }

    /// Bound to the user the session was started for (after the identity
    /// pipeline: the name the hub will know).
    pub fn for_user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }

    pub fn seal(&self, cfg: &SessionSettings, now: UnixTime) -> String {
        signing::mint(&cfg.secret, Purpose::Flow, self, now, FLOW_TTL)
    }

    pub fn open(cfg: &SessionSettings, token: &str, now: UnixTime) -> Result<Self, LtiError> {
        let v = signing::verify::<DeepLinkContext>(
            token,
            Purpose::Flow,
            &cfg.secret,
            cfg.previous.as_ref(),
            now,
        )
        .map_err(|e| LtiError::DeepLink(format!("picker context: {e}")))?;
        if v.claims.kind != KIND {
            return Err(LtiError::DeepLink("picker context of another kind".into()));
        }
        Ok(v.claims)
    }
}

/// The picker page, answered with 200 on a deep linking launch.
pub fn picker_page(
    action: &str,
    sealed: &str,
    default_path: &str,
    default_title: &str,
) -> Response {
    let body = format!(
        "<h1>Add a JupyterHub link</h1>\
<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"context\" value=\"{ctx}\">\
<p><label>Title<br><input name=\"title\" value=\"{title}\" maxlength=\"{MAX_TITLE}\" required></label></p>\
<p><label>Path on the hub<br><input name=\"path\" value=\"{path}\" required></label></p>\
<p><small>For example <code>/hub/</code> or <code>/hub/user-redirect/lab</code>.</small></p>\
<p><button type=\"submit\">Add to course</button></p></form>",
        action = escape(action),
        ctx = escape(sealed),
        title = escape(default_title),
        path = escape(default_path),
    );
    Response::html(200, page("Add a JupyterHub link", &body))
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}\
input{{width:100%;padding:.4rem}}button{{padding:.6rem 1.2rem;background:#f37726;color:#fff;border:0;border-radius:4px}}</style>\
</head><body>{body}</body></html>",
        escape(title)
    )
}

/// The instructor's choice, checked: a same-origin path under BASE_URL and
/// a short title.
pub fn content_item(
    origin: &str,
    base_path: &str,
    path: Option<&str>,
    title: Option<&str>,
) -> Result<Value, LtiError> {
    let path = path
        .map(str::trim)
        .and_then(crate::url_policy::safe_path)
        .filter(|p| p.starts_with(base_path))
        .ok_or_else(|| LtiError::DeepLink("path is not a path on this hub".into()))?;
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TITLE)
        .ok_or_else(|| LtiError::DeepLink("title is empty or too long".into()))?;
    Ok(json!({
        "type": "ltiResourceLink",
        "title": title,
        "url": format!("{origin}{path}"),
    }))
}

/// LTI Deep Linking 2.0, 4.2: the response message. `iss` is the tool's
/// client_id, `aud` the platform's issuer.
pub fn response_jwt(
    key: &ToolKey,
    ctx: &DeepLinkContext,
    items: Vec<Value>,
    nonce: &str,
    now: UnixTime,
) -> String {
    let mut m = serde_json::Map::new();
    m.insert("iss".into(), ctx.client_id.clone().into());
    m.insert("aud".into(), json!([ctx.issuer]));
    m.insert("azp".into(), ctx.client_id.clone().into());
    m.insert("nonce".into(), nonce.into());
    m.insert(
        format!("{CLAIM}deployment_id"),
        ctx.deployment_id.clone().into(),
    );
    m.insert(
        format!("{CLAIM}message_type"),
        "LtiDeepLinkingResponse".into(),
    );
    m.insert(format!("{CLAIM}version"), LTI_VERSION.into());
    m.insert(format!("{DL_CLAIM}content_items"), Value::Array(items));
    if let Some(d) = &ctx.data {
        m.insert(format!("{DL_CLAIM}data"), d.clone());
    }
    let mut claims = Claims::new(m);
    claims.issued_at = Some(to_datetime(now));
    claims.expiration = Some(to_datetime(now.plus(RESPONSE_TTL)));
    key.sign(&claims)
}

const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// A page that posts `JWT` to the platform's return URL by itself (with a
/// button when scripts are off). Its CSP allows exactly that one script.
pub fn auto_post(return_url: &str, jwt: &str) -> Response {
    let body = format!(
        "<p>Returning to the course…</p>\
<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"JWT\" value=\"{jwt}\">\
<noscript><button type=\"submit\">Continue</button></noscript></form>\
<script>{AUTO_SUBMIT}</script>",
        action = escape(return_url),
        jwt = escape(jwt),
    );
    let mut r = Response::html(200, page("Returning to the course", &body));
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(AUTO_SUBMIT));
    r.headers.set(
        "Content-Security-Policy",
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; form-action {}; frame-ancestors *",
            form_action_source(return_url)
        ),
    );
    r
}

fn form_action_source(return_url: &str) -> String {
    url::Url::parse(return_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into())
}

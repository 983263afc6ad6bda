//! Third-party initiated login (LTI Core 1.3, 5.1.1; IMS Security
//! Framework 1.0, 5.1.1): the platform sends `iss`, `login_hint`,
//! `target_link_uri` (+ `lti_message_hint`, `client_id`,
//! `lti_deployment_id`); the tool answers with an OIDC authentication
//! request to the platform (implicit flow, form_post).

use super::registration::{self, Registration};
use super::LtiSettings;
use super::{param, LtiError};
use crate::session::flow_cookie::LtiFlow;

/// The initiation parameters, from the query (GET) or the form (POST).
#[derive(Debug, Clone)]
pub struct Initiation {
    pub iss: String,
    pub login_hint: String,
    pub target_link_uri: String,
    pub lti_message_hint: Option<String>,
    pub client_id: Option<String>,
    pub lti_deployment_id: Option<String>,
}

impl Initiation {
    /// 5.1.1.1: `iss`, `login_hint` and `target_link_uri` are required.
    pub fn parse(pairs: &[(String, String)]) -> Result<Initiation, LtiError> {
        let req = |n: &'static str| {
            param(pairs, n)
                .map(str::to_string)
                .ok_or(LtiError::MissingParameter(n))
        };
        let opt = |n: &str| param(pairs, n).map(str::to_string);
        Ok(Initiation {
            iss: req("iss")?,
            login_hint: req("login_hint")?,
            target_link_uri: req("target_link_uri")?,
            lti_message_hint: opt("lti_message_hint"),
            client_id: opt("client_id"),
            lti_deployment_id: opt("lti_deployment_id"),
        })
    }
}

impl Initiation {
    /// The same initiation as a query string (without `lti_storage_target`):
    /// the "open in a new window" link starts the launch again at top level.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("iss", &self.iss)
            .append_pair("login_hint", &self.login_hint)
            .append_pair("target_link_uri", &self.target_link_uri);
        for (name, v) in [
            ("lti_message_hint", &self.lti_message_hint),
            ("client_id", &self.client_id),
            ("lti_deployment_id", &self.lti_deployment_id),
        ] {
            if let Some(v) = v {
                q.append_pair(name, v);
            }
        }
        q.finish()
    }
}

/// Random values for one flow, drawn by the caller through `Io`.
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
}

/// The authentication request (IMS Security Framework 5.1.1.2) and the flow
/// state to keep in the cookie.
pub fn start(
    cfg: &LtiSettings,
    init: &Initiation,
    redirect_uri: &str,
    secrets: FlowSecrets,
) -> Result<(String, LtiFlow), LtiError> {
    let reg: Registration<'_> = registration::match_login(
        cfg,
        &init.iss,
        init.client_id.as_deref(),
        init.lti_deployment_id.as_deref(),
    )?;
    let mut url = reg.platform.authorize_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("scope", "openid")
            .append_pair("response_type", "id_token")
            .append_pair("response_mode", "form_post")
            .append_pair("prompt", "none")
            .append_pair("client_id", reg.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("login_hint", &init.login_hint)
            .append_pair("state", &secrets.state)
            .append_pair("nonce", &secrets.nonce);
        if let Some(h) = &init.lti_message_hint {
            q.append_pair("lti_message_hint", h);
        }
    }
    let flow = LtiFlow {
        state: secrets.state,
        nonce: secrets.nonce,
        target_link_uri: init.target_link_uri.clone(),
        registration: reg.key(),
    };
    Ok((url.to_string(), flow))
}

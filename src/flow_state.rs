//! Per-flow state cookie (OAuth login, LTI login initiation): state, nonce,
//! PKCE verifier, `next`, issue time, signed. The cookie name carries a
//! prefix of the state so parallel tabs each keep their own flow.

use crate::config::SessionConfig;
use crate::cookies::{self, Context};
use crate::http::{Headers, UnixTime};
use crate::signing::{self, Purpose, TokenError};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Long enough for a login at the IdP, short enough to limit replays.
pub const FLOW_TTL: u64 = 600;
const ID_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    Oauth,
    Lti,
}

impl FlowKind {
    fn cookie_base(self) -> &'static str {
        match self {
            FlowKind::Oauth => "hubgate-oauth-",
            FlowKind::Lti => "hubgate-lti-",
        }
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowState {
    pub kind: FlowKind,
    pub state: String,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    pub next: String,
    /// LTI: which platform registration (issuer + client_id) started the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl std::fmt::Debug for FlowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowState")
            .field("kind", &self.kind)
            .field("id", &flow_id(&self.state))
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("state parameter missing")]
    MissingState,
    #[error("no flow cookie for this state (expired, other browser, or already used)")]
    MissingCookie,
    #[error("flow cookie rejected: {0}")]
    Token(#[from] TokenError),
    #[error("state does not match the flow cookie")]
    StateMismatch,
    #[error("flow cookie belongs to another kind of login")]
    WrongKind,
}

fn flow_id(state: &str) -> &str {
    let end = state.len().min(ID_LEN);
    &state[..end]
}

pub fn cookie_name(kind: FlowKind, state: &str, https: bool) -> String {
    let id: String = flow_id(state)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    cookies::cookie_name(&format!("{}{id}", kind.cookie_base()), https)
}

pub fn mint(
    cfg: &SessionConfig,
    flow: &FlowState,
    https: bool,
    ctx: Context,
    now: UnixTime,
) -> String {
    let token = signing::mint(&cfg.secret, Purpose::Flow, flow, now, FLOW_TTL);
    cookies::set_cookie(
        &cookie_name(flow.kind, &flow.state, https),
        &token,
        FLOW_TTL,
        https,
        ctx,
    )
}

/// Find the cookie for `state`, verify it, and compare the state in constant time.
pub fn take(
    cfg: &SessionConfig,
    kind: FlowKind,
    state: Option<&str>,
    headers: &Headers,
    https: bool,
    now: UnixTime,
) -> Result<FlowState, FlowError> {
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(FlowError::MissingState)?;
    let jar = cookies::parse_request_cookies(headers);
    let value =
        cookies::find(&jar, &cookie_name(kind, state, https)).ok_or(FlowError::MissingCookie)?;
    let flow = signing::verify::<FlowState>(
        value,
        Purpose::Flow,
        &cfg.secret,
        cfg.previous.as_ref(),
        now,
    )?
    .claims;
    if flow.kind != kind {
        return Err(FlowError::WrongKind);
    }
    if !bool::from(flow.state.as_bytes().ct_eq(state.as_bytes())) {
        return Err(FlowError::StateMismatch);
    }
    Ok(flow)
}

pub fn clear(kind: FlowKind, state: &str, https: bool, ctx: Context) -> String {
    cookies::expire_cookie(&cookie_name(kind, state, https), https, ctx)
}

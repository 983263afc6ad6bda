//! Per-flow state cookie (OAuth login, LTI login initiation): state, nonce,
//! PKCE verifier, `next`, issue time, signed. The cookie name carries a
//! prefix of the state so parallel tabs each keep their own flow.

use super::SessionSettings;
use crate::cookies::{self, Context};
use crate::http::{Headers, UnixTime};
use crate::jose::hs256::{self as signing, Purpose, TokenError};
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

/// An OAuth/OIDC login between `/hub/oauth_login` and the callback.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct OAuthFlow {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    /// The provider that started the login (`""`: the top-level one): its
    /// callback alone may finish it (mix-up defence).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
}

/// An LTI launch between the login initiation and the launch.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct LtiFlow {
    pub state: String,
    pub nonce: String,
    pub target_link_uri: String,
    /// Which platform registration (issuer + client_id) started the flow.
    pub registration: String,
}

/// What one flow cookie holds: one variant per flow.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Flow {
    Oauth(OAuthFlow),
    Lti(LtiFlow),
}

impl Flow {
    pub fn kind(&self) -> FlowKind {
        match self {
            Flow::Oauth(_) => FlowKind::Oauth,
            Flow::Lti(_) => FlowKind::Lti,
        }
    }
    pub fn state(&self) -> &str {
        match self {
            Flow::Oauth(f) => &f.state,
            Flow::Lti(f) => &f.state,
        }
    }
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("kind", &self.kind())
            .field("id", &flow_id(self.state()))
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

/// The part of the state that names the cookie: its first `ID_LEN`
/// cookie-safe characters (a state from the request may hold anything).
fn flow_id(state: &str) -> String {
    state
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(ID_LEN)
        .collect()
}

pub fn cookie_name(kind: FlowKind, state: &str, https: bool) -> String {
    let id = flow_id(state);
    cookies::cookie_name(&format!("{}{id}", kind.cookie_base()), https)
}

/// The signed flow: the flow cookie's value, and what LTI Platform Storage
/// keeps when the browser keeps no cookie in the frame.
pub fn seal(cfg: &SessionSettings, flow: &Flow, now: UnixTime) -> String {
    signing::mint(&cfg.secret, Purpose::Flow, flow, now, FLOW_TTL)
}

pub fn mint(
    cfg: &SessionSettings,
    flow: &Flow,
    https: bool,
    ctx: Context,
    now: UnixTime,
) -> String {
    cookies::set_cookie(
        &cookie_name(flow.kind(), flow.state(), https),
        &seal(cfg, flow, now),
        FLOW_TTL,
        https,
        ctx,
    )
}

/// Find the cookie for `state`, verify it, and compare the state in constant time.
pub fn take(
    cfg: &SessionSettings,
    kind: FlowKind,
    state: Option<&str>,
    headers: &Headers,
    https: bool,
    now: UnixTime,
) -> Result<Flow, FlowError> {
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(FlowError::MissingState)?;
    let jar = cookies::parse_request_cookies(headers);
    let value =
        cookies::find(&jar, &cookie_name(kind, state, https)).ok_or(FlowError::MissingCookie)?;
    open(cfg, kind, value, state, now)
}

/// Verify a sealed flow (from the cookie or from platform storage) and
/// compare its state with the request's in constant time.
pub fn open(
    cfg: &SessionSettings,
    kind: FlowKind,
    sealed: &str,
    state: &str,
    now: UnixTime,
) -> Result<Flow, FlowError> {
    let flow = signing::verify::<Flow>(
        sealed,
        Purpose::Flow,
        &cfg.secret,
        cfg.previous.as_ref(),
        now,
    )?
    .claims;
    if flow.kind() != kind {
        return Err(FlowError::WrongKind);
    }
    if !bool::from(flow.state().as_bytes().ct_eq(state.as_bytes())) {
        return Err(FlowError::StateMismatch);
    }
    Ok(flow)
}

pub fn clear(kind: FlowKind, state: &str, https: bool, ctx: Context) -> String {
    cookies::expire_cookie(&cookie_name(kind, state, https), https, ctx)
}

pub fn take_oauth(
    cfg: &SessionSettings,
    state: Option<&str>,
    headers: &Headers,
    https: bool,
    now: UnixTime,
) -> Result<OAuthFlow, FlowError> {
    match take(cfg, FlowKind::Oauth, state, headers, https, now)? {
        Flow::Oauth(f) => Ok(f),
        Flow::Lti(_) => Err(FlowError::WrongKind),
    }
}

pub fn take_lti(
    cfg: &SessionSettings,
    state: Option<&str>,
    headers: &Headers,
    https: bool,
    now: UnixTime,
) -> Result<LtiFlow, FlowError> {
    lti_only(take(cfg, FlowKind::Lti, state, headers, https, now)?)
}

/// An LTI flow that came back through platform storage instead of a cookie.
pub fn open_lti(
    cfg: &SessionSettings,
    sealed: &str,
    state: Option<&str>,
    now: UnixTime,
) -> Result<LtiFlow, FlowError> {
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(FlowError::MissingState)?;
    lti_only(open(cfg, FlowKind::Lti, sealed, state, now)?)
}

fn lti_only(flow: Flow) -> Result<LtiFlow, FlowError> {
    match flow {
        Flow::Lti(f) => Ok(f),
        Flow::Oauth(_) => Err(FlowError::WrongKind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_name_of_a_state_cut_inside_a_multibyte_character_does_not_panic() {
        let state = "abcdefghijklmno\u{e9}xyz";
        assert_eq!(
            cookie_name(FlowKind::Oauth, state, false),
            "hubgate-oauth-abcdefghijklmnox"
        );
        assert_eq!(
            cookie_name(FlowKind::Lti, "\u{1F600}\u{1F600}", true),
            "__Host-hubgate-lti-"
        );
    }
}

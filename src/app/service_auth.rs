//! Who may call the worker's service endpoints (Assignment and Grade
//! Services): a hub service presenting `LTI13_SERVICE_SECRET`, or a
//! JupyterHub API token the hub itself says belongs to a service or an
//! admin. The token goes only to the hub, on `/hub/api/user`.

use crate::http::{IncomingRequest, RequestCtx};
use crate::lti::services::ServiceError;
use crate::lti::LtiSettings;
use crate::ports::Io;
use crate::proxy::{self, ProxySettings};
use serde::Deserialize;
use subtle::ConstantTimeEq;

#[derive(Deserialize)]
struct Owner {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    admin: bool,
}

/// The caller, for the log: `service-secret`, `service:<name>` or `admin:<name>`.
pub async fn caller(
    lti: &LtiSettings,
    hub: &ProxySettings,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<String, ServiceError> {
    let auth = req
        .headers
        .get("authorization")
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or(ServiceError::Unauthenticated)?;
    let (scheme, credential) = auth.split_once(' ').ok_or(ServiceError::Unauthenticated)?;
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if let Some(secret) = &lti.service_secret {
            if bool::from(secret.expose().as_bytes().ct_eq(credential.as_bytes())) {
                return Ok("service-secret".into());
            }
        }
    } else if !scheme.eq_ignore_ascii_case("token") {
        return Err(ServiceError::Unauthenticated);
    }
    // JupyterHub takes its API tokens as `token X` and `Bearer X` alike.
    let resp = io
        .fetch_hub(proxy::hub_token_owner_request(
            hub,
            ctx,
            &format!("token {credential}"),
        ))
        .await
        .map_err(|e| ServiceError::Hub(e.to_string()))?;
    match resp.status {
        200 => {}
        401 | 403 => return Err(ServiceError::Unauthenticated),
        s => {
            return Err(ServiceError::Hub(format!(
                "/hub/api/user answered status {s}"
            )))
        }
    }
    let owner: Owner = crate::json::object(&resp.body)
        .map_err(|e| ServiceError::Hub(format!("/hub/api/user is not a JSON object: {e}")))?;
    let name = owner.name.unwrap_or_default();
    match owner.kind.as_deref() {
        Some("service") => Ok(format!("service:{name}")),
        Some("user") | None if owner.admin => Ok(format!("admin:{name}")),
        _ => Err(ServiceError::Forbidden(format!(
            "{name:?} is neither a hub service nor an admin"
        ))),
    }
}

//! `/hub/lti13/config`: the JSON an LMS administrator pastes (or whose URL
//! they give) to register the tool — ltiauthenticator's fields, with
//! Canvas's `extensions`/`placements`, plus `redirect_uris`.

use super::LtiSettings;
use crate::http::IncomingRequest;
use serde_json::{json, Value};

/// The public origin: the request's host, with the scheme from the first
/// `X-Forwarded-Proto` value (`"https,http"` → https) when a proxy in front
/// terminated TLS. It only ever upgrades to https, never downgrades.
pub fn public_origin(req: &IncomingRequest) -> String {
    let forwarded = req
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut u = req.url.clone();
    if forwarded.as_deref() == Some("https") && u.scheme() == "http" {
        let _ = u.set_scheme("https");
        // The port was the plain-http one.
        if is_default_http_port(&u) {
            let _ = u.set_port(None);
        }
    }
    u.origin().ascii_serialization()
}

fn is_default_http_port(u: &url::Url) -> bool {
    matches!(u.port(), None | Some(80))
}

pub fn build(cfg: &LtiSettings, origin: &str, base_path: &str) -> Value {
    let hub = format!("{origin}{base_path}hub/");
    let login = format!("{origin}{base_path}hub/lti13/oauth_login");
    let launch = format!("{origin}{base_path}hub/lti13/oauth_callback");
    let jwks = format!("{origin}{base_path}hub/lti13/jwks");
    let domain = url::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let custom_fields = json!({ "email": "$Person.email.primary" });
    let mut placements = vec![json!({
        "placement": "course_navigation",
        "message_type": "LtiResourceLinkRequest",
        "windowTarget": "_blank",
        "target_link_uri": hub,
        "text": cfg.tool_name,
        "enabled": true,
        "default": "enabled",
    })];
    // Deep linking needs the tool's key to sign its response.
    if cfg.tool_key.is_some() {
        placements.push(json!({
            "placement": "link_selection",
            "message_type": "LtiDeepLinkingRequest",
            "target_link_uri": launch,
            "text": cfg.tool_name,
        }));
        placements.push(json!({
            "placement": "assignment_selection",
            "message_type": "LtiDeepLinkingRequest",
            "target_link_uri": launch,
            "text": cfg.tool_name,
        }));
    }
    // The services' scopes, when the tool can sign its token requests.
    let scopes: Vec<&str> = if cfg.tool_key.is_some() {
        vec![
            crate::lti::services::nrps::SCOPE,
            crate::lti::services::ags::SCOPE_LINEITEM,
            crate::lti::services::ags::SCOPE_LINEITEM_READ,
            crate::lti::services::ags::SCOPE_SCORE,
        ]
    } else {
        Vec::new()
    };
    json!({
        "title": cfg.tool_name,
        "description": cfg.tool_description,
        "oidc_initiation_url": login,
        "target_link_uri": hub,
        "redirect_uris": [launch],
        "scopes": scopes,
        "public_jwk_url": jwks,
        "custom_fields": custom_fields,
        "extensions": [{
            "platform": "canvas.instructure.com",
            "domain": domain,
            "tool_id": "hubgate",
            "privacy_level": "public",
            "settings": {
                "text": cfg.tool_name,
                "platform": "canvas.instructure.com",
                "placements": placements,
            },
        }],
    })
}

//! RFC 6749 4.1.1 authorization request, with RFC 7636 PKCE (S256) and an
//! OpenID Connect nonce; state and nonce live in the per-flow cookie.

use super::settings::OAuthSettings;
use crate::session::flow_cookie::OAuthFlow;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};

/// The random values one flow needs, drawn by the caller (injected randomness).
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// RFC 7636 4.2: code_challenge = BASE64URL(SHA256(code_verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The authorize URL to send the browser to, and the flow to remember.
pub fn start(
    cfg: &OAuthSettings,
    authorize_endpoint: &str,
    redirect_uri: &str,
    next: String,
    secrets: FlowSecrets,
) -> Result<(String, OAuthFlow), url::ParseError> {
    let mut url = url::Url::parse(authorize_endpoint)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &cfg.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", &secrets.state)
            .append_pair("code_challenge", &pkce_challenge(&secrets.pkce_verifier))
            .append_pair("code_challenge_method", "S256");
        if !cfg.scopes.is_empty() {
            q.append_pair("scope", &cfg.scopes.join(" "));
        }
        if cfg.issuer.is_some() {
            q.append_pair("nonce", &secrets.nonce);
        }
        for (k, v) in &cfg.provider().authorize_params(cfg) {
            q.append_pair(k, v);
        }
    }
    let flow = OAuthFlow {
        state: secrets.state,
        nonce: secrets.nonce,
        pkce_verifier: secrets.pkce_verifier,
        next,
        provider: cfg.name.clone(),
    };
    Ok((url.to_string(), flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}

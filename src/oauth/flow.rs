//! The two OAuth routes end to end: `/hub/oauth_login` and
//! `/hub/oauth_callback`. I/O goes through `Io`; decisions are in the
//! sibling modules.

use super::{authorize, discovery, id_token, token, userinfo, OAuthError};
use crate::access;
use crate::app::{start_session, App, RequestCtx};
use crate::claims::ClaimMap;
use crate::cookies::Context;
use crate::flow_state::{self, FlowKind};
use crate::http::{IncomingRequest, Response};
use crate::identity::{Identity, LoginMethod};
use crate::io::{random_token, Io, KvNamespace};
use crate::redirect;

fn redirect_uri(app: &App, ctx: &RequestCtx) -> String {
    let cfg = &app.config;
    match cfg.oauth.as_ref().and_then(|o| o.callback_url.as_ref()) {
        Some(u) => u.to_string(),
        None => format!("{}{}hub/oauth_callback", ctx.origin, cfg.base_path),
    }
}

pub async fn login(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, OAuthError> {
    let oauth = app.config.oauth.as_ref().ok_or(OAuthError::NotConfigured)?;
    let next = redirect::next_or_home(req.query_param("next").as_deref(), &app.config.base_path)
        .map_err(|_| OAuthError::UnsafeNext)?;
    let endpoints = app.discovery.endpoints(oauth, io).await?;
    let secrets = authorize::FlowSecrets {
        state: random_token(io, 32),
        nonce: random_token(io, 32),
        pkce_verifier: random_token(io, 32),
    };
    let (url, flow) = authorize::start(
        oauth,
        &endpoints.authorize,
        &redirect_uri(app, ctx),
        next,
        secrets,
    )
    .map_err(|e| OAuthError::Discovery(format!("authorize endpoint: {e}")))?;
    let cookie = flow_state::mint(
        &app.config.session,
        &flow,
        ctx.https,
        Context::TopLevel,
        io.now(),
    );
    Ok(Response::redirect(&url).with_cookie(cookie))
}

pub async fn callback(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, OAuthError> {
    let cfg = &app.config;
    let oauth = cfg.oauth.as_ref().ok_or(OAuthError::NotConfigured)?;
    let now = io.now();
    // RFC 6749 10.12: the state is checked before anything else happens.
    let state = req.query_param("state");
    let flow = flow_state::take(
        &cfg.session,
        FlowKind::Oauth,
        state.as_deref(),
        &req.headers,
        ctx.https,
        now,
    )?;
    // A state is good for one callback; KV is eventually consistent, so this
    // narrows replay to the propagation window (the flow cookie is cleared too).
    let key = crate::io::one_time_key("oauth-state", &flow.state);
    if io.kv_get(KvNamespace::Nonces, &key).await.is_some() {
        return Err(OAuthError::StateReplayed);
    }
    io.kv_put(KvNamespace::Nonces, &key, "1", flow_state::FLOW_TTL)
        .await;

    if let Some(error) = req.query_param("error") {
        return Err(OAuthError::ProviderError {
            access_denied: error == "access_denied",
            error,
        });
    }
    // RFC 9207: when the provider names itself, it must be the expected one.
    if let (Some(got), Some(expected)) = (req.query_param("iss"), oauth.issuer.as_ref()) {
        if got.trim_end_matches('/') != expected {
            return Err(OAuthError::IssuerParamMismatch {
                got,
                expected: expected.clone(),
            });
        }
    }
    let code = req
        .query_param("code")
        .filter(|c| !c.is_empty())
        .ok_or(OAuthError::MissingCode)?;
    let endpoints = app.discovery.endpoints(oauth, io).await?;
    let verifier = flow.pkce_verifier.clone().unwrap_or_default();
    let token_req = token::request(
        oauth,
        &endpoints.token,
        &code,
        &verifier,
        &redirect_uri(app, ctx),
    );
    let resp = io
        .fetch(token_req)
        .await
        .map_err(|e| OAuthError::TokenEndpoint(e.to_string()))?;
    let tokens = token::parse(&resp)?;

    let mut claims = ClaimMap::new();
    let mut id_sub = None;
    if let Some(issuer) = &oauth.issuer {
        let raw = tokens
            .id_token
            .as_deref()
            .ok_or(OAuthError::MissingIdToken)?;
        let untrusted = id_token::UntrustedIdToken(raw);
        let jwks_url = endpoints
            .jwks
            .as_deref()
            .ok_or_else(|| OAuthError::Discovery("no jwks_uri".into()))?;
        let keys = app
            .keys
            .get(io, jwks_url, untrusted.kid().as_deref())
            .await?;
        let algs = discovery::accepted_algs(&endpoints);
        let verified = untrusted
            .verify(
                &keys,
                &id_token::Expectations {
                    issuer,
                    client_id: &oauth.client_id,
                    nonce: &flow.nonce,
                    algs: &algs,
                    now,
                    leeway: oauth.leeway,
                },
            )
            .map_err(|e| match e {
                id_token::IdTokenError::Jwt(j) => OAuthError::IdToken(j),
                id_token::IdTokenError::Claims(c) => OAuthError::IdTokenClaims(c),
            })?;
        id_sub = Some(verified.sub);
        claims = verified.claims;
    }
    if let Some(url) = &endpoints.userinfo {
        let resp = io
            .fetch(userinfo::request(url, &tokens.access_token))
            .await
            .map_err(|e| OAuthError::Userinfo(e.to_string()))?;
        // Userinfo adds to (and may refresh) the verified id_token claims.
        claims.extend(userinfo::parse(&resp, id_sub.as_deref())?);
    }
    let claims = serde_json::Value::Object(claims);
    let raw_name = access::string_claim(&claims, &oauth.username_key).ok_or_else(|| {
        OAuthError::NoUsername {
            key: oauth.username_key.clone(),
            present: claims
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
        }
    })?;
    let username = access::normalise_username(&raw_name, &cfg.access);
    let groups = access::groups_claim(&claims, &cfg.access.groups_claim);
    let admin = access::decide(&cfg.access, &username, &groups)?;
    let identity = Identity {
        username,
        email: access::string_claim(&claims, "email"),
        groups,
        admin,
        method: LoginMethod::Oauth,
        auth_state: crate::assertion::select_auth_state(&claims, &cfg.auth_state_claims),
    };
    let mut resp = start_session(app, req, ctx, &identity, &flow.next, Context::TopLevel, io).await;
    resp.headers.push(
        "Set-Cookie",
        flow_state::clear(FlowKind::Oauth, &flow.state, ctx.https, Context::TopLevel),
    );
    Ok(resp)
}

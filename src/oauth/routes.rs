//! The two OAuth routes' I/O: `/hub/oauth_login` and `/hub/oauth_callback`.
//! The callback returns what it established (`LoggedIn`); `app` alone
//! turns that into a session.

use super::backchannel::{self, BackchannelError, LogoutTokenError, UntrustedLogoutToken};
use super::extras;
use super::id_token::{self, UntrustedIdToken};
use super::metadata::{self, Discovery};
use super::provider::TokenExchange;
use super::{authorize, OAuthError, OAuthSettings};
use crate::cache::key_sets::KeyCache;
use crate::cache::CacheSettings;
use crate::cookies::Context;
use crate::http::{IncomingRequest, RequestCtx, Response};
use crate::identity::from_claims::{Asserted, Vouch};
use crate::identity::LoginMethod;
use crate::jose::claims::ClaimMap;
use crate::one_time::{self, Kind, OneTimeKey};
use crate::ports::{random_token, Io};
use crate::secret::RefreshToken;
use crate::session::flow_cookie::{self, Flow, FLOW_TTL};
use crate::session::revocation::{ProviderRefs, Revoke};
use crate::session::SessionSettings;
use crate::url_policy;

/// What the OAuth routes need, and nothing else.
pub struct OAuthCtx<'a> {
    pub settings: &'a OAuthSettings,
    pub session: &'a SessionSettings,
    pub cache: &'a CacheSettings,
    pub keys: &'a KeyCache,
    pub discovery: &'a Discovery,
    pub groups_claim: &'a str,
    pub auth_state_claims: &'a [String],
}

/// A verified login: who the provider says it is, and where to go next.
#[derive(Debug)]
pub struct LoggedIn {
    pub asserted: Asserted,
    pub next: String,
    /// OpenID Connect: the provider's session, for logout at the provider
    /// and Back-Channel Logout.
    pub provider: Option<ProviderLogin>,
}

/// What an OpenID Connect login leaves for its session's end.
#[derive(Debug, Clone)]
pub struct ProviderLogin {
    pub refs: ProviderRefs,
    /// The verified id_token as received: the `id_token_hint` of
    /// RP-Initiated Logout.
    pub id_token: Option<String>,
    /// Kept sealed in the session store (`session::seal`).
    pub refresh_token: Option<RefreshToken>,
    pub expires_in: Option<u64>,
}

pub async fn login(
    c: &OAuthCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, OAuthError> {
    let next = url_policy::next_or_home(req.query_param("next").as_deref(), &ctx.base_path)
        .map_err(|_| OAuthError::UnsafeNext)?;
    let endpoints = c.discovery.endpoints(c.settings, c.cache, io).await?;
    let secrets = authorize::FlowSecrets {
        state: random_token(io, 32),
        nonce: random_token(io, 32),
        pkce_verifier: random_token(io, 32),
    };
    let (url, flow) = authorize::start(
        c.settings,
        &endpoints.authorize,
        &c.settings.redirect_uri(&ctx.origin, &ctx.base_path),
        next,
        secrets,
    )
    .map_err(|e| OAuthError::Discovery(format!("authorize endpoint: {e}")))?;
    let cookie = flow_cookie::mint(
        c.session,
        &Flow::Oauth(flow),
        ctx.https,
        Context::TopLevel,
        io.now(),
    );
    Ok(Response::redirect(&url).with_cookie(cookie))
}

pub async fn callback(
    c: &OAuthCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<LoggedIn, OAuthError> {
    let oauth = c.settings;
    let provider = oauth.provider();
    // RFC 6749 10.12: the state is checked before anything else happens.
    let state = req.query_param("state");
    let flow = flow_cookie::take_oauth(
        c.session,
        state.as_deref(),
        &req.headers,
        ctx.https,
        io.now(),
    )?;
    // Mix-up defence across providers: a login finishes at the callback of
    // the provider that started it.
    if flow.provider != oauth.name {
        return Err(OAuthError::WrongProvider {
            started: flow.provider,
            callback: oauth.name.clone(),
        });
    }
    // A state is good for one callback: checked and recorded in one step.
    one_time::take(
        io,
        &OneTimeKey::new(Kind::OAuthState, &flow.state),
        FLOW_TTL,
    )
    .await?;
    let code = authorization_code(oauth, req)?;
    let endpoints = c.discovery.endpoints(oauth, c.cache, io).await?;
    let token_req = provider.token_request(
        oauth,
        &TokenExchange {
            endpoint: &endpoints.token,
            code: &code,
            pkce_verifier: &flow.pkce_verifier,
            redirect_uri: &oauth.redirect_uri(&ctx.origin, &ctx.base_path),
        },
    );
    let resp = io
        .fetch(token_req)
        .await
        .map_err(|e| OAuthError::TokenEndpoint(e.to_string()))?;
    let tokens = provider.parse_token_response(&resp)?;
    let FromTokens {
        asserted,
        sub: id_sub,
        sid,
    } = from_tokens(c, &endpoints, &tokens, Some(&flow.nonce), io).await?;
    // The provider's session: OpenID Connect's (issuer, sub, sid), or for
    // plain OAuth 2.0 the token endpoint and the username, which is all a
    // refresh needs to recognise the user.
    let provider = match (&oauth.issuer, id_sub) {
        (Some(issuer), Some(sub)) => Some(ProviderRefs::new(issuer, &sub, sid.as_deref())),
        (None, _) if tokens.refresh_token.is_some() => Some(ProviderRefs::new(
            &endpoints.token,
            &asserted.raw_username,
            None,
        )),
        _ => None,
    }
    .map(|mut refs| ProviderLogin {
        refs: {
            refs.p = oauth.name.clone();
            refs
        },
        id_token: tokens.id_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        expires_in: tokens.expires_in,
    });
    Ok(LoggedIn {
        asserted,
        next: flow.next,
        provider,
    })
}

/// What a token response says about the user.
pub(super) struct FromTokens {
    pub asserted: Asserted,
    /// The id_token's `sub` and `sid` (OpenID Connect).
    pub sub: Option<String>,
    pub sid: Option<String>,
}

/// The verified id_token (OpenID Connect; `nonce` for a login, none for a
/// refresh), userinfo on top, through the provider's hooks.
pub(super) async fn from_tokens(
    c: &OAuthCtx<'_>,
    endpoints: &metadata::Endpoints,
    tokens: &super::token::TokenResponse,
    nonce: Option<&str>,
    io: &impl Io,
) -> Result<FromTokens, OAuthError> {
    let provider = c.settings.provider();
    let (mut claims, sub) = match &c.settings.issuer {
        Some(issuer) => verified_id_token(c, endpoints, tokens, issuer, nonce, io).await?,
        None => (ClaimMap::new(), None),
    };
    // The id_token's `sid` (Back-Channel Logout names sessions by it).
    let sid = claims
        .get("sid")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    if let Some(url) = &endpoints.userinfo {
        let resp = io
            .fetch(provider.userinfo_request(c.settings, url, &tokens.access_token))
            .await
            .map_err(|e| OAuthError::Userinfo(e.to_string()))?;
        // Userinfo adds to (and may refresh) the verified id_token claims.
        claims.extend(provider.parse_userinfo(&resp, sub.as_deref())?);
    }
    let so_far = serde_json::Value::Object(claims.clone());
    for extra in provider.extra_requests(c.settings, &so_far, &tokens.access_token) {
        let value = extras::fetch(io, &extra).await?;
        claims.insert(extra.name, value);
    }
    let sub = sub.or_else(|| {
        claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    });
    Ok(FromTokens {
        asserted: asserted(c, serde_json::Value::Object(claims))?,
        sub,
        sid,
    })
}

/// RFC 6749 4.1.2: the authorization response, once the state is known good:
/// a provider error, RFC 9207's `iss` (mix-up defence), the code.
fn authorization_code(oauth: &OAuthSettings, req: &IncomingRequest) -> Result<String, OAuthError> {
    if let Some(error) = req.query_param("error") {
        return Err(OAuthError::ProviderError {
            access_denied: error == "access_denied",
            error,
        });
    }
    if let (Some(got), Some(expected)) = (req.query_param("iss"), oauth.issuer.as_ref()) {
        let templated = oauth
            .discovery_issuer
            .as_deref()
            .is_some_and(|t| issuer_fits_template(t, &got));
        if &got != expected && !templated {
            return Err(OAuthError::IssuerParamMismatch {
                got,
                expected: expected.clone(),
            });
        }
    }
    req.query_param("code")
        .filter(|c| !c.is_empty())
        .ok_or(OAuthError::MissingCode)
}

/// A multi-tenant issuer (`…/{tenantid}/v2.0`) filled with one tenant id.
fn issuer_fits_template(template: &str, got: &str) -> bool {
    let Some((head, tail)) = template.split_once(super::provider::azuread::TENANT_PLACEHOLDER)
    else {
        return false;
    };
    got.strip_prefix(head)
        .and_then(|rest| rest.strip_suffix(tail))
        .is_some_and(|tid| {
            !tid.is_empty() && tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// OIDC Core 3.1.3.7 through `id_token::verify`, with the issuer's key set.
async fn verified_id_token(
    c: &OAuthCtx<'_>,
    endpoints: &metadata::Endpoints,
    tokens: &super::token::TokenResponse,
    issuer: &str,
    nonce: Option<&str>,
    io: &impl Io,
) -> Result<(ClaimMap, Option<String>), OAuthError> {
    let raw = tokens
        .id_token
        .as_deref()
        .ok_or(OAuthError::MissingIdToken)?;
    let untrusted = UntrustedIdToken(raw);
    let jwks_url = endpoints
        .jwks
        .as_deref()
        .ok_or_else(|| OAuthError::Discovery("no jwks_uri".into()))?;
    let keys = c
        .keys
        .get(io, c.cache, jwks_url, untrusted.kid().as_deref())
        .await?;
    let algs = metadata::accepted_algs(endpoints);
    let issuer = c
        .settings
        .provider()
        .expected_issuer(c.settings, issuer, raw)?;
    let verified = untrusted
        .verify(
            &keys,
            &id_token::Expectations {
                issuer: &issuer,
                client_id: &c.settings.client_id,
                nonce,
                algs: &algs,
                now: io.now(),
                leeway: c.settings.leeway,
            },
        )
        .map_err(|e| match e {
            id_token::IdTokenError::Jwt(j) => OAuthError::IdToken(j),
            id_token::IdTokenError::Claims(c) => OAuthError::IdTokenClaims(c),
        })?;
    let sub = verified.sub().to_string();
    Ok((verified.into_claims(), Some(sub)))
}

/// What the merged claims assert, through the provider's hooks.
fn asserted(c: &OAuthCtx<'_>, claims: serde_json::Value) -> Result<Asserted, OAuthError> {
    let oauth = c.settings;
    let provider = oauth.provider();
    provider.check_claims(oauth, &claims)?;
    let raw_username = provider
        .username(oauth, &claims)
        .ok_or_else(|| OAuthError::NoUsername {
            key: oauth.username_key.clone(),
            present: claims
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
        })?;
    Ok(Asserted {
        method: LoginMethod::Oauth,
        vouch: Vouch::IdentityProvider {
            name: oauth.name.clone(),
        },
        raw_username,
        email: provider.email(&claims),
        groups: provider.groups(oauth, c.groups_claim, &claims),
        auth_state: match &oauth.auth_state_key {
            // `USER_AUTH_STATE_KEY`: the claims under one key, as
            // OAuthenticator's auth_state keeps the user's data.
            Some(key) => {
                let mut m = serde_json::Map::new();
                m.insert(
                    key.clone(),
                    serde_json::Value::Object(provider.auth_state(&claims, c.auth_state_claims)),
                );
                m
            }
            None => provider.auth_state(&claims, c.auth_state_claims),
        },
        allowed_by_provider: provider.allows(oauth, &claims),
    })
}

/// OIDC Back-Channel Logout 1.0, 2.5-2.8: the logout token, verified, its
/// `jti` taken once; what it revokes (the caller records it).
pub async fn backchannel_logout(
    c: &OAuthCtx<'_>,
    req: &IncomingRequest,
    io: &impl Io,
) -> Result<Revoke, BackchannelError> {
    let oauth = c.settings;
    let issuer = oauth
        .issuer
        .as_deref()
        .ok_or(BackchannelError::NotConfigured)?;
    let body = req.body.as_deref().unwrap_or_default();
    let raw = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
        .ok_or(BackchannelError::MissingToken)?;
    let untrusted = UntrustedLogoutToken(&raw);
    let endpoints = c
        .discovery
        .endpoints(oauth, c.cache, io)
        .await
        .map_err(|e| BackchannelError::Discovery(e.to_string()))?;
    let jwks_url = endpoints
        .jwks
        .as_deref()
        .ok_or_else(|| BackchannelError::Discovery("no jwks_uri".into()))?;
    let keys = c
        .keys
        .get(io, c.cache, jwks_url, untrusted.kid().as_deref())
        .await?;
    let algs = metadata::accepted_algs(&endpoints);
    let logout = untrusted.verify(
        &keys,
        &backchannel::Expectations {
            issuer,
            client_id: &oauth.client_id,
            algs: &algs,
            now: io.now(),
            leeway: oauth.leeway,
        },
    )?;
    // Step 8: a logout token is good once.
    one_time::take(
        io,
        &OneTimeKey::new(Kind::LogoutJti, &format!("{issuer} {}", logout.jti)),
        backchannel::MAX_AGE + 2 * oauth.leeway,
    )
    .await?;
    Revoke::from_logout(issuer, logout.sub.as_deref(), logout.sid.as_deref())
        .ok_or(BackchannelError::Token(LogoutTokenError::NoSubject))
}

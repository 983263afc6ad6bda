//! OpenID Connect RP-Initiated Logout 1.0, 2: the request that ends the
//! user's session at the provider and brings the browser back.

/// The logout request (2.1): `id_token_hint` when the session kept its
/// id_token, always `client_id` (so the provider can check
/// `post_logout_redirect_uri` without the hint). `None` when the endpoint
/// is not a URL.
pub fn end_session_url(
    endpoint: &str,
    client_id: &str,
    id_token_hint: Option<&str>,
    post_logout_redirect_uri: &str,
) -> Option<String> {
    let mut url = url::Url::parse(endpoint).ok()?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(hint) = id_token_hint {
            q.append_pair("id_token_hint", hint);
        }
        q.append_pair("client_id", client_id);
        q.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
    }
    Some(url.into())
}

/// A provider's own logout URL that predates RP-Initiated Logout (Auth0's
/// `/v2/logout`): `client_id` and `returnTo`.
pub fn provider_logout_url(endpoint: &str, client_id: &str, return_to: &str) -> Option<String> {
    let mut url = url::Url::parse(endpoint).ok()?;
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("returnTo", return_to);
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_endpoints_own_query_and_encodes_the_rest() {
        let u = end_session_url(
            "https://idp.example/logout?tenant=a",
            "hub client",
            Some("h.i.nt"),
            "https://hub.example/_hubgate/signed_out",
        )
        .unwrap();
        assert_eq!(
            u,
            "https://idp.example/logout?tenant=a&id_token_hint=h.i.nt&client_id=hub+client&post_logout_redirect_uri=https%3A%2F%2Fhub.example%2F_hubgate%2Fsigned_out"
        );
        assert!(end_session_url("not a url", "c", None, "x").is_none());
    }
}

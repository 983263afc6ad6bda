//! (method, path) → the route that answers it. The router owns which
//! routes exist, where they live under `BASE_URL`, which methods each
//! allows (the `Allow` header comes from here), and which read a form body
//! (the edge reads a body because the route says so).

use crate::http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Login,
    OAuthLogin,
    OAuthCallback,
    Logout,
    LtiLogin,
    LtiLaunch,
    /// The picker's answer after a deep linking launch.
    LtiDeepLink,
    LtiConfig,
    LtiJwks,
    /// LTI Dynamic Registration: the URL an LMS administrator pastes.
    LtiRegister,
    /// Whether the flow cookie came back (the Platform Storage page asks).
    LtiFlowCheck,
    /// Assignment and Grade Services for hub services: line items, scores.
    LtiAgsLineItems,
    LtiAgsScores,
    /// OpenID Connect Back-Channel Logout: the provider posts a logout token.
    BackchannelLogout,
    /// Where the provider sends the browser after logging out there.
    SignedOut,
    Health,
    AssertionJwks,
    /// Everything else goes to the hub (with a session, or an API token).
    Proxy,
}

/// Every route the worker answers itself, with its path under `BASE_URL`.
const PATHS: &[(&str, Route)] = &[
    ("hub/login", Route::Login),
    ("hub/oauth_login", Route::OAuthLogin),
    ("hub/oauth_callback", Route::OAuthCallback),
    ("hub/logout", Route::Logout),
    ("hub/lti13/oauth_login", Route::LtiLogin),
    ("hub/lti13/oauth_callback", Route::LtiLaunch),
    ("hub/lti13/deep_link", Route::LtiDeepLink),
    ("hub/lti13/config", Route::LtiConfig),
    ("hub/lti13/jwks", Route::LtiJwks),
    ("hub/lti13/register", Route::LtiRegister),
    ("_hubgate/lti/flow_check", Route::LtiFlowCheck),
    ("_hubgate/lti/ags/lineitems", Route::LtiAgsLineItems),
    ("_hubgate/lti/ags/scores", Route::LtiAgsScores),
    ("_hubgate/oidc/backchannel_logout", Route::BackchannelLogout),
    ("_hubgate/signed_out", Route::SignedOut),
    ("_hubgate/health", Route::Health),
    ("_hubgate/jwks.json", Route::AssertionJwks),
];

/// Answered at the origin's root whatever `BASE_URL` is (the hub
/// authenticator looks for the assertion keys there by default).
const ROOT_PATHS: &[(&str, Route)] = &[
    ("/_hubgate/health", Route::Health),
    ("/_hubgate/jwks.json", Route::AssertionJwks),
];

const GET: &[Method] = &[Method::Get, Method::Head];
const GET_POST: &[Method] = &[Method::Get, Method::Head, Method::Post];
const POST: &[Method] = &[Method::Post];

impl Route {
    /// The methods this route answers; `None`: any (the hub decides).
    pub fn methods(self) -> Option<&'static [Method]> {
        match self {
            Route::Proxy => None,
            Route::Logout | Route::LtiLogin | Route::LtiAgsLineItems => Some(GET_POST),
            Route::LtiLaunch
            | Route::LtiDeepLink
            | Route::LtiAgsScores
            | Route::BackchannelLogout => Some(POST),
            _ => Some(GET),
        }
    }

    pub fn allows(self, m: Method) -> bool {
        self.methods().is_none_or(|ms| ms.contains(&m))
    }

    /// The `Allow` header of a 405.
    pub fn allow_header(self) -> String {
        let names: Vec<&str> = self
            .methods()
            .unwrap_or(GET_POST)
            .iter()
            .map(|m| match m {
                Method::Get => "GET",
                Method::Head => "HEAD",
                Method::Post => "POST",
                Method::Other => "",
            })
            .filter(|n| !n.is_empty())
            .collect();
        names.join(", ")
    }

    /// The route reads a small body (a form, or the JSON of a service call).
    pub fn reads_body(self, m: Method) -> bool {
        m == Method::Post
            && matches!(
                self,
                Route::LtiLogin
                    | Route::LtiLaunch
                    | Route::LtiDeepLink
                    | Route::LtiAgsLineItems
                    | Route::LtiAgsScores
                    | Route::BackchannelLogout
            )
    }

    /// Its path under `BASE_URL` (without the base).
    pub fn path(self) -> Option<&'static str> {
        PATHS.iter().find(|(_, r)| *r == self).map(|(p, _)| *p)
    }
}

pub fn route(base_path: &str, path: &str) -> Route {
    if let Some((_, r)) = ROOT_PATHS.iter().find(|(p, _)| *p == path) {
        return *r;
    }
    let Some(rest) = path.strip_prefix(base_path) else {
        return Route::Proxy;
    };
    let rest = rest.trim_end_matches('/');
    PATHS
        .iter()
        .find(|(p, _)| *p == rest)
        .map_or_else(|| named_provider_route(rest), |(_, r)| *r)
}

/// The routes of an `OAUTH_PROVIDERS` entry carry its name as a last
/// segment; the name is `provider_name`'s to read.
const PER_PROVIDER: &[Route] = &[
    Route::OAuthLogin,
    Route::OAuthCallback,
    Route::BackchannelLogout,
];

fn named_provider_route(rest: &str) -> Route {
    for r in PER_PROVIDER {
        let Some(p) = r.path() else { continue };
        if let Some(name) = rest.strip_prefix(p).and_then(|n| n.strip_prefix('/')) {
            if !name.is_empty() && !name.contains('/') {
                return *r;
            }
        }
    }
    Route::Proxy
}

/// The provider a per-provider route names (`""`: the top-level one).
pub fn provider_name<'a>(base_path: &str, path: &'a str, r: Route) -> &'a str {
    let rest = path
        .strip_prefix(base_path)
        .unwrap_or(path)
        .trim_end_matches('/');
    r.path()
        .and_then(|p| rest.strip_prefix(p))
        .and_then(|n| n.strip_prefix('/'))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_paths_under_base() {
        assert_eq!(route("/", "/hub/oauth_callback"), Route::OAuthCallback);
        assert_eq!(route("/", "/hub/login/"), Route::Login);
        assert_eq!(
            route("/jh/", "/jh/hub/lti13/oauth_callback"),
            Route::LtiLaunch
        );
        assert_eq!(route("/jh/", "/hub/login"), Route::Proxy);
        assert_eq!(route("/jh/", "/_hubgate/health"), Route::Health);
        assert_eq!(route("/", "/user/alice/lab"), Route::Proxy);
        assert_eq!(route("/", "/hub/loginx"), Route::Proxy);
    }

    #[test]
    fn a_named_provider_has_its_own_login_callback_and_logout_paths() {
        assert_eq!(
            route("/", "/hub/oauth_callback/github"),
            Route::OAuthCallback
        );
        assert_eq!(route("/", "/hub/oauth_login/github"), Route::OAuthLogin);
        assert_eq!(
            route("/", "/_hubgate/oidc/backchannel_logout/uni"),
            Route::BackchannelLogout
        );
        assert_eq!(route("/", "/hub/oauth_callback/a/b"), Route::Proxy);
        assert_eq!(route("/", "/hub/oauth_callbackx"), Route::Proxy);
        assert_eq!(route("/", "/hub/logout/x"), Route::Proxy);
        assert_eq!(
            provider_name(
                "/jh/",
                "/jh/hub/oauth_callback/github",
                Route::OAuthCallback
            ),
            "github"
        );
        assert_eq!(
            provider_name("/", "/hub/oauth_callback", Route::OAuthCallback),
            ""
        );
    }

    #[test]
    fn assertion_keys_are_answered_outside_base_url() {
        assert_eq!(route("/jh/", "/_hubgate/jwks.json"), Route::AssertionJwks);
        assert_eq!(
            route("/jh/", "/jh/_hubgate/jwks.json"),
            Route::AssertionJwks
        );
    }

    #[test]
    fn methods_and_forms_come_from_the_route() {
        assert!(!Route::LtiLaunch.allows(Method::Get));
        assert_eq!(Route::LtiLaunch.allow_header(), "POST");
        assert_eq!(Route::LtiLogin.allow_header(), "GET, HEAD, POST");
        assert!(Route::LtiLaunch.reads_body(Method::Post));
        assert!(!Route::Proxy.reads_body(Method::Post));
        assert!(Route::Proxy.allows(Method::Other));
        for (p, r) in PATHS {
            assert_eq!(r.path(), Some(*p));
        }
    }
}

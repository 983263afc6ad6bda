//! (method, path) → the route that answers it. Paths are relative to BASE_URL.

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
    Health,
    AssertionJwks,
    /// Everything else goes to the hub (with a session, or an API token).
    Proxy,
}

pub fn route(base_path: &str, path: &str) -> Route {
    let Some(rest) = path.strip_prefix(base_path) else {
        return if path == "/_hubgate/health" {
            Route::Health
        } else {
            Route::Proxy
        };
    };
    match rest.trim_end_matches('/') {
        "hub/login" => Route::Login,
        "hub/oauth_login" => Route::OAuthLogin,
        "hub/oauth_callback" => Route::OAuthCallback,
        "hub/logout" => Route::Logout,
        "hub/lti13/oauth_login" => Route::LtiLogin,
        "hub/lti13/oauth_callback" => Route::LtiLaunch,
        "hub/lti13/deep_link" => Route::LtiDeepLink,
        "hub/lti13/config" => Route::LtiConfig,
        "hub/lti13/jwks" => Route::LtiJwks,
        "_hubgate/health" => Route::Health,
        "_hubgate/jwks.json" => Route::AssertionJwks,
        _ => Route::Proxy,
    }
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
}

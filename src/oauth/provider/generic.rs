//! GenericOAuthenticator's behaviour: any OAuth 2.0 provider with a userdata
//! URL, or any OpenID Connect issuer (Auth0 and Keycloak are this, with
//! their own defaults). Every hook is the trait's default.

use super::Provider;

pub struct Generic;

impl Provider for Generic {}

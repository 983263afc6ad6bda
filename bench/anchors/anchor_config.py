# JupyterHub configuration for the Python "anchors" of the side-by-side
# benchmark (bench/side-by-side.mjs, started by bench/anchors/anchor-hub.mjs):
# JupyterHub 6.1.1 behind configurable-http-proxy (from node_modules) with
# either jupyterhub-ltiauthenticator's LTI13Authenticator or OAuthenticator's
# GenericOAuthenticator. Every value comes from the JSON file named by
# $HUBGATE_ANCHOR_CONFIG. Loopback only.
#
# The proxy's route to the hub goes to `hub_connect_url` (a delay proxy in
# front of the hub's own port, so the bench can put latency between the
# front door and the hub).
import json
import os

c = get_config()  # noqa: F821
with open(os.environ["HUBGATE_ANCHOR_CONFIG"], encoding="utf-8") as f:
    cfg = json.load(f)
work = cfg["work_dir"]

# --- where it listens -------------------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{cfg['port']}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{cfg['hub_port']}"
c.JupyterHub.hub_connect_url = cfg["hub_connect_url"]
c.JupyterHub.db_url = f"sqlite:///{work}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{work}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{work}/jupyterhub.pid"
c.JupyterHub.log_level = cfg.get("log_level", "INFO")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# --- proxy: configurable-http-proxy from node_modules -----------------------
c.ConfigurableHTTPProxy.command = [cfg["chp_command"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{cfg['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = f"{work}/proxy.pid"

# Nobody's server is started by the bench; keep the spawner local anyway.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = f"{work}/home/{{username}}"

# --- authenticator ----------------------------------------------------------
c.Authenticator.allow_all = True
c.Authenticator.enable_auth_state = True  # JUPYTERHUB_CRYPT_KEY is in the env
if cfg["auth"] == "lti13":
    c.JupyterHub.authenticator_class = "ltiauthenticator.lti13.auth.LTI13Authenticator"
    c.LTI13Authenticator.issuer = cfg["lti_issuer"]
    c.LTI13Authenticator.client_id = [cfg["lti_client_id"]]
    c.LTI13Authenticator.authorize_url = cfg["lti_authorize_url"]
    c.LTI13Authenticator.jwks_endpoint = cfg["lti_jwks_endpoint"]
    c.LTI13Authenticator.username_key = "email"
elif cfg["auth"] == "generic-oauth":
    c.JupyterHub.authenticator_class = "oauthenticator.generic.GenericOAuthenticator"
    c.GenericOAuthenticator.client_id = cfg["oauth_client_id"]
    c.GenericOAuthenticator.client_secret = cfg["oauth_client_secret"]
    c.GenericOAuthenticator.oauth_callback_url = cfg["oauth_callback_url"]
    c.GenericOAuthenticator.authorize_url = cfg["oauth_authorize_url"]
    c.GenericOAuthenticator.token_url = cfg["oauth_token_url"]
    c.GenericOAuthenticator.userdata_url = cfg["oauth_userdata_url"]
    c.GenericOAuthenticator.scope = ["openid", "profile", "email"]
    c.GenericOAuthenticator.username_claim = "preferred_username"
    c.GenericOAuthenticator.basic_auth = True
    c.GenericOAuthenticator.enable_pkce = True
else:
    raise ValueError(f"unknown auth {cfg['auth']!r}")

# JupyterHub configuration used by tests/e2e/support/jupyterhub.mjs (the
# real-hub e2e suite and `npm run dev:jupyterhub`). Every value comes from the
# JSON file named by $HUBGATE_E2E_HUB_CONFIG, which jupyterhub.mjs writes.
#
# Loopback only: the proxy (configurable-http-proxy from node_modules) listens
# on 127.0.0.1:<port>, the hub's own API on another 127.0.0.1 port, and the
# single-user servers (SimpleLocalProcessSpawner, running as the current user)
# on free 127.0.0.1 ports.
import json
import os

c = get_config()  # noqa: F821
with open(os.environ["HUBGATE_E2E_HUB_CONFIG"], encoding="utf-8") as f:
    cfg = json.load(f)
work = cfg["work_dir"]

# --- where it listens -------------------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{cfg['port']}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{cfg['hub_port']}"
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
# debug: CHP logs every request it proxies ("PROXY WEB /path to …"), which
# the suite reads to show that a refused user never reached the hub.
c.ConfigurableHTTPProxy.debug = True

# --- single-user servers ----------------------------------------------------
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = f"{work}/home/{{username}}"
c.Spawner.cmd = [cfg["singleuser_command"]]
# The suite runs as root in CI; jupyter_server refuses root without this.
c.Spawner.args = ["--allow-root", "--ServerApp.ip=127.0.0.1"]
c.Spawner.debug = bool(cfg.get("singleuser_debug"))
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
c.Spawner.environment = {
    # jupyterhub.mjs finds leftover processes of this hub by this marker.
    "HUBGATE_E2E_HUB_ID": cfg["hub_id"],
    "JUPYTER_PLATFORM_DIRS": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}

# --- authenticator ----------------------------------------------------------
if cfg["auth"] == "hubgate":
    c.JupyterHub.authenticator_class = "hubgate"
    c.HubgateAuthenticator.issuer = cfg["issuer"]
    c.HubgateAuthenticator.audience = cfg["audience"]
    c.HubgateAuthenticator.jwks_url = cfg["jwks_url"]
    c.Authenticator.enable_auth_state = True  # JUPYTERHUB_CRYPT_KEY is in the env
    c.Authenticator.manage_groups = True
elif cfg["auth"] == "remote-user":
    c.JupyterHub.authenticator_class = (
        "jhub_remote_user_authenticator.remote_user_auth.RemoteUserAuthenticator"
    )
    c.RemoteUserAuthenticator.header_name = cfg.get("header_name", "X-Forwarded-User")
    c.Authenticator.allow_all = True
else:
    raise ValueError(f"unknown auth {cfg['auth']!r}")

if cfg.get("admin_users"):
    c.Authenticator.admin_users = set(cfg["admin_users"])

# --- a service token for the tests (and the dev script) ---------------------
c.JupyterHub.services = [{"name": "hubgate-e2e", "api_token": cfg["api_token"]}]
c.JupyterHub.load_roles = [
    {
        "name": "hubgate-e2e",
        "scopes": [
            "admin:users",
            "admin:servers",
            "admin:groups",
            "admin:auth_state",
            "tokens",
            "access:servers",
        ],
        "services": ["hubgate-e2e"],
    }
]

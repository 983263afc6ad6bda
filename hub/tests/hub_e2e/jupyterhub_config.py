# JupyterHub configuration for tests/test_hub_e2e.py; values come from the environment.
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from memory_proxy import MemoryProxy  # noqa: E402

c = get_config()  # noqa: F821
env = os.environ
work = env["HUBGATE_TEST_WORKDIR"]

c.JupyterHub.authenticator_class = "hubgate"
c.JupyterHub.proxy_class = MemoryProxy
c.JupyterHub.base_url = env.get("HUBGATE_TEST_BASE_URL", "/")
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["HUBGATE_TEST_PUBLIC_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["HUBGATE_TEST_HUB_PORT"])
c.JupyterHub.db_url = f"sqlite:///{work}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{work}/cookie_secret"
c.JupyterHub.pid_file = f"{work}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = False

c.HubgateAuthenticator.issuer = env["HUBGATE_TEST_ISSUER"]
c.HubgateAuthenticator.audience = env["HUBGATE_TEST_AUDIENCE"]
c.HubgateAuthenticator.jwks_url = env["HUBGATE_TEST_JWKS_URL"]
c.Authenticator.enable_auth_state = True
c.Authenticator.manage_groups = True
c.Authenticator.blocked_users = {"mallory"}

c.JupyterHub.services = [{"name": "tester", "api_token": env["HUBGATE_TEST_API_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "tester",
        "scopes": ["admin:users", "admin:groups", "admin:auth_state"],
        "services": ["tester"],
    }
]

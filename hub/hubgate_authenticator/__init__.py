"""hubgate-authenticator: JupyterHub authenticator for the hubgate worker."""

from .authenticator import (
    AssertionRefused,
    HubgateAuthenticator,
    HubgateLoginHandler,
    safe_next_path,
)
from .jwks import JwksCache, JwksUnavailable
from .replay import JtiStore, JtiStoreFull

__all__ = [
    "AssertionRefused",
    "HubgateAuthenticator",
    "HubgateLoginHandler",
    "JtiStore",
    "JtiStoreFull",
    "JwksCache",
    "JwksUnavailable",
    "safe_next_path",
]
__version__ = "0.1.0"

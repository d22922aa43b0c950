"""A local imitation of Salt Edge's Account Information API v6 and its connect widget.

Used by the tests and the demo, never imported by the addon itself. Everything inside
uses relative imports, so it works both as ``account_bank_connection.sandbox`` (the tests)
and as a top-level package (``python -m sandbox`` from the repository root).
"""

from .app import SandboxApp, make_app
from .config import SandboxConfig
from .driver import complete_connect
from .providers import BE_DEMO_IBANS, PROVIDERS, is_valid_iban
from .server import SandboxServer

__all__ = [
    "BE_DEMO_IBANS",
    "PROVIDERS",
    "SandboxApp",
    "SandboxConfig",
    "SandboxServer",
    "complete_connect",
    "is_valid_iban",
    "make_app",
]

"""``python -m sandbox``: the Salt Edge sandbox in the foreground, set up by SANDBOX_* variables.

SANDBOX_HOST, SANDBOX_PORT (8071), SANDBOX_APP_ID, SANDBOX_SECRET, SANDBOX_CLIENT_PUBLIC_KEY
(PEM path: every request must then be signed), SANDBOX_REQUIRE_SIGNATURE, SANDBOX_CALLBACK_URL,
SANDBOX_SIGNING_KEY (PEM path), SANDBOX_STATE (JSON file), SANDBOX_PAGE_SIZE,
SANDBOX_N_TRANSACTIONS, SANDBOX_REFRESH_INTERVAL, SANDBOX_FETCH_SECONDS (3.0),
SANDBOX_SUCCESS_CALLBACKS (2), SANDBOX_RECENT_DAYS (30).
"""

import logging
import sys

from .config import SandboxConfig
from .server import SandboxServer


def main():
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SandboxConfig.from_env()
    server = SandboxServer(config=config, quiet=False)
    server._bind()
    if config.client_public_key_pem is None:
        signing = "not verified (no SANDBOX_CLIENT_PUBLIC_KEY)"
    else:
        signing = "required" if config.require_signature else "verified when sent"
    print(
        f"Salt Edge sandbox on {server.url}\n"
        f"  API:        {server.api_url}  (App-id {config.app_id!r}; signatures {signing})\n"
        f"  public key: {server.url}/sandbox/public_key.pem\n"
        f"  callbacks:  {config.callback_url or 'none'}\n"
        f"  state:      {config.state_path or 'in memory'}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

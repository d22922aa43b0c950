"""``SandboxServer``: the sandbox on a real socket, in a background thread or in the foreground."""

import logging
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import make_app
from .config import SandboxConfig

_logger = logging.getLogger(__name__)


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (tests make thousands); errors are still logged."""

    def log_request(self, code="-", size="-"):
        pass


class SandboxServer:
    """A running sandbox: ``start()``, then ``url``/``api_url``, then ``stop()``.

    Takes the keyword arguments of ``SandboxConfig`` (or ``config=``). ``port=0`` picks a
    free port. Usable as a context manager.
    """

    def __init__(self, config=None, quiet=True, **kwargs):
        self.config = config or SandboxConfig(**kwargs)
        self.app = make_app(self.config)
        self.quiet = quiet
        self._server = None
        self._thread = None

    # --- settings tests read or change -------------------------------------------------
    @property
    def public_key_pem(self):
        """Salt Edge's (the sandbox's) public key, PEM bytes, to verify callbacks."""
        return self.app.public_key_pem

    @property
    def callback_url(self):
        return self.config.callback_url

    @callback_url.setter
    def callback_url(self, value):
        self.config.callback_url = value

    @property
    def port(self):
        return self._server.server_port if self._server else self.config.port

    @property
    def url(self):
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def api_url(self):
        return f"{self.url}/api/v6"

    # --- life cycle ------------------------------------------------------------------
    def _bind(self):
        handler = QuietRequestHandler if self.quiet else None
        self._server = make_server(
            self.config.host, self.config.port, self.app, threaded=True, request_handler=handler
        )

    def start(self):
        """Serve in a daemon thread; returns self once the socket listens."""
        if self._server is None:
            self._bind()
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="sandbox-server", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self):
        """Serve in the calling thread until interrupted (``python -m sandbox``)."""
        if self._server is None:
            self._bind()
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self):
        """Stop serving, stop the fetches under way, wait (briefly) for callbacks under way."""
        self.app.bank.fetches.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.app.sender.wait(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

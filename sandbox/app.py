"""The sandbox's WSGI application: routing, authentication, faults and the request log.

``/api/v6/...`` is the imitation of Salt Edge (``api.py``), ``/connect/<token>`` the
connect widget (``widget.py``), ``/sandbox/...`` the control API for tests (``control.py``).
"""

import collections
import datetime
import hmac
import logging
import math
import time

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import signing, witness
from .api import PAGE_CYCLE, Api
from .bank import Bank
from .callbacks import CallbackSender
from .config import SandboxConfig
from .control import Control
from .errors import ApiError
from .responses import json_response
from .state import State
from .widget import Widget

_logger = logging.getLogger(__name__)

API_PREFIX = "/api/v6"
MAX_EXPIRES_AHEAD = 3600


def signed_url(environ):
    """The full URL as the client sent it: scheme, Host header, raw path and query."""
    scheme = environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        # werkzeug's server hands the request target over as UTF-8 bytes read as latin-1
        # (PEP 3333); undo that to get the bytes that were on the wire.
        try:
            target = raw.encode("latin-1").decode("utf-8").encode("latin-1")
        except (UnicodeEncodeError, UnicodeDecodeError):
            target = raw.encode("latin-1", "replace")
    else:
        query = environ.get("QUERY_STRING", "")
        target = (environ.get("PATH_INFO", "") + (f"?{query}" if query else "")).encode()
    return f"{scheme}://{host}".encode() + target


class SandboxApp:
    """One sandbox: its settings, state, keys and the three groups of routes."""

    def __init__(self, config):
        self.config = config
        self.state = State(config.state_path)
        key_pem = config.signing_key_pem or signing.generate_private_key_pem()
        self.private_key = signing.load_private_key(key_pem)
        witness.record(config.secrets_file, "secret", config.secret)
        witness.record(config.secrets_file, "private key", *witness.pem_body_lines(key_pem))
        self.public_key_pem = signing.public_pem(self.private_key)
        self.client_key = (
            signing.load_public_key(config.client_public_key_pem)
            if config.client_public_key_pem
            else None
        )
        self.sender = CallbackSender(
            config, self.private_key, self.state.now_iso, lambda: self.state.generation
        )
        self.bank = Bank(self.state, config, self.sender.send)
        self.requests_log = collections.deque(maxlen=500)
        self.widget = Widget(self)
        self.api = Api(self)
        self.control = Control(self)
        self.url_map = Map(
            [
                *[
                    Rule(API_PREFIX + path, endpoint=endpoint, methods=methods)
                    for path, endpoint, methods in self.api.ROUTES
                ],
                *self.control.rules(),
                Rule("/connect/<token>", endpoint="widget", methods=["GET", "POST"]),
                Rule("/connect/<token>/continue", endpoint="widget_continue", methods=["GET"]),
                Rule("/", endpoint="index", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX:
            response = self.handle_api(request)
        else:
            response = self.handle_other(request)
        return response(environ, start_response)

    def send_callbacks(self, callbacks):
        self.sender.send(callbacks)

    # --- everything that is not the API ------------------------------------------------
    def handle_other(self, request):
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except HTTPException as error:
            return error
        if endpoint == "widget":
            return self.widget.handle(request, values["token"])
        if endpoint == "widget_continue":
            return self.widget.handle(request, values["token"], request.args.get("step", ""))
        if endpoint == "index":
            return Response(
                "Salt Edge sandbox: API at /api/v6, control API at /sandbox/\n",
                content_type="text/plain",
            )
        return getattr(self.control, endpoint)(request, **values)

    # --- the API -------------------------------------------------------------------
    def handle_api(self, request):
        entry = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sandbox_time": self.state.now_iso(),
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "signed": bool(request.headers.get("Signature")),
            "signature": None,
            "status": None,
            "fault": None,
        }
        self.requests_log.append(entry)
        fault = self._take_fault(request)
        entry["fault"] = fault and fault["kind"]
        if fault and fault["kind"] == "page_cycle":
            request.environ[PAGE_CYCLE] = True
        response = self._fault_response(fault, request)
        if response is None:
            try:
                self._authenticate(request, entry)
                response = self._dispatch_api(request)
            except ApiError as error:
                response = json_response(error.body(), error.status)
            except Exception:
                _logger.exception("sandbox API failure on %s %s", request.method, request.path)
                error = ApiError("InternalServerError", "Something went wrong in the sandbox.")
                response = json_response(error.body(), error.status)
            if fault and fault["kind"] == "truncated":
                body = response.get_data()
                response.set_data(body[: max(1, len(body) // 2)])
        entry["status"] = response.status_code
        return response

    def _dispatch_api(self, request):
        adapter = self.url_map.bind_to_environ(request.environ)
        # ``customers/`` is ``customers`` (Salt Edge's own example posts there); the
        # signature was checked over the URL as sent, slash included.
        path = request.path.rstrip("/") or "/"
        try:
            endpoint, values = adapter.match(path, method=request.method)
        except HTTPException as error:
            message = f"{request.method} {request.path} does not exist."
            raise ApiError("RouteNotFound", message) from error
        return getattr(self.api, endpoint)(request, **values)

    def _authenticate(self, request, entry):
        headers = request.headers
        app_id = headers.get("App-id", "")
        if not app_id or not hmac.compare_digest(app_id, self.config.app_id):
            raise ApiError("ApiKeyNotFound", "No API key was found for the App-id given.")
        secret = headers.get("Secret", "")
        if not secret or not hmac.compare_digest(secret, self.config.secret):
            raise ApiError("WrongSecret", "The Secret does not match the App-id.")
        signature = headers.get("Signature")
        witness.record(self.config.secrets_file, "signature", signature)
        expires_at = headers.get("Expires-at")
        if self.client_key is not None and self.config.require_signature:
            if not signature:
                raise ApiError("MissingSignature", "The Signature header is missing.")
            if not expires_at:
                raise ApiError("MissingExpiresAt", "The Expires-at header is missing.")
        if not signature:
            return
        if not expires_at:
            raise ApiError("MissingExpiresAt", "The Expires-at header is missing.")
        # An integer UNIX time as documented, or a float as Salt Edge's own Python example
        # sends (time.time() + 60); the signed string has the header as it was sent.
        try:
            expires = float(expires_at.strip())
        except ValueError as error:
            message = "Expires-at must be a UNIX time."
            raise ApiError("ExpiresAtInvalid", message) from error
        if not math.isfinite(expires):
            raise ApiError("ExpiresAtInvalid", "Expires-at must be a UNIX time.")
        now = time.time()
        if expires < now:
            raise ApiError("RequestExpired", "The request expired (Expires-at is in the past).")
        if expires > now + MAX_EXPIRES_AHEAD:
            raise ApiError("ExpiresAtInvalid", "Expires-at is more than one hour from now.")
        if self.client_key is None:
            entry["signature"] = "unverified"
            return
        message = signing.request_message(
            expires_at, request.method, signed_url(request.environ), request.get_data()
        )
        if not signing.verify(self.client_key, message, signature):
            entry["signature"] = "invalid"
            raise ApiError("SignatureNotMatch", "The Signature header does not match.")
        entry["signature"] = "valid"

    # --- faults ------------------------------------------------------------------------
    def _take_fault(self, request):
        with self.state.lock:
            for fault in self.state["faults"]:
                prefix = fault.get("path_prefix") or ""
                if prefix and not (
                    request.path.startswith(prefix)
                    or request.path[len(API_PREFIX) :].startswith(prefix)
                ):
                    continue
                if fault["remaining"] <= 0:
                    continue
                if fault.get("after"):
                    fault["after"] -= 1
                    self.state.save()
                    continue
                fault["remaining"] -= 1
                taken = dict(fault)
                self.state.data["faults"] = [f for f in self.state["faults"] if f["remaining"] > 0]
                self.state.save()
                return taken
        return None

    def _fault_response(self, fault, request):
        if fault is None:
            return None
        kind = fault["kind"]
        if kind == "timeout":
            time.sleep(float(fault.get("delay") or 5))
            return None
        if kind == "429":
            retry_after = str(fault.get("retry_after") or 1)
            error = ApiError("TooManyRequests", "Too many requests, try again later.")
            return json_response(error.body(), 429, headers={"Retry-After": retry_after})
        if kind == "500":
            error = ApiError("InternalServerError", "An internal error has occurred.")
            return json_response(error.body(), 500)
        if kind == "garbage":
            body = "<html><body><h1>502 Bad Gateway</h1>upstream sent garbage</body></html>"
            return Response(body, status=200, content_type="text/html")
        return None  # truncated: answered normally, then cut; page_cycle: see Api.page


def make_app(config=None, **kwargs):
    """A sandbox WSGI application from a ``SandboxConfig`` or its keyword arguments."""
    return SandboxApp(config or SandboxConfig(**kwargs))

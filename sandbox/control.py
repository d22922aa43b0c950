"""The control API under ``/sandbox/``: not Salt Edge's, it lets tests steer the sandbox.

Move the clock, make the next API calls fail in chosen ways, reset everything, read the
requests seen and the callbacks sent, add transactions, make a refresh fail at the bank,
see and wait for the fetches under way, run the refresh Salt Edge does by itself.
"""

import json

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .bank import public
from .errors import ApiError
from .providers import PROVIDERS_BY_CODE, logo_svg
from .responses import json_response
from .state import parse_iso

FAULT_KINDS = ("429", "500", "timeout", "garbage", "truncated", "page_cycle")
MAX_WAIT_SECONDS = 600


def body_of(request):
    try:
        document = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def bad(message):
    return json_response({"error": {"class": "WrongRequestFormat", "message": message}}, 400)


class Control:
    """Endpoint methods of ``/sandbox/...``."""

    def __init__(self, app):
        self.app = app
        self.state = app.state

    def rules(self):
        return [
            Rule("/sandbox/clock", endpoint="clock", methods=["GET", "POST"]),
            Rule("/sandbox/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
            Rule("/sandbox/reset", endpoint="reset", methods=["POST"]),
            Rule("/sandbox/public_key.pem", endpoint="public_key", methods=["GET"]),
            Rule("/sandbox/requests", endpoint="requests", methods=["GET"]),
            Rule("/sandbox/callbacks", endpoint="callbacks", methods=["GET"]),
            Rule("/sandbox/logos/<code>.svg", endpoint="logo", methods=["GET"]),
            Rule(
                "/sandbox/connections/<connection_id>/add_transactions",
                endpoint="add_transactions",
                methods=["POST"],
            ),
            Rule(
                "/sandbox/connections/<connection_id>/fail_next",
                endpoint="fail_next",
                methods=["POST"],
            ),
            Rule(
                "/sandbox/connections/<connection_id>/automatic_refresh",
                endpoint="automatic_refresh",
                methods=["POST"],
            ),
            Rule("/sandbox/fetches", endpoint="fetches", methods=["GET"]),
            Rule("/sandbox/fetches/wait", endpoint="fetches_wait", methods=["POST"]),
        ]

    def _clock_json(self):
        now = self.state.now()
        return {
            "data": {
                "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "today": now.date().isoformat(),
                "offset_seconds": round(self.state["clock_offset"], 3),
                "frozen": self.state.data.get("clock_frozen_at") is not None,
            }
        }

    def clock(self, request):
        """GET the sandbox time; POST ``{"advance_days"|"advance_seconds"|"now"|"freeze"}``.

        ``now`` sets it, ``advance_*`` moves it, ``freeze: true`` stops it (it then moves
        only when told to), ``freeze: false`` lets it run again.
        """
        if request.method == "POST":
            body = body_of(request)
            if body is None:
                return bad("The body must be a JSON object.")
            try:
                if "now" in body or "freeze" in body:
                    moment = parse_iso(str(body["now"])) if "now" in body else None
                    freeze = bool(body["freeze"]) if "freeze" in body else None
                    self.state.set_now(moment, freeze)
                seconds = float(body.get("advance_seconds") or 0)
                seconds += float(body.get("advance_days") or 0) * 86400
            except (TypeError, ValueError):
                return bad("advance_days, advance_seconds and now must be numbers / ISO 8601.")
            if seconds:
                self.state.advance(seconds)
        return json_response(self._clock_json())

    def faults(self, request):
        """POST ``{"kind", "count", "path_prefix", "delay", "retry_after", "after"}`` queues a
        fault; ``after`` lets that many matching requests through first (e.g. page two).

        ``page_cycle`` answers a list page normally but for its ``meta.next_id``, which
        points back to the page before it (on the first page, to the first page itself):
        a client that follows it goes round in a circle. Give it the list's
        ``path_prefix`` (e.g. ``/transactions``); another request spends it unchanged."""
        if request.method == "POST":
            body = body_of(request)
            if body is None or str(body.get("kind")) not in FAULT_KINDS:
                return bad(f"kind must be one of {', '.join(FAULT_KINDS)}.")
            try:
                fault = {
                    "kind": str(body["kind"]),
                    "remaining": int(body.get("count", 1)),
                    "path_prefix": body.get("path_prefix") or "",
                    "delay": float(body.get("delay", 5)),
                    "retry_after": int(body.get("retry_after", 1)),
                    "after": max(0, int(body.get("after", 0))),
                }
            except (TypeError, ValueError):
                return bad("count, delay, retry_after and after must be numbers.")
            with self.state.lock:
                self.state["faults"].append(fault)
                self.state.save()
        elif request.method == "DELETE":
            with self.state.lock:
                self.state.data["faults"] = []
                self.state.save()
        return json_response({"data": list(self.state["faults"])})

    def reset(self, request):
        """Forget all data, the clock offset, faults, the request log and sent callbacks."""
        self.state.reset()
        self.app.bank.fetches.forget_old()
        self.app.requests_log.clear()
        self.app.sender.sent.clear()
        return json_response({"data": {"reset": True}})

    def public_key(self, request):
        """Salt Edge's public key, to verify the callbacks' Signature header."""
        return Response(self.app.public_key_pem, content_type="application/x-pem-file")

    def requests(self, request):
        """The last API requests seen (``?limit=N``): method, path, signed, status, fault."""
        limit = request.args.get("limit", "")
        entries = list(self.app.requests_log)
        if limit.isdigit():
            entries = entries[-int(limit) :] if int(limit) else []
        return json_response({"data": entries})

    def callbacks(self, request):
        """The callbacks sent so far, with the answer of the receiver."""
        return json_response({"data": list(self.app.sender.sent)})

    def logo(self, request, code):
        provider = PROVIDERS_BY_CODE.get(code)
        if provider is None:
            return Response("not found", status=404, content_type="text/plain")
        return Response(logo_svg(provider), content_type="image/svg+xml")

    def add_transactions(self, request, connection_id):
        """``{"count": n, "account_id": optional, "override": optional}``: new posted
        transactions dated today. ``override`` (an object) replaces fields of each one as
        the test wants them, whatever their type (a NUL in a description, a number for a
        payer, a ``made_on`` that is no date); its ``extra`` is merged into theirs. The
        sandbox keeps its own ``id``, ``account_id`` and ``status``; an amount that is no
        number does not move the balance."""
        body = body_of(request)
        if body is None:
            return bad("The body must be a JSON object.")
        override = body.get("override") or {}
        if not isinstance(override, dict):
            return bad("override must be a JSON object.")
        try:
            count = max(1, int(body.get("count", 1)))
        except (TypeError, ValueError):
            return bad("count must be a number.")
        try:
            added = self.app.bank.add_transactions(
                connection_id, count, body.get("account_id"), override
            )
        except ValueError as error:
            return bad(str(error))
        except ApiError as error:
            return json_response(error.body(), error.status)
        return json_response({"data": [public(transaction) for transaction in added]})

    def fail_next(self, request, connection_id):
        """``{"error_class", "error_message"}``: the next refresh fails at the bank."""
        body = body_of(request) or {}
        failure = {
            "error_class": str(body.get("error_class") or "ProviderError"),
            "error_message": str(body.get("error_message") or "The bank answered with an error."),
        }
        with self.state.lock:
            try:
                connection = self.app.bank.connection(connection_id)
            except ApiError as error:
                return json_response(error.body(), error.status)
            connection["_fail_next"] = failure
            self.state.save()
        return json_response({"data": failure})

    def automatic_refresh(self, request, connection_id):
        """The refresh Salt Edge does by itself for a connection that asked for
        ``automatic_refresh``: the staged fetch and its callbacks, outside the daily limit.

        Refused (400, ConnectionCannotBeRefreshed) when the connection did not ask for it or
        its consent is not live; 409 ConnectionAlreadyProcessing while a fetch runs.
        """
        try:
            connection = self.app.bank.automatic_refresh(connection_id)
        except ApiError as error:
            status = 400 if error.error_class == "ConnectionCannotBeRefreshed" else error.status
            return json_response(error.body(), status)
        with self.state.lock:
            return json_response({"data": self.app.bank.connection_json(connection)})

    def fetches(self, request):
        """The fetches under way: ``[{connection_id, attempt_id, stage}]`` (stage: the last
        one done)."""
        return json_response({"data": self.app.bank.fetches.list()})

    def fetches_wait(self, request):
        """``{"timeout": seconds}`` (default 30): block until no fetch runs; answers how
        many still run (0 unless the timeout passed)."""
        body = body_of(request)
        if body is None:
            return bad("The body must be a JSON object.")
        try:
            timeout = min(MAX_WAIT_SECONDS, max(0.0, float(body.get("timeout", 30))))
        except (TypeError, ValueError):
            return bad("timeout must be a number of seconds.")
        running = self.app.bank.fetches.wait(timeout)
        return json_response({"data": {"running": running}})

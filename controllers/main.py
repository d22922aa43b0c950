import hashlib
import json
import logging
import re

from odoo import fields, http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from ..models import const
from ..models.account_bank_connect_session import ConnectStateError, ConnectStateUsed
from ..models.utils import callback_id
from ..odoo_series import JSON_ROUTE_TYPE
from ..saltedge_client import verify_callback_signature

_logger = logging.getLogger(__name__)

# Callbacks bigger than this are not Salt Edge's.
MAX_CALLBACK_BYTES = 64 * 1024
# Where the callback's body is kept for Odoo's retry of the same request.
CALLBACK_BODY_KEY = "account_bank_connection.callback_body"


class BankConnectionController(http.Controller):
    @http.route(const.RETURN_ROUTE, type="http", auth="user", methods=["GET"], website=False)
    def saltedge_return(self, state=None, connection_id=None, error_class=None, **kwargs):
        """Salt Edge's connect screens send the user's browser here when they are done.

        Who calls it: the logged-in user's browser, redirected by Salt Edge to ``return_to``.
        The ``state`` is checked first (signed, single use, this user and company, one hour);
        ``connection_id`` and ``error_class`` are hints, confirmed with Salt Edge.
        Returns: a redirect to the waiting page that runs the first import (a refresh or a
        second click on the same link lands there too), or a page that says in words what
        went wrong.
        """
        Connection = request.env["account.bank.connection"]
        try:
            session = request.env["account.bank.connect.session"]._consume(state)
        except ConnectStateUsed as error:
            if error.session.import_state:
                return request.redirect(self._session_url(error.session), code=303)
            return self._message_page(str(error), failed=True)
        except ConnectStateError as error:
            return self._message_page(str(error), failed=True)
        if error_class:
            return self._message_page(Connection._connect_error_message(error_class), failed=True)
        try:
            connection = Connection._saltedge_finish_return(session, connection_hint=connection_id)
        except (UserError, AccessError) as error:
            request.env.cr.rollback()
            return self._message_page(str(error), failed=True)
        session.sudo().write({"connection_id": connection.id, "import_state": "waiting"})
        return request.redirect(self._session_url(session), code=303)

    def _message_page(self, message, failed=False, connection=None):
        return request.render(
            "account_bank_connection.connect_result_page",
            {
                "message": message,
                "failed": failed,
                "connection": connection,
                "dashboard_url": "/odoo/accounting",
            },
            status=400 if failed else 200,
        )

    @staticmethod
    def _session_url(session):
        return f"{const.SESSION_ROUTE}/{session.id}"

    def _own_session(self, session_id):
        """The connect session ``session_id`` if it is the current user's and came back
        from the bank; else an empty recordset (the same for "not yours" and "none")."""
        session = request.env["account.bank.connect.session"].sudo().browse(session_id).exists()
        if (
            not session
            or session.user_id != request.env.user
            or not session.import_state
            or not session.connection_id
            or session.company_id not in request.env.user.company_ids
        ):
            return session.browse()
        return session

    @http.route(
        const.SESSION_ROUTE + "/<int:session_id>",
        type="http",
        auth="user",
        methods=["GET"],
        website=False,
    )
    def connect_session_page(self, session_id, **kwargs):
        """After the return: "loading your transactions" while the first import runs, then
        what was connected and imported. Safe to refresh, to open twice, to come back to."""
        session = self._own_session(session_id)
        if not session:
            return self._message_page(
                request.env._(
                    "This page belongs to another user's bank connection or no longer exists. "
                    "Look at the bank connection in Accounting."
                ),
                failed=True,
            )
        connection = session.connection_id.with_env(request.env).sudo()
        if session.import_state != "done":
            return request.render(
                "account_bank_connection.connect_waiting_page",
                {
                    "connection": connection,
                    **session._waiting_state(),
                    "page_url": self._session_url(session),
                    "import_url": self._session_url(session) + "/import",
                    "dashboard_url": "/odoo/accounting",
                },
            )
        message = session._result_sentence()
        return self._message_page(message, connection=connection)

    @http.route(
        const.SESSION_ROUTE + "/<int:session_id>/import",
        type=JSON_ROUTE_TYPE,
        auth="user",
        methods=["POST"],
    )
    def connect_session_import(self, session_id, **kwargs):
        """Called by the waiting page every few seconds: each call imports a slice of the
        first import (FIRST_SLICE_SECONDS of pages, committed page by page) unless another
        request or the scheduled action is at it, so the first lines Salt Edge has are in
        the journal within seconds, whatever the length of the history; the rest follows
        in the background (see ``_saltedge_first_import_run``) and the page shows the count
        growing. Done once everything Salt Edge has is in and its fetch has finished, or
        after FIRST_FETCH_WAIT_SECONDS (the rest then keeps arriving by itself). Returns
        ``{"done": bool, "stage": str, "count": int}``."""
        session = self._own_session(session_id)
        if not session:
            return {"done": False, "missing": True}
        if session.import_state == "done":
            return {"done": True}
        return session._import_slice()

    @staticmethod
    def _callback_body(httprequest):
        """The callback's raw body, or None when it is over MAX_CALLBACK_BYTES.

        Read in pieces and never past the limit, whatever the headers say: a body sent
        chunked (no Content-Length) is not covered by the route's max_content_length, and
        reading it whole would let anybody hold a worker and its memory. Kept in the WSGI
        environ: when two callbacks of one connection collide, Odoo rolls back and calls
        the route again with the same request, whose stream is then spent.
        """
        environ = httprequest.environ
        if CALLBACK_BODY_KEY in environ:
            return environ[CALLBACK_BODY_KEY]
        # Odoo's request wrapper offers get_data() (which reads everything) but not the
        # stream: it is werkzeug's request's, inside the wrapper.
        wrapped = getattr(httprequest, "_HTTPRequest__wrapped", httprequest)
        stream, pieces, size = wrapped.stream, [], 0
        while True:
            piece = stream.read(min(16384, MAX_CALLBACK_BYTES + 1 - size))
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
            if size > MAX_CALLBACK_BYTES:
                environ[CALLBACK_BODY_KEY] = None
                return None
        environ[CALLBACK_BODY_KEY] = b"".join(pieces)
        return environ[CALLBACK_BODY_KEY]

    @http.route(
        const.CALLBACK_ROUTE + "/<string:kind>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
        # A bigger body is refused (413) before it is read.
        max_content_length=MAX_CALLBACK_BYTES,
    )
    def saltedge_callback(self, kind, **kwargs):
        """Salt Edge's servers POST here when a connection's data changes.

        Who calls it: Salt Edge, one URL per kind (success, fail, notify, destroy), with an
        RSA ``Signature`` over ``"<callback URL>|<raw body>"``. The signature is verified
        with the configured Salt Edge public key before anything else (403 otherwise). The
        same callback twice acts once; a signed callback of a kind we do not use gets 200
        and is recorded as ignored. A signed callback whose ``meta.time`` is missing, older
        than CALLBACK_MAX_AGE_SECONDS or further than CALLBACK_CLOCK_SKEW_SECONDS ahead of
        this server's clock gets 200 with its refusal as the status ("no time", "too old",
        "too new"), is recorded with it and changes nothing. Returns 200 quickly; the
        import runs in the requested-import scheduled action.
        """
        # Odoo adds OPTIONS to every route's methods; only a POST is a callback.
        if request.httprequest.method != "POST":
            return request.make_json_response({"status": "method not allowed"}, status=405)
        if not re.match(const.CALLBACK_KIND_PATTERN, kind):
            return request.make_json_response({"status": "unknown kind"}, status=404)
        raw = self._callback_body(request.httprequest)
        if raw is None:
            return request.make_json_response({"status": "too large"}, status=413)
        params = request.env["ir.config_parameter"].sudo()
        public_key = params.get_param(const.PARAM_PUBLIC_KEY)
        # The URL as registered at Salt Edge, not as rebuilt behind a proxy.
        callback_url = request.env["account.bank.connection"]._callback_url(kind)
        signature = request.httprequest.headers.get("Signature")
        if not public_key or not verify_callback_signature(
            public_key, callback_url, raw, signature
        ):
            _logger.warning(
                "Salt Edge callback refused: bad or missing signature (%s bytes from %s)",
                len(raw),
                request.httprequest.remote_addr,
            )
            return request.make_json_response({"status": "forbidden"}, status=403)
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return request.make_json_response({"status": "invalid json"}, status=400)
        data = payload.get("data") if isinstance(payload, dict) else None
        remote_id = callback_id(data.get("connection_id")) if isinstance(data, dict) else None
        # The kind is part of the identity: a notify and a success of the same operation
        # can carry the very same body (stage "finish", same second).
        fingerprint = hashlib.sha256(kind.encode() + b"|" + raw).hexdigest()
        claim = request.env["account.bank.callback"].sudo()._claim(fingerprint, kind, remote_id)
        if not claim:
            _logger.info("Salt Edge %s callback for %s received again: ignored", kind, remote_id)
            return request.make_json_response({"status": "duplicate"})
        if kind in const.CALLBACK_KINDS:
            # Signed by Salt Edge, but when? One captured on the way and replayed once the
            # ledger forgot it must not act again. Acknowledged (Salt Edge would only send
            # the same refused body again) and recorded.
            refusal, sent_at = claim._time_refusal(payload)
            if refusal:
                claim._record_result(refusal)
                _logger.warning(
                    "Salt Edge %s callback for connection %s refused: %s (sent at %s UTC, "
                    "this server's clock says %s UTC)",
                    kind,
                    remote_id,
                    refusal,
                    sent_at or "?",
                    fields.Datetime.now(),
                )
                return request.make_json_response({"status": refusal})
            result = (
                request.env["account.bank.connection"]
                .sudo()
                ._saltedge_handle_callback(kind, payload)
            )
        else:
            # Signed by Salt Edge but of a kind we do not use (v5's service, interactive):
            # acknowledged, so Salt Edge does not send it again, and recorded.
            result = "ignored"
        claim._record_result(result)
        _logger.info("Salt Edge %s callback for connection %s: %s", kind, remote_id, result)
        return request.make_json_response({"status": "ok"})

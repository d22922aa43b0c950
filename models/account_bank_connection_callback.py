"""What Salt Edge's callbacks do to a bank connection, one short handler per kind.

Callbacks are answered fast: a handler only writes what the callback says and asks the
"requested import" scheduled action to do the remote work (read the connection, its
consent, its accounts and transactions) right after. The same callback twice acts once
(the controller's ledger), and one to three ``success`` callbacks of one fetch only ask
for the same import.
"""

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..saltedge_client import SaltEdgeError
from . import const
from .utils import callback_id, clean_text, commits_allowed

_logger = logging.getLogger(__name__)


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    @api.model
    def _saltedge_handle_callback(self, kind, payload):
        """Apply a verified Salt Edge callback. Idempotent: the same callback twice has the
        effect of one. Returns a short word for the log and the ledger."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if kind not in const.CALLBACK_KINDS or not isinstance(data, dict):
            return "ignored"
        # Ids and texts as PostgreSQL can hold them: a NUL or a lone surrogate in a JSON
        # string would make the query fail.
        remote_id = callback_id(data.get("connection_id"))
        customer_id = callback_id(data.get("customer_id"))
        if remote_id is None or customer_id is None:
            return "ignored"
        connection = self.sudo().search(
            [
                ("saltedge_connection_id", "=", remote_id),
                ("saltedge_customer_id", "=", customer_id),
            ],
            limit=1,
        )
        if not connection:
            return self._saltedge_callback_unknown(kind, remote_id, customer_id, data)
        if connection.state == "disconnected" and kind in ("success", "fail"):
            return "ignored"
        meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
        sent_at = self._saltedge_time(meta.get("time"))
        if kind in ("fail", "destroy") and connection._saltedge_is_stale(sent_at):
            # Older than what Odoo already knows (a newer callback, or the connection read
            # since): it would undo a newer state. A replay after the ledger's purge too.
            return "stale"
        result = getattr(connection, f"_saltedge_callback_{kind}")(data)
        if sent_at and kind != "notify" and not connection._saltedge_is_stale(sent_at):
            connection.with_context(tracking_disable=True).saltedge_seen_at = sent_at
        return result

    def _saltedge_is_stale(self, sent_at):
        """Whether a callback sent at ``sent_at`` (Salt Edge's time) is older than the
        newest state Odoo knows of this connection. Without a time it is not judged."""
        return bool(sent_at and self.saltedge_seen_at and sent_at < self.saltedge_seen_at)

    def _saltedge_callback_notify(self, data):
        """A stage of Salt Edge's fetch: shown on the waiting page."""
        stage = data.get("stage")
        if not isinstance(stage, str):
            return "ignored"
        # Not tracked: spare the chatter's tracking set-up on the busiest callback.
        vals = {"last_stage": clean_text(stage, 64)}
        if stage != const.STAGE_FINISH:
            vals["fetch_finished"] = False
        self.with_context(tracking_disable=True).write(vals)
        return "noted"

    def _saltedge_callback_success(self, data):
        """Salt Edge finished a fetch: import this connection now (its accounts, its
        transactions, its consent), not every connection."""
        self.write({"import_requested": True, "last_stage": const.STAGE_FINISH})
        self._trigger_requested_import()
        return "import queued"

    def _saltedge_callback_fail(self, data):
        """A fetch failed. Not the end of the connection (a bank can be down for an hour):
        the requested import reads the connection's status and consent from Salt Edge and
        only those decide whether the user must act."""
        error_class = clean_text(data.get("error_class") or "", 128)
        if error_class in const.RETURN_ERROR_CANCELLED:
            # The user left a renew: the connection and its consent are as they were.
            return "cancelled"
        message = clean_text(data.get("error_message") or "", 1000)
        text = f"{error_class}: {message}" if message else error_class
        if self.last_error != text:
            self.message_post(body=self.env._("The bank reported an error: %s", text))
        self.write({"last_error": text, "import_requested": True})
        self._trigger_requested_import()
        return "error recorded"

    def _saltedge_callback_destroy(self, data):
        """The connection was removed at Salt Edge (a disconnect, or at the bank)."""
        if self.state != "disconnected":
            self._set_disconnected(self.env._("The connection was removed at Salt Edge."))
        return "disconnected"

    @api.model
    def _saltedge_callback_unknown(self, kind, remote_id, customer_id, data):
        """A callback for a connection Odoo does not know yet: the user has not come back
        from the bank (or never will). Our reference in ``custom_fields`` names the connect
        session; its connection is linked by the requested import."""
        if kind != "success":
            return "unknown"
        custom_fields = data.get("custom_fields")
        reference = (
            callback_id(custom_fields.get(const.CUSTOM_FIELD_REFERENCE))
            if isinstance(custom_fields, dict)
            else None
        )
        if reference is None:
            return "unknown"
        session = (
            self.env["account.bank.connect.session"]
            .sudo()
            .search(
                [
                    ("reference", "=", reference),
                    ("connection_id", "=", False),
                    ("company_id.saltedge_customer_id", "=", customer_id),
                ],
                limit=1,
            )
        )
        if not session:
            return "unknown"
        session.saltedge_connection_hint = remote_id
        self._trigger_requested_import()
        return "link queued"

    def _trigger_requested_import(self):
        """Ask the requested-import scheduled action to run now."""
        cron = self.env.ref("account_bank_connection.ir_cron_import_requested", False)
        if cron:
            cron.sudo()._trigger()

    # ------------------------------------------------------------------------------------
    # Connects the user never came back from
    # ------------------------------------------------------------------------------------

    @api.model
    def _saltedge_link_unreturned(self, hinted_only=False):
        """Link the connections of connects whose user never came back (a closed tab, a
        lost session, a proxy that dropped the return): found through the ``success``
        callback's hint, else (unless ``hinted_only``) among the customer's connections
        (``GET /connections``). The requested import, which runs every few minutes, takes
        only the hinted ones: a connect the user cancelled leaves a session without
        connection for days, and asking Salt Edge about it that often is a waste of its
        rate limit. Returns the connections linked."""
        since = fields.Datetime.now() - timedelta(days=const.UNRETURNED_CONNECT_DAYS)
        domain = [
            ("connection_id", "=", False),
            ("connect_url", "!=", False),
            ("create_date", ">=", since),
        ]
        if hinted_only:
            domain.append(("saltedge_connection_hint", "!=", False))
        sessions = self.env["account.bank.connect.session"].sudo().search(domain)
        linked = self.browse()
        if not sessions:
            return linked
        try:
            client = self._saltedge_client()
        except UserError as error:
            _logger.warning("Unreturned connects not looked for: %s", error)
            return linked
        for session in sessions:
            try:
                with self.env.cr.savepoint():
                    if session.saltedge_connection_hint:
                        remote = client.get_connection(session.saltedge_connection_hint)
                    else:
                        remote = self._saltedge_find_remote(client, session, guess=False)
                    if remote is None or self._saltedge_failed_connect(remote, session):
                        continue
                    connection = self.sudo()._saltedge_link(session, remote, client)
                    connection.import_requested = True
                    linked |= connection.sudo()
            except (SaltEdgeError, UserError) as error:
                _logger.warning("Connect session %s: not linked: %s", session.id, error)
            if commits_allowed():
                self.env.cr.commit()  # pylint: disable=invalid-commit
        if linked:
            _logger.info("Linked %s connections whose user did not come back", len(linked))
        return linked

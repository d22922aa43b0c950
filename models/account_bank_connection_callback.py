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
from odoo.tools import SQL

from .. import saltedge_errors
from . import const
from .utils import callback_id, changed_values, clean_text

_logger = logging.getLogger(__name__)


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    @api.model
    def _saltedge_handle_callback(self, kind, payload):
        """Apply a verified Salt Edge callback. Idempotent: the same callback twice has the
        effect of one. Returns a short word for the log and the ledger.

        The busy kinds (notify, five a fetch, and success) cost one SELECT of the
        connection and at most one UPDATE of the columns whose value changes: several
        callbacks of one connection arrive at once, and every write of its row they need
        not make is a serialization failure (and a retry of the whole request) less."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if kind not in const.CALLBACK_KINDS or not isinstance(data, dict):
            return "ignored"
        # Ids and texts as PostgreSQL can hold them: a NUL or a lone surrogate in a JSON
        # string would make the query fail.
        remote_id = callback_id(data.get("connection_id"))
        customer_id = callback_id(data.get("customer_id"))
        if remote_id is None or customer_id is None:
            return "ignored"
        row = self._saltedge_callback_row(remote_id, customer_id)
        if row is None:
            return self._saltedge_callback_unknown(kind, remote_id, customer_id, data)
        if row["state"] == "disconnected" and kind in ("success", "fail"):
            return "ignored"
        meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
        sent_at = self._saltedge_time(meta.get("time"))
        stale = bool(sent_at and row["saltedge_seen_at"] and sent_at < row["saltedge_seen_at"])
        if kind == "notify":
            return self._saltedge_callback_notify(row, data)
        if kind == "success":
            return self._saltedge_callback_success(row, None if stale else sent_at)
        if stale:
            # Older than what Odoo already knows (a newer callback, or the connection read
            # since): it would undo a newer state. (A replay older than the ledger's memory
            # never gets here: the route refuses it for its time.)
            return "stale"
        connection = self.sudo().browse(row["id"])
        result = getattr(connection, f"_saltedge_callback_{kind}")(data)
        if sent_at and not connection._saltedge_is_stale(sent_at):
            connection.with_context(tracking_disable=True).saltedge_seen_at = sent_at
        return result

    # What a callback reads of its connection, and the columns the busy kinds may write.
    _callback_read_fields = (
        "saltedge_connection_id",
        "saltedge_customer_id",
        "state",
        "saltedge_seen_at",
        "last_stage",
        "fetch_finished",
        "import_requested",
    )
    _callback_row_columns = (
        "id",
        "state",
        "saltedge_seen_at",
        "last_stage",
        "fetch_finished",
        "import_requested",
    )
    _callback_write_fields = frozenset(
        {"saltedge_seen_at", "last_stage", "fetch_finished", "import_requested"}
    )

    @api.model
    def _saltedge_callback_row(self, remote_id, customer_id):
        """The connection a callback names, as a dict of the columns a callback reads (one
        query instead of a search and a read of every field); None when Odoo has none."""
        # Changes of this transaction not yet in the table first (none in a request).
        self.flush_model(self._callback_read_fields)
        rows = self.env.execute_query(
            SQL(
                """
            SELECT id, state, saltedge_seen_at, last_stage,
                   coalesce(fetch_finished, false), coalesce(import_requested, false)
              FROM account_bank_connection
             WHERE saltedge_connection_id = %s AND saltedge_customer_id = %s
             ORDER BY id
             LIMIT 1
            """,
                remote_id,
                customer_id,
            )
        )
        if not rows:
            return None
        return dict(zip(self._callback_row_columns, rows[0], strict=True))

    @api.model
    def _saltedge_callback_store(self, row, vals):
        """Write ``vals`` on the connection of ``row`` (from ``_saltedge_callback_row``),
        only the columns whose value changes, in one UPDATE; nothing when none does. None
        of these columns is tracked or computed from: the ORM's write would only add its
        overhead (and a query for the transaction's time)."""
        changed = changed_values(row, vals)
        if not changed:
            return
        if not self._callback_write_fields.issuperset(changed):
            raise ValueError(f"Not a column a callback writes: {sorted(changed)}")
        assignments = SQL(", ").join(
            SQL("%s = %s", SQL.identifier(name), value) for name, value in changed.items()
        )
        self.env.execute_query(
            SQL(
                "UPDATE account_bank_connection SET %s, write_uid = %s,"
                " write_date = now() at time zone 'UTC' WHERE id = %s",
                assignments,
                self.env.uid,
                row["id"],
            )
        )
        row.update(changed)
        self.browse(row["id"]).invalidate_recordset(
            [*changed, "write_uid", "write_date"], flush=False
        )

    def _saltedge_is_stale(self, sent_at):
        """Whether a callback sent at ``sent_at`` (Salt Edge's time) is older than the
        newest state Odoo knows of this connection. Without a time it is not judged."""
        return bool(sent_at and self.saltedge_seen_at and sent_at < self.saltedge_seen_at)

    @api.model
    def _saltedge_callback_notify(self, row, data):
        """A stage of Salt Edge's fetch: shown on the waiting page. Not tracked."""
        stage = data.get("stage")
        if not isinstance(stage, str):
            return "ignored"
        vals = {"last_stage": clean_text(stage, 64)}
        if stage != const.STAGE_FINISH:
            vals["fetch_finished"] = False
        self._saltedge_callback_store(row, vals)
        return "noted"

    @api.model
    def _saltedge_callback_success(self, row, seen_at):
        """Salt Edge finished a fetch: import this connection now (its accounts, its
        transactions, its consent), not every connection. ``seen_at``: the callback's
        time, unless it is older than what Odoo knows."""
        vals = {"import_requested": True, "last_stage": const.STAGE_FINISH}
        if seen_at:
            vals["saltedge_seen_at"] = seen_at
        self._saltedge_callback_store(row, vals)
        self._trigger_requested_import(callback=True)
        return "import queued"

    def _saltedge_callback_fail(self, data):
        """A fetch failed. Not the end of the connection (a bank can be down for an hour):
        the requested import reads the connection's status and consent from Salt Edge and
        only those decide whether the user must act."""
        error_class = clean_text(data.get("error_class") or "", 128)
        if error_class in saltedge_errors.CANCELLED_CLASSES:
            # The user left a renew: the connection and its consent are as they were.
            return "cancelled"
        message = clean_text(data.get("error_message") or "", 1000)
        text = f"{error_class}: {message}" if message else error_class
        if self.last_error != text:
            self.message_post(body=self.env._("The bank reported an error: %s", text))
        self.write({"last_error": text, "import_requested": True})
        self._trigger_requested_import(callback=True)
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
        self._trigger_requested_import(callback=True)
        return "link queued"

    def _trigger_requested_import(self, callback=False):
        """Ask the requested-import scheduled action to run now.

        ``callback``: asked by a Salt Edge callback. Those come in bursts (Salt Edge's
        refresh of every connection), and each trigger due now makes Odoo wake the cron
        workers with a NOTIFY sent over a PostgreSQL connection opened for it alone (Odoo
        pools none to the ``postgres`` database): the dearest part of a callback by far.
        When a trigger of this action is already due (an earlier callback's, committed and
        its wake-up sent, the run it asked for not yet over), this one is queued a second
        later without another wake-up: it is one trigger still, imported by that run, or,
        if that run had read its connections before this transaction commits, by the run
        the cron workers start at their next wake-up (a minute at most). Such a trigger,
        due after the start of the run under way, is never deleted by that run's end.
        """
        # The xmlid's record without env.ref's query of its existence: a deleted cron
        # takes its xmlid with it.
        model, cron_id = self.env["ir.model.data"]._xmlid_to_res_model_res_id(
            "account_bank_connection.ir_cron_import_requested", raise_if_not_found=False
        )
        if model != "ir.cron" or not cron_id:
            return
        cron = self.env["ir.cron"].sudo().browse(cron_id)
        if callback:
            due = self.env.execute_query(
                SQL(
                    """
                SELECT 1 FROM ir_cron_trigger
                 -- The clock, not now(): that is the start of this transaction, which may
                 -- be older than a trigger made in it or committed since.
                 WHERE cron_id = %s AND call_at <= (clock_timestamp() at time zone 'UTC')
                 LIMIT 1
                """,
                    cron_id,
                )
            )
            if due:
                cron._trigger(fields.Datetime.now() + timedelta(seconds=1))
                return
        cron._trigger()

from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..odoo_series import Constraint
from . import const


class AccountBankCallback(models.Model):
    """Salt Edge callbacks already applied, so the same callback twice acts once."""

    _name = "account.bank.callback"
    _description = "Salt Edge Callback"
    _order = "id desc"

    # Indexed by its unique constraint: a second index would only cost every insert.
    fingerprint = fields.Char(required=True, readonly=True)
    kind = fields.Char(readonly=True)
    saltedge_connection_id = fields.Char(readonly=True)
    result = fields.Char(readonly=True)

    _fingerprint_unique = Constraint(
        "unique(fingerprint)",
        "This callback was already received.",
    )

    @api.model
    def _claim(self, fingerprint, kind, remote_id):
        """Record a callback; False when it was already recorded (a retry or a replay)."""
        rows = self.env.execute_query(
            SQL(
                """
            INSERT INTO account_bank_callback
                (fingerprint, kind, saltedge_connection_id, create_date, write_date,
                 create_uid, write_uid)
            VALUES (%s, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC', %s, %s)
            ON CONFLICT (fingerprint) DO NOTHING
            RETURNING id
            """,
                fingerprint,
                kind,
                remote_id,
                self.env.uid,
                self.env.uid,
            )
        )
        return self.browse(rows[0][0]) if rows else self.browse()

    def _record_result(self, result):
        """Note what the handler did with the callback just claimed: one UPDATE of the row
        ``_claim`` inserted in this transaction (its write date is that of its insert)."""
        if not self:
            return
        self.env.execute_query(
            SQL(
                "UPDATE account_bank_callback SET result = %s WHERE id IN %s",
                result,
                tuple(self.ids),
            )
        )
        self.invalidate_recordset(["result"], flush=False)

    @api.model
    def _time_refusal(self, payload):
        """Whether the time of a verified callback lets it in: ``(reason, sent_at)``, the
        reason None when it does, else ``"no time"`` (no ``meta.time`` that is a time),
        ``"too old"`` (sent more than CALLBACK_MAX_AGE_SECONDS ago) or ``"too new"`` (more
        than CALLBACK_CLOCK_SKEW_SECONDS ahead of this server's clock); ``sent_at`` is the
        time as a naive UTC datetime, or None.

        The ledger knows a callback for CALLBACK_LEDGER_DAYS, longer than its time lets it
        in: a replay is either known or too old, never applied again. Salt Edge puts
        ``meta.time`` on every callback, so one without is refused too: its age cannot be
        told. A refusal loses nothing but time: the hourly import and the daily consent
        check read from Salt Edge what a callback would have said."""
        meta = payload.get("meta") if isinstance(payload, dict) else None
        sent_at = self.env["account.bank.connection"]._saltedge_time(
            meta.get("time") if isinstance(meta, dict) else None
        )
        if sent_at is None:
            return "no time", None
        now = fields.Datetime.now()
        if sent_at < now - timedelta(seconds=const.CALLBACK_MAX_AGE_SECONDS):
            return "too old", sent_at
        if sent_at > now + timedelta(seconds=const.CALLBACK_CLOCK_SKEW_SECONDS):
            return "too new", sent_at
        return None, sent_at

    @api.autovacuum
    def _gc_old_callbacks(self):
        limit = fields.Datetime.now() - timedelta(days=const.CALLBACK_LEDGER_DAYS)
        self.sudo().search([("create_date", "<", limit)]).unlink()

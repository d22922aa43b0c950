from datetime import timedelta

from odoo import api, fields, models

from ..odoo_series import Constraint


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
        self.env.cr.execute(
            """
            INSERT INTO account_bank_callback
                (fingerprint, kind, saltedge_connection_id, create_date, write_date,
                 create_uid, write_uid)
            VALUES (%s, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC', %s, %s)
            ON CONFLICT (fingerprint) DO NOTHING
            RETURNING id
            """,
            [fingerprint, kind, remote_id, self.env.uid, self.env.uid],
        )
        row = self.env.cr.fetchone()
        return self.browse(row[0]) if row else self.browse()

    def _record_result(self, result):
        """Note what the handler did with the callback just claimed: one UPDATE of the row
        ``_claim`` inserted in this transaction (its write date is that of its insert)."""
        if not self:
            return
        self.env.cr.execute(
            "UPDATE account_bank_callback SET result = %s WHERE id IN %s",
            [result, tuple(self.ids)],
        )
        self.invalidate_recordset(["result"], flush=False)

    @api.autovacuum
    def _gc_old_callbacks(self):
        limit = fields.Datetime.now() - timedelta(days=30)
        self.sudo().search([("create_date", "<", limit)]).unlink()

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..odoo_series import Constraint
from ..saltedge_transactions import normalize_iban
from .utils import fields_given, write_changed


class AccountBankConnectionAccount(models.Model):
    """A bank account as Salt Edge sees it through one connection."""

    _name = "account.bank.connection.account"
    _description = "Bank Connection Account"
    _order = "connection_id, name, id"
    _check_company_auto = True

    connection_id = fields.Many2one(
        "account.bank.connection", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    saltedge_account_id = fields.Char(string="Salt Edge account ID", required=True, index=True)
    name = fields.Char(required=True, readonly=True)
    iban = fields.Char(string="IBAN", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    balance = fields.Monetary(currency_field="currency_id", readonly=True)
    journal_id = fields.Many2one(
        "account.journal",
        domain="[('type', '=', 'bank'), ('company_id', '=', company_id)]",
        check_company=True,
        index=True,
    )
    last_transaction_id = fields.Char(
        string="Import cursor",
        readonly=True,
        copy=False,
        help="The last Salt Edge transaction imported; the next import starts there.",
    )

    _saltedge_account_unique = Constraint(
        "unique(connection_id, saltedge_account_id)",
        "This Salt Edge account is already listed on the connection.",
    )
    _journal_unique = Constraint(
        "unique(journal_id)",
        "A journal can be linked to one online account only.",
    )

    @api.depends("name", "iban")
    def _compute_display_name(self):
        for account in self:
            account.display_name = (
                f"{account.name} ({account.iban})" if account.iban else account.name
            )

    @api.model
    def _normalize_iban(self, value):
        """IBANs compare without spaces and in upper case (``normalize_iban``)."""
        return normalize_iban(value)

    # Set by the module (as superuser) from Salt Edge's answers and its imports, never by
    # hand: the account's own data comes back from Salt Edge at every import anyway, the
    # import's cursor and first-import flags decide what is imported (a cursor moved by
    # hand skips transactions), and a company written here would hand the account to
    # another company. A user chooses the journal only.
    _saltedge_protected_fields = frozenset(
        {
            "connection_id",
            "company_id",
            "saltedge_account_id",
            "name",
            "iban",
            "currency_id",
            "balance",
            "last_transaction_id",
            "first_sync_done",
            "journal_had_lines",
        }
    )

    @api.model
    def _check_saltedge_fields(self, vals_list, creating=False):
        """Refuse the fields only the module writes from anyone but the module's own code
        (which writes them as superuser), given as values or, on a create, as the
        context's defaults."""
        if self.env.su:
            return
        for vals in vals_list:
            given = set(self._saltedge_protected_fields & fields_given(self, vals, creating))
            if given:
                raise AccessError(
                    self.env._(
                        "Odoo sets these fields of a bank account itself, from Salt Edge's "
                        "answers and its imports; they cannot be changed by hand (%s).",
                        ", ".join(sorted(given)),
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        self._check_saltedge_fields(vals_list, creating=True)
        return super().create(vals_list)

    def write(self, vals):
        self._check_saltedge_fields([vals])
        if vals.get("journal_id"):
            # Whether the journal has a history of its own decides the opening line.
            had_lines = (
                self.env["account.bank.statement.line"]
                .sudo()
                .search_count([("journal_id", "=", vals["journal_id"])], limit=1)
            )
            vals = dict(vals, journal_had_lines=bool(had_lines))
        result = super().write(vals)
        if {"journal_id", "last_transaction_id", "first_sync_done"} & vals.keys():
            # A journal linked by hand, a cursor set back: the next hourly run reads the
            # connection whatever Salt Edge's list says (see _connections_to_import).
            for connection in self.connection_id.sudo():
                write_changed(connection, {"saltedge_idle_key": False})
        if "journal_id" in vals:
            # A journal chosen by hand in the list is linked like an automatic match.
            for account in self.filtered("journal_id"):
                if account.journal_id.bank_connection_id != account.connection_id:
                    account.journal_id.sudo().bank_connection_id = account.connection_id
        return result

    def _link_journal(self, journal):
        """Link this account to ``journal`` and the journal to the connection. A journal
        without a bank account gets this account's IBAN."""
        self.ensure_one()
        journal = journal.sudo()
        # The account of a connection that ended (expired, disconnected) gives it up.
        released = self.sudo().search([("journal_id", "=", journal.id), ("id", "!=", self.id)])
        released.write({"journal_id": False})
        # Before the journal is given to this account: one account per journal.
        released.flush_recordset(["journal_id"])
        self.sudo().journal_id = journal
        vals = {"bank_connection_id": self.connection_id.id}
        if not journal.bank_account_id and self.iban:
            vals["bank_acc_number"] = self.iban
        journal.write(vals)

    def action_create_journal(self):
        """Create a bank journal for this account, with its IBAN and currency: the guide's
        "new account" step, without waiting for anybody."""
        self.ensure_one()
        self.env["account.bank.connection"]._check_manager()
        if self.journal_id:
            raise UserError(
                self.env._("This account already has the journal %s.", self.journal_id.name)
            )
        company = self.connection_id.company_id
        Journal = self.env["account.journal"].with_company(company)
        vals = {
            "name": f"{self.connection_id.name} {self.iban or self.name}",
            "type": "bank",
            "company_id": company.id,
        }
        if self.currency_id and self.currency_id != company.currency_id:
            self.connection_id._saltedge_currency(self.currency_id.name, activate=True)
            vals["currency_id"] = self.currency_id.id
        journal = Journal.create(vals)
        # The IBAN's bank account is made by the link, as for a journal matched by IBAN: an
        # accounting administrator need not have the right to create contacts' accounts.
        self._link_journal(journal)
        self.connection_id.message_post(
            body=self.env._(
                "Journal %(journal)s created for %(account)s.",
                journal=journal.name,
                account=self.display_name,
            )
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.journal",
            "res_id": journal.id,
            "view_mode": "form",
        }

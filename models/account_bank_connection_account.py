from odoo import api, fields, models


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
    name = fields.Char(required=True)
    iban = fields.Char(string="IBAN")
    currency_id = fields.Many2one("res.currency")
    balance = fields.Monetary(currency_field="currency_id", readonly=True)
    nature = fields.Char(help="Salt Edge's kind of account: account, card, savings…")
    journal_id = fields.Many2one(
        "account.journal",
        domain="[('type', '=', 'bank'), ('company_id', '=', company_id)]",
        check_company=True,
        index=True,
    )

    _sql_constraints = [
        (
            "saltedge_account_unique",
            "unique(connection_id, saltedge_account_id)",
            "This Salt Edge account is already listed on the connection.",
        ),
        (
            "journal_unique",
            "unique(journal_id)",
            "A journal can be linked to one online account only.",
        ),
    ]

    @api.depends("name", "iban")
    def _compute_display_name(self):
        for account in self:
            account.display_name = (
                f"{account.name} ({account.iban})" if account.iban else account.name
            )

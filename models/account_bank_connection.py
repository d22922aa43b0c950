from odoo import api, fields, models

CONNECTION_STATES = [
    ("draft", "Draft"),
    ("connected", "Connected"),
    ("expired", "Expired"),
    ("error", "Error"),
    ("disconnected", "Disconnected"),
]


class AccountBankConnection(models.Model):
    """One Salt Edge connection of one company: a bank login and the consent it gave."""

    _name = "account.bank.connection"
    _description = "Bank Connection"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "company_id, name, id"
    _check_company_auto = True

    name = fields.Char(string="Bank", required=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    state = fields.Selection(
        CONNECTION_STATES, required=True, default="draft", tracking=True, copy=False
    )
    connected_until = fields.Date(
        tracking=True,
        copy=False,
        help="The day the bank's consent runs out; renew the connection before it.",
    )
    provider_code = fields.Char(string="Salt Edge provider code")
    provider_name = fields.Char(string="Provider")
    saltedge_connection_id = fields.Char(
        string="Salt Edge connection ID", copy=False, index=True, readonly=True
    )
    saltedge_customer_id = fields.Char(string="Salt Edge customer ID", copy=False, readonly=True)
    saltedge_consent_id = fields.Char(string="Salt Edge consent ID", copy=False, readonly=True)
    last_sync = fields.Datetime(string="Last update", copy=False, readonly=True)
    last_error = fields.Text(copy=False, readonly=True)
    account_ids = fields.One2many(
        "account.bank.connection.account", "connection_id", string="Online accounts"
    )
    journal_ids = fields.One2many("account.journal", "bank_connection_id", string="Journals")
    journal_count = fields.Integer(compute="_compute_journal_count")

    _sql_constraints = [
        (
            "saltedge_connection_unique",
            "unique(company_id, saltedge_connection_id)",
            "This Salt Edge connection is already linked to this company.",
        ),
    ]

    @api.depends("journal_ids")
    def _compute_journal_count(self):
        for connection in self:
            connection.journal_count = len(connection.journal_ids)

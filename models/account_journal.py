from odoo import fields, models


class AccountJournal(models.Model):
    _inherit = "account.journal"

    bank_connection_id = fields.Many2one(
        "account.bank.connection",
        string="Bank connection",
        copy=False,
        index="btree_not_null",
        check_company=True,
    )
    bank_connection_state = fields.Selection(related="bank_connection_id.state")
    bank_connected_until = fields.Date(
        related="bank_connection_id.connected_until", string="Connected until"
    )

from odoo import fields, models


class AccountBankStatementLine(models.Model):
    _inherit = "account.bank.statement.line"

    saltedge_transaction_id = fields.Char(
        string="Salt Edge transaction ID", copy=False, readonly=True, index="btree_not_null"
    )

    _sql_constraints = [
        (
            "saltedge_transaction_unique",
            "unique(journal_id, saltedge_transaction_id)",
            "This bank transaction was already imported in this journal.",
        ),
    ]

from odoo import fields, models
from odoo.tools import SQL

from ..odoo_series import Constraint


class AccountBankStatementLine(models.Model):
    _inherit = "account.bank.statement.line"

    saltedge_transaction_id = fields.Char(
        string="Salt Edge transaction ID", copy=False, readonly=True, index="btree_not_null"
    )
    saltedge_account_id = fields.Char(
        string="Salt Edge account ID",
        copy=False,
        readonly=True,
        help="The Salt Edge account whose transaction this line is: imported from it, or an "
        "earlier line (a file import, a former connection) it was matched to.",
    )

    def init(self):
        """Lines imported before this field existed belong to the account their journal is
        linked to now."""
        result = super().init()
        self.env.execute_query(
            SQL(
                """
            UPDATE account_bank_statement_line line
               SET saltedge_account_id = account.saltedge_account_id
              FROM account_bank_connection_account account
             WHERE account.journal_id = line.journal_id
               AND line.saltedge_account_id IS NULL
               AND line.saltedge_transaction_id IS NOT NULL
            """
            )
        )
        return result

    _saltedge_transaction_unique = Constraint(
        "unique(journal_id, saltedge_transaction_id)",
        "This bank transaction was already imported in this journal.",
    )

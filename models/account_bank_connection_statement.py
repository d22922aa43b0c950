"""Bank statements of the imported lines, when the connection asks for them: a statement a
day, a week or a month per journal, named as Odoo names them. A statement starts with the
previous statement's ending balance and ends with the bank's balance when Salt Edge gives
one (a balance snapshot on its last transaction, or the account's balance for the latest
statement), so it is complete in Odoo exactly when the bank's figures agree.

Lines are filed at the end of a run whose Salt Edge fetch has finished: Salt Edge brings
the recent days first and the older history minutes later, and a statement's starting
balance is only right once the lines before it are in.
"""

import math

from odoo import Command, fields, models
from odoo.tools import SQL

from . import const

STATEMENT_PERIODS = [
    ("none", "No statements"),
    ("day", "A statement a day"),
    ("week", "A statement a week"),
    ("month", "A statement a month"),
]


def period_key(day, period):
    """The key of the statement ``day`` belongs to: ``2026-11-02``, ``2026-W45``, ``2026-11``."""
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _weekday = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


class AccountBankStatement(models.Model):
    _inherit = "account.bank.statement"

    saltedge_period = fields.Char(
        string="Bank connection period",
        copy=False,
        readonly=True,
        index="btree_not_null",
        help="The day, week or month of the imported lines this statement holds.",
    )


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    statement_period = fields.Selection(
        STATEMENT_PERIODS,
        string="Bank statements",
        default="none",
        required=True,
        help="Group the imported lines into bank statements, each ending on the bank's balance "
        "when the bank gives it. Lines imported before this is set stay as they are.",
    )
    statements_after_line_id = fields.Integer(
        string="Statements from line",
        copy=False,
        readonly=True,
        help="The statement lines created after this one (the last of the database when "
        "statements were turned on) are grouped into statements; the earlier ones stay as "
        "they are.",
    )

    def _saltedge_last_line_id(self):
        """The newest statement line of the database: where statements begin when they are
        turned on (ids only grow, whatever the transactions' clocks say)."""
        [(last,)] = self.env.execute_query(
            SQL("SELECT COALESCE(MAX(id), 0) FROM account_bank_statement_line")
        )
        return last

    def _saltedge_statements_started(self, vals_list):
        """``statements_after_line_id`` for the connections a create of ``vals_list`` makes
        with statements on."""
        for vals in vals_list:
            if vals.get("statement_period", "none") != "none":
                vals.setdefault("statements_after_line_id", self._saltedge_last_line_id())
        return vals_list


class AccountBankConnectionAccount(models.Model):
    _inherit = "account.bank.connection.account"

    def _saltedge_file_statements(self):
        """File this account's lines that have no statement yet, imported since statements
        were turned on, into the statements of their day, week or month, then set the
        balances of the statements from the first one touched on. Returns the statements
        touched."""
        self.ensure_one()
        connection = self.connection_id
        Statement = self.env["account.bank.statement"].sudo()
        period = connection.statement_period
        if period in (False, "none") or not self.journal_id:
            return Statement
        journal = self.journal_id
        Statement = Statement.with_company(journal.company_id)
        lines = (
            self.env["account.bank.statement.line"]
            .sudo()
            .search(
                [
                    ("journal_id", "=", journal.id),
                    ("saltedge_account_id", "=", self.saltedge_account_id),
                    ("statement_id", "=", False),
                    ("id", ">", connection.statements_after_line_id),
                    ("saltedge_transaction_id", "not like", const.OPENING_KEY % "%"),
                ],
                order="internal_index",
            )
        )
        if not lines:
            return Statement
        groups = {}
        for line in lines:
            groups.setdefault(period_key(line.date, period), []).append(line.id)
        touched = Statement
        for key in sorted(groups):
            statement = Statement.search(
                [("journal_id", "=", journal.id), ("saltedge_period", "=", key)], limit=1
            )
            if statement:
                statement.line_ids = [Command.link(line_id) for line_id in groups[key]]
            else:
                statement = Statement.create(
                    {"saltedge_period": key, "line_ids": [Command.set(groups[key])]}
                )
            touched |= statement
        self._saltedge_statement_balances(touched)
        return touched

    def _saltedge_statement_balances(self, touched):
        """Each statement of the journal's imported periods from the first of ``touched``
        on, in the journal's order: its starting balance from the statements and lines
        before it (Odoo's own rule), its ending balance the bank's when known, else its
        computed one."""
        journal = self.journal_id
        first = min(touched.mapped("first_line_index"))
        statements = (
            self.env["account.bank.statement"]
            .sudo()
            .search(
                [
                    ("journal_id", "=", journal.id),
                    ("saltedge_period", "!=", False),
                    ("first_line_index", ">=", first),
                ],
                order="first_line_index",
            )
        )
        latest = statements[-1:]
        later_lines = latest and self.env["account.bank.statement.line"].sudo().search_count(
            [
                ("journal_id", "=", journal.id),
                ("internal_index", ">", max(latest.line_ids.mapped("internal_index"))),
            ]
        )
        for statement in statements:
            # Odoo computes the starting balance once, at the creation: a statement made
            # before older lines arrived (or filled later) is computed again.
            statement._compute_balance_start()
            bank = self._saltedge_snapshot(statement)
            if bank is None and statement == latest and not later_lines:
                bank = self.balance
            statement.balance_end_real = statement.balance_end if bank is None else bank

    def _saltedge_snapshot(self, statement):
        """The bank's balance after the statement's last line, when the bank sent it with
        that transaction (``extra.account_balance_snapshot``); else None."""
        last = statement.line_ids.sorted("internal_index")[-1:]
        extra = (last.transaction_details or {}).get("extra") or {}
        value = extra.get("account_balance_snapshot")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value if math.isfinite(value) else None

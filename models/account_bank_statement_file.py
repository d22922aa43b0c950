"""A bank statement file imported into a journal we feed does not double our lines.

Odoo's statement imports (Enterprise's CODA, CAMT, CSV and CodaBox; OCA's file imports)
make a statement whose lines carry a ``unique_import_id`` and deduplicate on that id only,
which our lines do not have. So before such a statement is created, each of its lines
that one of our lines already is (same journal, date and amount, counted) is left out:
the match of earlier lines of an import, in the other direction. Every import of a file
ends in ``account.bank.statement.create`` with the lines as ``Command.create`` values,
whatever the module that read it; nothing of those modules is imported here.
"""

import logging

from odoo import Command, api, fields, models
from odoo.tools import SQL

from . import const

_logger = logging.getLogger(__name__)


class AccountBankStatement(models.Model):
    _inherit = "account.bank.statement"

    @api.model_create_multi
    def create(self, vals_list):
        skipped = []
        for vals in vals_list:
            count, journal = self._leave_out_lines_we_imported(vals)
            if count:
                skipped.append((vals, count, journal))
        statements = super().create(vals_list)
        for vals, count, journal in skipped:
            self._say_left_out(vals, count, journal)
        return statements

    def _leave_out_lines_we_imported(self, vals):
        """Take out of ``vals`` (a statement's values) the file's lines that our import
        already made; returns how many, and the journal. Each of our lines matches one file
        line at most, so two equal payments on one day in the file and one of ours leave
        one to create.

        The matched line of ours takes the file line's ``unique_import_id``: the next
        import of the same file knows it by Odoo's own check. It joins the new statement
        when it is in none, so the statement holds all its transactions and its balances
        stay as the bank wrote them; one already in a statement stays there, and the new
        statement's starting balance takes its amount, as Odoo's import does for the lines
        it ignores."""
        if "unique_import_id" not in self.env["account.bank.statement.line"]._fields:
            # Community without a statement import module: no file import at all.
            return 0, None
        commands = vals.get("line_ids") or []
        file_lines = [
            (index, command[2])
            for index, command in enumerate(commands)
            if isinstance(command, (list, tuple))
            and len(command) == 3
            and command[0] == Command.CREATE
            and isinstance(command[2], dict)
            and command[2].get("unique_import_id")
            and command[2].get("date")
        ]
        if not file_lines:
            return 0, None
        journal = self.env["account.journal"].browse(
            vals.get("journal_id")
            or file_lines[0][1].get("journal_id")
            or self.env.context.get("default_journal_id")
        )
        if not journal:
            return 0, None
        days = sorted({fields.Date.to_date(line["date"]) for _index, line in file_lines})
        rows = self.env.execute_query(
            SQL(
                "SELECT line.id, move.date, line.amount, line.statement_id "
                "FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id "
                "WHERE line.journal_id = %s AND move.date = ANY(%s::date[]) "
                "AND line.saltedge_transaction_id IS NOT NULL "
                "AND line.saltedge_transaction_id NOT LIKE %s "
                "AND line.unique_import_id IS NULL AND move.state != 'cancel' "
                "ORDER BY line.id",
                journal.id,
                days,
                const.OPENING_KEY % "%",
            )
        )
        if not rows:
            return 0, None
        currency = journal.currency_id or journal.company_id.currency_id
        pools = {}
        for line_id, day, amount, statement_id in rows:
            pools.setdefault((day, currency.round(amount)), []).append((line_id, statement_id))
        left_out = {}
        for index, line in file_lines:
            amount = currency.round(float(line.get("amount") or 0.0))
            key = (fields.Date.to_date(line["date"]), amount)
            if pools.get(key):
                left_out[index] = pools[key].pop(0)
        if not left_out:
            return 0, None
        Line = self.env["account.bank.statement.line"].sudo()
        kept = [command for index, command in enumerate(commands) if index not in left_out]
        for index, (line_id, statement_id) in left_out.items():
            line = Line.browse(line_id)
            line.unique_import_id = commands[index][2]["unique_import_id"]
            if not statement_id:
                kept.append(Command.link(line_id))
            elif vals.get("balance_start") is not None:
                vals["balance_start"] += line.amount
        vals["line_ids"] = kept
        return len(left_out), journal

    def _say_left_out(self, vals, count, journal):
        """Say it to whoever imports the file, and on the journal's bank connection."""
        source = vals.get("reference") or vals.get("name") or self.env._("the bank file")
        message = self.env._(
            "%(count)s transactions of %(file)s were already imported from the bank through "
            "Salt Edge: they were not created again.",
            count=count,
            file=source,
        )
        _logger.info(
            "Statement import into journal %s: %s lines already imported through Salt Edge "
            "left out.",
            journal.id,
            count,
        )
        self.env.user._bus_send(
            "simple_notification",
            {"type": "info", "title": self.env._("Bank file imported"), "message": message},
        )
        connection = journal.sudo().bank_connection_id
        if connection:
            connection.message_post(body=message)

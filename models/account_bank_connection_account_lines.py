"""The lines of one page of an account's import: a statement line's values from a clean
transaction (``saltedge_transactions``), the partner found by the counterparty's IBAN (one
query a page), and the lines created, one by one when the database refuses one of them.
"""

import logging

import psycopg2

from odoo import api, models
from odoo.tools import SQL

from ..saltedge_transactions import NO_AMOUNT, NO_DATE, NO_ID, display, foreign_amount, line_values
from . import const

_logger = logging.getLogger(__name__)

# What the database raises for a value it refuses (a NUL: psycopg2's ValueError; a
# constraint, a type, a length: DataError, IntegrityError): a line it refuses is skipped.
# Anything else (a lock, a lost connection, a setup error) fails the page as it is.
REFUSED_VALUE_ERRORS = (
    ValueError,
    psycopg2.DataError,
    psycopg2.errors.CheckViolation,
    psycopg2.errors.UniqueViolation,
)


class AccountBankConnectionAccount(models.Model):
    _inherit = "account.bank.connection.account"

    def _statement_line_vals(self, transaction, currencies):
        """The statement line of one Salt Edge transaction, as ``clean_transaction``
        returns it: every value was checked and cleaned there, the line's own values are
        ``saltedge_transactions.line_values``. ``currencies``: the foreign currencies met so
        far (code: res.currency), filled here."""
        vals = dict(
            line_values(transaction, own_iban=self.iban),
            journal_id=self.journal_id.id,
            saltedge_account_id=self.saltedge_account_id,
        )
        foreign = foreign_amount(transaction, self._journal_currency().name)
        if foreign:
            code, amount_currency = foreign
            if code not in currencies:
                currencies[code] = self.connection_id._saltedge_currency(code, activate=True)
            if currencies[code]:
                vals["foreign_currency_id"] = currencies[code].id
                vals["amount_currency"] = amount_currency
        return vals

    def _set_partners(self, vals_list):
        """The partner of each line whose counterparty IBAN is the bank account of exactly
        one commercial partner the journal's company sees, as Odoo's own statement import
        does; none when several partners or none have it. One query for the page, whatever
        its length."""
        ibans = sorted({vals["account_number"] for vals in vals_list if vals["account_number"]})
        if not ibans:
            return
        company = self.journal_id.company_id
        self.env["res.partner.bank"].flush_model(["sanitized_acc_number", "partner_id", "active"])
        self.env["res.partner"].flush_model(["commercial_partner_id", "company_id", "active"])
        rows = self.env.execute_query(
            SQL(
                "SELECT DISTINCT bank.sanitized_acc_number, partner.commercial_partner_id "
                "FROM res_partner_bank bank "
                "JOIN res_partner partner ON partner.id = bank.partner_id "
                "WHERE bank.sanitized_acc_number = ANY(%s) AND bank.active AND partner.active "
                "AND (bank.company_id IS NULL OR bank.company_id = %s) "
                "AND (partner.company_id IS NULL OR partner.company_id = %s)",
                ibans,
                company.id,
                company.id,
            )
        )
        partners = {}
        for iban, partner_id in rows:
            partners.setdefault(iban, []).append(partner_id)
        for vals in vals_list:
            found = partners.get(vals["account_number"], ())
            if len(found) == 1:
                vals["partner_id"] = found[0]

    def _create_lines(self, vals_list, counts):
        """Create the statement lines of one page: one ``create()`` for the page.

        When the database refuses a value that passed every check, the page is created
        again line by line, each in a savepoint, and only the lines it refuses are skipped
        (with its reason). When it refuses every line of a page of several, the cause is no
        value but the setup: the page fails, nothing is skipped."""
        journal = self.journal_id
        Line = self.env["account.bank.statement.line"].sudo().with_company(journal.company_id)
        try:
            # The savepoint's flush makes the database's refusal happen here, not later.
            with self.env.cr.savepoint():
                Line.create(vals_list)
        except REFUSED_VALUE_ERRORS:
            _logger.info(
                "Bank connection %s, account %s: the database refused a page of %s lines; "
                "creating them one by one.",
                self.connection_id.id,
                self.id,
                len(vals_list),
            )
        else:
            counts.created += len(vals_list)
            return
        refused = []
        for vals in vals_list:
            try:
                with self.env.cr.savepoint():
                    Line.create(vals)
            except psycopg2.errors.UniqueViolation as error:
                if error.diag.constraint_name != const.LINE_UNIQUE_CONSTRAINT:
                    refused.append((vals, error))
                else:
                    # Another transaction created it meanwhile: it is in the journal once.
                    counts.duplicates += 1
            except REFUSED_VALUE_ERRORS as error:
                refused.append((vals, error))
            else:
                counts.created += 1
        if len(vals_list) > 1 and len(refused) == len(vals_list):
            raise refused[0][1]
        for vals, error in refused:
            self._skip(
                counts, vals["saltedge_transaction_id"], vals["date"], None, database_error=error
            )

    def _skip(self, counts, shown_id, shown_date, reason, database_error=None):
        """Count a transaction that cannot become a line, with a line of text that names it
        (its Salt Edge id and date as received) and says why (``reason``: one of
        saltedge_transactions' NO_*, or the database's ``database_error``)."""
        if database_error is not None:
            reason_text = self.env._(
                "refused by the database: %s", self._database_reason(database_error)
            )
        else:
            reason_text = {
                NO_ID: self.env._("no valid id"),
                NO_DATE: self.env._("no valid date"),
                NO_AMOUNT: self.env._("no valid amount"),
            }.get(reason) or self.env._("not a transaction")
        note = self.env._(
            "%(id)s of %(date)s (%(reason)s)", id=shown_id, date=shown_date, reason=reason_text
        )
        _logger.warning(
            "Bank connection %s, account %s: transaction skipped: %s",
            self.connection_id.id,
            self.id,
            note,
        )
        counts.skip(note)

    @api.model
    def _database_reason(self, error):
        """The database's reason for refusing a line, without the refused row (which its
        DETAIL repeats)."""
        diag = getattr(error, "diag", None)
        text = (diag and diag.message_primary) or str(error).split("\n", 1)[0]
        return display(text, const.DATABASE_REASON_LIMIT)

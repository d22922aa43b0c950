"""One account's import: its pages of transactions from the cursor (each page's lines are
built in ``account_bank_connection_account_lines``), the match of the journal's earlier
lines, and, once Salt Edge's fetch has finished, the opening line and the balance check.
"""

import time
from datetime import timedelta

from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.misc import formatLang

from ..saltedge_transactions import (
    ImportCounts,
    InvalidTransaction,
    clean_transaction,
    is_marked_duplicate,
    is_pending,
    page_cursor,
)
from . import const
from .account_bank_connection_import import ImportHandedOver


class AccountBankConnectionAccount(models.Model):
    _inherit = "account.bank.connection.account"

    first_sync_done = fields.Boolean(
        copy=False,
        readonly=True,
        help="The whole history the consent covers was imported once and the opening "
        "balance set.",
    )

    journal_had_lines = fields.Boolean(
        string="Journal had its own lines",
        copy=False,
        readonly=True,
        help="The journal already had statement lines when this account was linked to it: "
        "no opening line is booked then, a difference shows as a balance mismatch.",
    )

    def _import_pages(self, client, counts, commit, run, deadline=None):
        """Stream this account's posted transactions into its journal, page by page from
        the cursor (from the consent's start the first time). Each page's step also writes
        the run's counts, so a long run shows its progress (the waiting page's count).
        Returns True when the ``deadline`` stopped it before the last page."""
        self.ensure_one()
        connection = self.connection_id
        # Foreign currencies met so far (code: res.currency), kept from one page to the
        # next once the page that found them is in: a page rolled back takes its
        # currency's activation with it.
        currencies = {}
        for items, next_id in client.iter_transaction_pages(
            connection.saltedge_connection_id,
            self.saltedge_account_id,
            from_id=self.last_transaction_id or None,
        ):
            if deadline is not None and not counts.fetched:
                # The very first page of a waiting page's import: its first lines are
                # committed on their own, on screen at once.
                chunks = [items[: const.FIRST_CHUNK], items[const.FIRST_CHUNK :]]
            else:
                chunks = [items]
            for chunk in filter(None, chunks):
                # A chunk's counts (and the currencies it found) count once it is in.
                page = ImportCounts()
                found = dict(currencies)
                try:
                    with connection._import_step(commit):
                        self._import_page(chunk, page, found)
                        total = ImportCounts(**vars(counts))
                        total.add(page)
                        run.write(total.as_vals())
                except ImportHandedOver:
                    counts.add(page)
                    raise
                counts.add(page)
                currencies = found
            if next_id and deadline is not None and time.monotonic() >= deadline:
                return True
        return False

    def _import_page(self, items, counts, currencies):
        """Create the lines of one page that the journal does not have yet, and move the
        cursor past the page. Pending transactions wait until they are posted.

        Only cleaned values reach the database (see saltedge_transactions): a transaction
        that cannot become a line (no usable id, date or amount, or a line the database
        refuses) is skipped and said on the run, and the cursor moves past it all the
        same, so that it never blocks the account."""
        counts.fetched += len(items)
        # Salt Edge sends the cursor's own transaction again, first: skipped, it was said
        # when it was read the first time.
        previous_cursor = self.last_transaction_id
        posted = {}
        for item in items:
            if is_pending(item):
                counts.pending += 1
            elif is_marked_duplicate(item):
                counts.duplicates += 1
            else:
                try:
                    transaction = clean_transaction(item)
                except InvalidTransaction as invalid:
                    if previous_cursor and invalid.transaction_id == previous_cursor:
                        counts.duplicates += 1
                    else:
                        self._skip(counts, invalid.shown_id, invalid.shown_date, invalid.reason)
                    continue
                if transaction["id"] in posted:
                    counts.duplicates += 1
                else:
                    posted[transaction["id"]] = transaction
        known = self._known_transaction_ids(list(posted))
        fresh = {key: transaction for key, transaction in posted.items() if key not in known}
        counts.duplicates += len(posted) - len(fresh)
        matched = self._match_earlier_lines(fresh)
        counts.matched += len(matched)
        vals_list = [
            self._statement_line_vals(transaction, currencies)
            for key, transaction in fresh.items()
            if key not in matched
        ]
        if vals_list:
            self._set_partners(vals_list)
            self._create_lines(vals_list, counts)
        cursor = page_cursor(items)
        if cursor:
            self.last_transaction_id = cursor

    def _known_transaction_ids(self, transaction_ids):
        if not transaction_ids:
            return set()
        self.env["account.bank.statement.line"].flush_model(["saltedge_transaction_id"])
        rows = self.env.execute_query(
            SQL(
                "SELECT saltedge_transaction_id FROM account_bank_statement_line "
                "WHERE journal_id = %s AND saltedge_transaction_id = ANY(%s)",
                self.journal_id.id,
                transaction_ids,
            )
        )
        return {row[0] for row in rows}

    def _match_earlier_lines(self, transactions):
        """Match ``transactions`` (Salt Edge id -> transaction, none known in the journal)
        to the journal's lines that came from elsewhere: a file import (CODA, CSV), a manual
        line, a former connection of the same bank account (whose Salt Edge ids differ).

        By date and amount, and by counts: each earlier line matches one transaction at
        most, so two equal payments on one day are two lines, and a third equal one that
        the journal did not have is created. A matched line takes the transaction's Salt
        Edge id, so later runs know it. Returns {Salt Edge id: line id}.
        """
        if not transactions:
            return {}
        # Lines matched or created earlier in this transaction must be seen by the query
        # (plain SQL carries no field metadata for execute_query to flush by itself).
        self.env["account.bank.statement.line"].flush_model()
        self.env["account.move"].flush_model(["date"])
        days = sorted({transaction["made_on"] for transaction in transactions.values()})
        # Rows fetched with the query, before anything else may use the cursor: the ORM
        # reading a cold record (the journal's currency below) runs its own query on it.
        rows = self.env.execute_query(
            SQL(
                "SELECT line.id, move.date, line.amount FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id "
                "WHERE line.journal_id = %s AND move.date = ANY(%s::date[]) "
                "AND (line.saltedge_account_id IS NULL OR line.saltedge_account_id != %s) "
                "AND (line.saltedge_transaction_id IS NULL "
                "     OR line.saltedge_transaction_id NOT LIKE %s) "
                "ORDER BY line.id",
                self.journal_id.id,
                days,
                self.saltedge_account_id,
                const.OPENING_KEY % "%",
            )
        )
        currency = self._journal_currency()
        pools = {}
        for line_id, day, amount in rows:
            pools.setdefault((day.isoformat(), currency.round(amount)), []).append(line_id)
        matched = {}
        for key, transaction in transactions.items():
            amount = currency.round(float(transaction.get("amount") or 0.0))
            pool = pools.get((transaction["made_on"], amount))
            if pool:
                matched[key] = pool.pop(0)
        if matched:
            Line = self.env["account.bank.statement.line"].sudo()
            for key, line_id in matched.items():
                Line.browse(line_id).write(
                    {
                        "saltedge_transaction_id": key,
                        "saltedge_account_id": self.saltedge_account_id,
                    }
                )
        return matched

    def _journal_currency(self):
        return self.journal_id.currency_id or self.journal_id.company_id.currency_id

    def _journal_balance(self):
        """The sum of the journal's posted statement lines, in the journal's currency."""
        self.env.flush_all()
        [(balance,)] = self.env.execute_query(
            SQL(
                "SELECT COALESCE(SUM(line.amount), 0) FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id "
                "WHERE line.journal_id = %s AND move.state = 'posted'",
                self.journal_id.id,
            )
        )
        return balance

    def _finish_first_sync(self):
        """After the first complete import: an opening line for what the bank had before
        the oldest imported transaction, so the journal's balance is the bank's. Returns
        ``(created, balanced)``: the number of lines created (0 or 1), and whether the
        journal's balance is the bank's by construction now (then the balance check has
        nothing to sum again)."""
        self.ensure_one()
        if self.first_sync_done:
            return 0, False
        self.first_sync_done = True
        if self.journal_had_lines:
            # The journal has its own history (file imports, a former connection): an
            # opening line would silently absorb any difference. A difference shows as the
            # balance mismatch instead.
            return 0, False
        currency = self._journal_currency()
        difference = currency.round(self.balance - self._journal_balance())
        if currency.is_zero(difference):
            return 0, True
        [(oldest,)] = self.env.execute_query(
            SQL(
                "SELECT MIN(move.date) FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id WHERE line.journal_id = %s",
                self.journal_id.id,
            )
        )
        (
            self.env["account.bank.statement.line"]
            .sudo()
            .with_company(self.journal_id.company_id)
            .create(
                {
                    "journal_id": self.journal_id.id,
                    "date": (oldest - timedelta(days=1))
                    if oldest
                    else self.connection_id._company_today(),
                    "amount": difference,
                    "payment_ref": self.env._("Opening balance (%s)", self.connection_id.name),
                    "saltedge_transaction_id": const.OPENING_KEY % self.saltedge_account_id,
                }
            )
        )
        return 1, True

    def _balance_difference_note(self):
        """A sentence when the journal's balance is not the bank's, else False."""
        self.ensure_one()
        if not self.first_sync_done:
            return False
        currency = self._journal_currency()
        journal_balance = self._journal_balance()
        if not currency.compare_amounts(journal_balance, self.balance):
            return False
        return self.env._(
            "%(journal)s shows %(odoo)s, the bank %(bank)s (difference %(difference)s).",
            journal=self.journal_id.display_name,
            odoo=formatLang(self.env, journal_balance, currency_obj=currency),
            bank=formatLang(self.env, self.balance, currency_obj=currency),
            difference=formatLang(self.env, self.balance - journal_balance, currency_obj=currency),
        )

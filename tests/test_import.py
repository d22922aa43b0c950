"""The transaction import against the Salt Edge sandbox over HTTP: every posted transaction
exactly once (within a page, across runs, across parallel runs), pending ones once posted,
what a statement line says, the opening line and the balance check, refreshes, failures
halfway and a broken connection among healthy ones.

Speed is measured by ``make bench``, never here.
"""

import datetime
import threading
import time
from unittest.mock import patch

import psycopg2

from odoo import SUPERUSER_ID, api, fields
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user
from odoo.tools import mute_logger

from ..models import const
from ..saltedge_references import (
    REMITTANCE_FIELDS,
    find_structured_communication,
    payment_reference,
)
from ..saltedge_transactions import ImportCounts, normalize_iban
from ..sandbox.ledger import drafts_for_period
from ..sandbox.providers import BUSINESS_HOLDER, PROVIDERS_BY_CODE, belgian_iban
from .common import (
    BELFIUS_CURRENT,
    INSTANT_FETCH,
    KBC_CURRENT,
    N_BANK,
    BankConnectionCase,
    CommittedConnectionMixin,
    ImportMixin,
    SandboxMixin,
    first_import,
    import_transactions,
    journal_balance,
    opening_line,
)

# The import's rooms log under the models' logger (the run, its pages, their lines).
IMPORT_LOGGER = "odoo.addons.account_bank_connection.models"
PENDING_BANK = "fakebank_oauth_with_pending_xf"
PENDING_IBAN = belgian_iban(953, 1000001)
ING_CURRENT = "BE38068556677872"
N_TRANSACTIONS = 250  # three pages of at most 100
STRUCTURED = r"\+\+\+\d{3}/\d{4}/\d{5}\+\+\+"


class TestImport(ImportMixin, BankConnectionCase):
    sandbox_kwargs = {**INSTANT_FETCH, "n_transactions": N_TRANSACTIONS}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Line = cls.env["account.bank.statement.line"]
        cls.n_journal = cls._bank_journal("Fake N", "FAKN", belgian_iban(954, 1000001))
        cls.pending_journal = cls._bank_journal("Fake pending", "FAKP", PENDING_IBAN)
        # The sandbox banks keep their books in euros; so do their journals here.
        euro = cls.env.ref("base.EUR")
        euro.active = True
        (
            cls.kbc_journal | cls.belfius_journal | cls.n_journal | cls.pending_journal
        ).currency_id = euro

    def setUp(self):
        super().setUp()
        self.reset_sandbox()

    # --- the first import ------------------------------------------------------------

    def test_the_first_import_brings_every_posted_transaction_once_and_an_opening_line(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        created = self.import_now(connection, "first")[0].created_count
        remote = self.remote_transactions(connection, account)
        lines = self.imported(self.kbc_journal)
        self.assertTrue(remote)
        self.assertEqual(
            sorted(lines.mapped("saltedge_transaction_id")), sorted(str(t["id"]) for t in remote)
        )
        # The opening line says what the bank held before the oldest transaction.
        opening = opening_line(account)
        bank_balance = self.remote_balance(connection, account)
        self.assertTrue(opening)
        self.assertEqual(created, len(remote) + 1)
        self.assertAlmostEqual(
            opening.amount, bank_balance - sum(t["amount"] for t in remote), places=2
        )
        self.assertLess(opening.date, min(lines.mapped("date")))
        self.assertAlmostEqual(journal_balance(self.kbc_journal), bank_balance, places=2)
        self.assertTrue(account.first_sync_done)
        self.assertFalse(connection.balance_mismatch_note)
        self.assertEqual(account.last_transaction_id, max((str(t["id"]) for t in remote), key=int))
        run = connection.import_run_ids
        self.assertEqual(len(run), 1)
        self.assertEqual(
            (run.trigger, run.state, run.fetched_count, run.created_count, run.duplicate_count),
            ("first", "done", len(remote), len(remote) + 1, 0),
        )
        self.assertTrue(run.date_end >= run.date_start)
        self.assertTrue(connection.last_sync)

    # --- exactly once for the whole life of a bank account -----------------------------

    def assert_each_bank_transaction_once(self, connection, journal):
        """Every one of the bank's transactions is one line of the journal: never two."""
        account = connection.account_ids.filtered(lambda a: a.journal_id == journal)
        remote = self.remote_transactions(connection, account)
        lines = self.Line.search([("journal_id", "=", journal.id)])
        for transaction in remote:
            same = lines.filtered(
                lambda line, t=transaction: line.saltedge_transaction_id == str(t["id"])
            )
            self.assertEqual(len(same), 1, f"transaction {transaction['id']}")
        return remote

    def assert_the_journal_is_the_banks_once(self, connection, journal):
        """Every bank transaction once in ``journal``, and its balance the bank's."""
        remote = self.assert_each_bank_transaction_once(connection, journal)
        account = connection.account_ids.filtered(lambda a: a.journal_id == journal)
        self.assert_journal_is_the_banks(journal, connection, account)
        self.assertFalse(connection.balance_mismatch_note)
        return remote

    def test_reconnecting_after_a_disconnect_books_no_transaction_twice(self):
        first = self.connected(account_ibans=[KBC_CURRENT])
        self.run_scheduled_action()
        lines_before = len(self.Line.search([("journal_id", "=", self.kbc_journal.id)]))
        first.action_disconnect()
        self.assertFalse(self.kbc_journal.bank_connection_id)
        # Connect bank again on the same journal: a new Salt Edge connection, new ids for
        # the same bank transactions.
        second = self.connected(account_ibans=[KBC_CURRENT])
        self.assertNotEqual(second, first)
        self.assertNotEqual(second.saltedge_connection_id, first.saltedge_connection_id)
        [run] = self.run_scheduled_action()
        self.assertEqual(run.connection_id, second)
        remote = self.assert_the_journal_is_the_banks_once(second, self.kbc_journal)
        lines = self.Line.search([("journal_id", "=", self.kbc_journal.id)])
        self.assertEqual(len(lines), lines_before, "nothing booked twice, no second opening")
        self.assertEqual((run.created_count, run.matched_count), (0, len(remote)))
        self.assertFalse(opening_line(second.account_ids))

    def test_a_new_connection_after_expiry_takes_the_journal_over_and_books_nothing_twice(self):
        # A bank that gives 90 days of consent, as many Belgian banks still do.
        self.env["ir.config_parameter"].sudo().set_param(const.PARAM_CONSENT_DAYS, "90")
        first = self.connected(account_ibans=[KBC_CURRENT])
        self.run_scheduled_action()
        # The connection lives its life: two days before its consent ends Salt Edge
        # refreshes it by itself and the hourly import brings the new days.
        self.advance_sandbox_days(88)
        path = f"connections/{first.saltedge_connection_id}/automatic_refresh"
        self.sandbox_control(path)
        self.sandbox_control("fetches/wait", {"timeout": 30})
        self.run_scheduled_action()
        last_day = max(self.imported(self.kbc_journal).mapped("date")).isoformat()
        # Three days later the consent has run out: expired, and a new connect.
        self.advance_sandbox_days(3)
        self.Connection._cron_check_consents()
        self.assertEqual(first.state, "expired")
        second = self.connected(account_ibans=[KBC_CURRENT])
        self.assertEqual(self.kbc_journal.bank_connection_id, second)
        self.assertEqual(second.account_ids.journal_id, self.kbc_journal)
        self.assertFalse(first.account_ids.journal_id)
        [run] = self.run_scheduled_action()
        self.assertEqual(run.connection_id, second)
        remote = self.assert_the_journal_is_the_banks_once(second, self.kbc_journal)
        # The days the first connection brought are matched, the days after it created.
        known = [t for t in remote if t["made_on"] <= last_day]
        self.assertTrue(known)
        self.assertLess(len(known), len(remote))
        self.assertEqual(
            (run.matched_count, run.created_count), (len(known), len(remote) - len(known))
        )
        self.assertFalse(opening_line(second.account_ids))

    def forget_the_bank(self):
        """What the bank will show, read through a connection that is then forgotten
        (Salt Edge included): ``(transactions, balance)``."""
        probe = self.connected(account_ibans=[KBC_CURRENT])
        remote = self.remote_transactions(probe, probe.account_ids)
        balance = self.remote_balance(probe, probe.account_ids)
        probe.action_disconnect()
        probe.unlink()
        # The same bank, days and transactions again, under new Salt Edge ids.
        self.reset_sandbox()
        self.company.sudo().saltedge_customer_id = False
        return remote, balance

    def test_the_lines_of_a_bank_file_are_matched_and_the_journal_is_the_banks(self):
        # Before the connection the company imported a bank statement (CODA, CSV): its
        # opening balance and the 20 oldest transactions, dates and amounts as the bank's.
        remote, balance = self.forget_the_bank()
        oldest = sorted(remote, key=lambda t: (t["made_on"], int(t["id"])))[:20]
        first_day = fields.Date.to_date(oldest[0]["made_on"])
        file_lines = self.Line.create(
            [
                {
                    "journal_id": self.kbc_journal.id,
                    "date": first_day - datetime.timedelta(days=1),
                    "amount": balance - sum(t["amount"] for t in remote),
                    "payment_ref": "CODA: beginsaldo",
                }
            ]
            + [
                {
                    "journal_id": self.kbc_journal.id,
                    "date": transaction["made_on"],
                    "amount": transaction["amount"],
                    "payment_ref": f"CODA {index}",
                }
                for index, transaction in enumerate(oldest)
            ]
        )
        connection = self.connected(account_ibans=[KBC_CURRENT])
        [run] = self.run_scheduled_action()
        remote = self.assert_the_journal_is_the_banks_once(connection, self.kbc_journal)
        self.assertEqual((run.matched_count, run.created_count), (20, len(remote) - 20))
        self.assertEqual(len(file_lines.filtered("saltedge_transaction_id")), 20)
        self.assertFalse(opening_line(connection.account_ids))

    def test_lines_of_a_file_import_are_matched_by_counts_and_no_opening_hides_a_gap(self):
        # The statement had three of the bank's transactions; one of them twice, as two
        # equal payments on one day, though the bank lists it once.
        remote, _balance = self.forget_the_bank()
        chosen = remote[:3]
        file_lines = self.Line.create(
            [
                {
                    "journal_id": self.kbc_journal.id,
                    "date": transaction["made_on"],
                    "amount": transaction["amount"],
                    "payment_ref": f"CODA {index}",
                }
                for index, transaction in enumerate(chosen)
            ]
            + [
                {
                    "journal_id": self.kbc_journal.id,
                    "date": chosen[0]["made_on"],
                    "amount": chosen[0]["amount"],
                    "payment_ref": "CODA: the same payment made twice that day",
                }
            ]
        )
        connection = self.connected(account_ibans=[KBC_CURRENT])
        [run] = self.run_scheduled_action()
        remote = self.assert_each_bank_transaction_once(connection, self.kbc_journal)
        # Three lines matched (one each), the fourth (an equal payment the bank does not
        # list twice) stays as it is; everything else is created once.
        self.assertEqual(run.matched_count, 3)
        self.assertEqual(run.created_count, len(remote) - 3)
        self.assertEqual(len(file_lines.filtered("saltedge_transaction_id")), 3)
        # The journal had a history: no opening line; the difference is said, not hidden.
        self.assertFalse(opening_line(connection.account_ids))
        self.assertTrue(connection.balance_mismatch_note)
        self.assertIn(self.kbc_journal.display_name, connection.balance_mismatch_note)

    def test_genuine_twins_at_the_bank_are_both_kept_and_an_earlier_line_matches_one(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.run_scheduled_action()
        # The bank books two equal payments on one day (the same parking, twice); the
        # accountant had typed one of them in already.
        twin = {"amount": -42.5, "description": "PARKING INTERPARKING GENT"}
        path = f"connections/{connection.saltedge_connection_id}/add_transactions"
        added = self.sandbox_control(
            path, {"count": 2, "account_id": account.saltedge_account_id, "override": twin}
        )["data"]
        self.assertEqual(len({(t["made_on"], t["amount"]) for t in added}), 1)
        typed = self.Line.create(
            {
                "journal_id": self.kbc_journal.id,
                "date": added[0]["made_on"],
                "amount": -42.5,
                "payment_ref": "Parking (typed by hand)",
            }
        )
        [run] = self.run_scheduled_action()
        self.assert_the_journal_is_the_banks_once(connection, self.kbc_journal)
        # One twin took the typed line, the other is a line of its own: both are kept.
        self.assertEqual((run.matched_count, run.created_count), (1, 1))
        self.assertIn(typed.saltedge_transaction_id, {str(t["id"]) for t in added})
        twins = self.Line.search(
            [
                ("journal_id", "=", self.kbc_journal.id),
                ("date", "=", added[0]["made_on"]),
                ("amount", "=", -42.5),
            ]
        )
        self.assertEqual(len(twins), 2)

    def test_a_line_has_the_date_amount_communication_counterparty_and_foreign_amount(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        first_import(connection)
        lines = {line.saltedge_transaction_id: line for line in self.imported(self.kbc_journal)}
        seen = {"structured": 0, "payer": 0, "payee": 0, "foreign": 0}
        for transaction in self.remote_transactions(connection, account):
            line, extra = lines[str(transaction["id"])], transaction["extra"]
            self.assertEqual(line.date, fields.Date.to_date(transaction["made_on"]))
            self.assertAlmostEqual(line.amount, transaction["amount"], places=2)
            # The description as the bank wrote it, and the structured communication found
            # there or in the remittance fields in its canonical form.
            texts = [extra.get(key) or "" for key in REMITTANCE_FIELDS]
            self.assertEqual(line.payment_ref, payment_reference(transaction["description"], texts))
            self.assertTrue(line.payment_ref.startswith(transaction["description"]))
            if find_structured_communication(transaction["description"], *texts):
                self.assertRegex(line.payment_ref, STRUCTURED)
                seen["structured"] += 1
            side = "payer" if transaction["amount"] > 0 else "payee"
            self.assertEqual(line.partner_name or False, extra.get(side) or False)
            seen[side] += bool(extra.get(side))
            # However the bank wrote it (grouped, lower case), the IBAN as IBANs compare.
            counterparty_iban = normalize_iban(extra.get(f"{side}_information"))
            if counterparty_iban and counterparty_iban != KBC_CURRENT:
                self.assertEqual(line.account_number, counterparty_iban)
            else:
                # A card payment or a fee: no counterparty account, never our own IBAN.
                self.assertFalse(line.account_number)
            if extra.get("original_currency_code"):
                self.assertEqual(line.foreign_currency_id.name, extra["original_currency_code"])
                self.assertAlmostEqual(line.amount_currency, extra["original_amount"], places=2)
                self.assertEqual(line.amount_currency < 0, line.amount < 0)
                seen["foreign"] += 1
            else:
                self.assertFalse(line.foreign_currency_id)
        self.assertTrue(all(seen.values()), seen)

    # --- exactly once ----------------------------------------------------------------

    def test_a_second_run_and_a_run_from_the_start_import_nothing_twice(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        first = first_import(connection)
        path = f"connections/{connection.saltedge_connection_id}/add_transactions"
        added = self.sandbox_control(path, {"count": 5, "account_id": account.saltedge_account_id})
        self.assertEqual(import_transactions(connection), 5)
        self.assertEqual(import_transactions(connection), 0)
        # Even from the consent's start again every transaction is a known one.
        account.last_transaction_id = False
        run, error = self.run_import(connection)
        self.assertIsNone(error)
        remote = self.remote_transactions(connection, account)
        self.assertEqual((run.created_count, run.duplicate_count), (0, len(remote)))
        lines = self.imported(self.kbc_journal)
        self.assertEqual(len(lines), len(remote))
        self.assertEqual(len(lines) + 1, first + 5)
        self.assertEqual(len(set(lines.mapped("saltedge_transaction_id"))), len(lines))
        self.assertTrue(
            {str(t["id"]) for t in added["data"]} <= set(lines.mapped("saltedge_transaction_id"))
        )
        self.assertEqual(len(self.runs_of(connection)), 4)

    def test_a_run_reads_no_more_than_it_needs(self):
        """The work of a run beyond its lines: the balance is summed once when the opening
        line is booked (it makes the journal's balance the bank's), and a run that finds
        every account linked and unchanged writes no account and looks for no journal."""
        connection = self.connected(account_ibans=[KBC_CURRENT])
        Account = type(connection.account_ids)
        Connection = type(connection)
        with patch.object(
            Account, "_journal_balance", autospec=True, side_effect=Account._journal_balance
        ) as sums:
            first_import(connection)
        self.assertTrue(opening_line(connection.account_ids))
        self.assertEqual(sums.call_count, 1)
        self.assertFalse(connection.balance_mismatch_note)
        with (
            patch.object(Account, "write", autospec=True, side_effect=Account.write) as writes,
            patch.object(
                Connection,
                "_link_accounts_to_journals",
                autospec=True,
                side_effect=Connection._link_accounts_to_journals,
            ) as links,
            patch.object(
                Connection,
                "_saltedge_started_from",
                autospec=True,
                side_effect=Connection._saltedge_started_from,
            ) as started_from,
        ):
            self.assertEqual(import_transactions(connection), 0)
        written = {name for call in writes.call_args_list for name in call.args[1]}
        self.assertFalse(written & {"name", "iban", "currency_id", "balance"}, written)
        self.assertEqual((links.call_count, started_from.call_count), (0, 0))
        # The bank's balance moves: that, and only that, is written.
        path = f"connections/{connection.saltedge_connection_id}/add_transactions"
        self.sandbox_control(
            path, {"count": 2, "account_id": connection.account_ids.saltedge_account_id}
        )
        with patch.object(Account, "write", autospec=True, side_effect=Account.write) as writes:
            self.assertEqual(import_transactions(connection), 2)
        written = {name for call in writes.call_args_list for name in call.args[1]}
        self.assertIn("balance", written)
        self.assertFalse(written & {"name", "iban", "currency_id"}, written)
        self.assert_journal_is_the_banks(self.kbc_journal, connection, connection.account_ids)
        self.assertFalse(connection.balance_mismatch_note)

    def test_a_foreign_currency_is_looked_up_once_a_run_not_once_a_page(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        remote = self.remote_transactions(connection, account)
        codes = {
            t["extra"]["original_currency_code"]
            for t in remote
            if (t.get("extra") or {}).get("original_currency_code")
        }
        pages = {
            index // 100
            for index, t in enumerate(remote)
            if t["extra"].get("original_currency_code")
        }
        self.assertTrue(codes)
        self.assertGreater(len(pages), 1, "foreign payments on more than one page")
        Connection = type(connection)
        with patch.object(
            Connection,
            "_saltedge_currency",
            autospec=True,
            side_effect=Connection._saltedge_currency,
        ) as lookups:
            first_import(connection)
        # Looked up (and activated when needed) for the lines: once each a run.
        for_lines = [call.args[1] for call in lookups.call_args_list if call.kwargs.get("activate")]
        self.assertEqual(sorted(for_lines), sorted(codes))
        foreign = self.imported(self.kbc_journal).filtered("foreign_currency_id")
        self.assertEqual(set(foreign.foreign_currency_id.mapped("name")), codes)

    def test_a_page_that_repeats_a_transaction_or_mixes_old_and_new_creates_each_once(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        first_import(connection)
        cursor = account.last_transaction_id
        path = f"connections/{connection.saltedge_connection_id}/add_transactions"
        self.sandbox_control(path, {"count": 3, "account_id": account.saltedge_account_id})
        # A real page from the sandbox, from the cursor: the last known one and three new.
        client = connection._saltedge_client()
        items, _next_id = next(
            client.iter_transaction_pages(
                connection.saltedge_connection_id, account.saltedge_account_id, from_id=cursor
            )
        )
        self.assertEqual(len(items), 4)
        counts = ImportCounts()
        account._import_page(items + items, counts, {})
        self.assertEqual((counts.fetched, counts.created, counts.duplicates), (8, 3, 5))
        ids = self.imported(self.kbc_journal).mapped("saltedge_transaction_id")
        for item in items:
            self.assertEqual(ids.count(str(item["id"])), 1)
        self.assertEqual(account.last_transaction_id, max((str(i["id"]) for i in items), key=int))

    # --- pending, refresh ------------------------------------------------------------

    def test_pending_transactions_wait_until_posted_and_then_arrive_once(self):
        provider = PROVIDERS_BY_CODE[PENDING_BANK]
        template = provider.accounts[0]
        # A sandbox day whose last three days (pending at this bank) have transactions.
        day = datetime.date.today()
        while not drafts_for_period(
            provider, template, BUSINESS_HOLDER, day - datetime.timedelta(days=2), day
        ):
            day -= datetime.timedelta(days=1)
        self.freeze_sandbox_at(day)
        connection = self.connected(
            PENDING_BANK, journal=self.pending_journal, account_ibans=[PENDING_IBAN]
        )
        account = connection.account_ids
        self.import_now(connection, "first")
        pending = self.remote_transactions(connection, account, pending=True)
        self.assertTrue(pending)

        def matches(transaction):
            return self.imported(self.pending_journal).filtered(
                lambda line: line.date == fields.Date.to_date(transaction["made_on"])
                and line.payment_ref == transaction["description"]
                and abs(line.amount - transaction["amount"]) < 0.005
            )

        for transaction in pending:
            self.assertFalse(matches(transaction))
        # Four days later the bank has booked them (with new ids, as Salt Edge does).
        self.advance_sandbox_days(4)
        connection.last_refresh_request = fields.Datetime.now() - datetime.timedelta(hours=7)
        # Fetch transactions: a background refresh, then the import.
        run, error = self.import_now(connection)
        self.assertIsNone(error)
        self.assertEqual(len(self.refreshes(connection)), 1)
        self.assertGreater(run.created_count, 0)
        for transaction in pending:
            self.assertEqual(len(matches(transaction)), 1, transaction["description"])
        # Imported once: the next runs bring nothing more.
        self.assertEqual(self.import_now(connection)[0].created_count, 0)
        account.last_transaction_id = False
        self.assertEqual(self.import_now(connection)[0].created_count, 0)
        remote = self.remote_transactions(connection, account)
        self.assertEqual(len(self.imported(self.pending_journal)), len(remote))
        self.assert_journal_is_the_banks(self.pending_journal, connection, account)
        self.assertFalse(connection.balance_mismatch_note)

    def test_a_refresh_is_asked_at_most_every_six_hours_and_not_now_is_no_error(self):
        self.freeze_sandbox_at(datetime.date.today())
        connection = self.connected(account_ibans=[KBC_CURRENT])
        # The connect fetched everything: the first import asks no refresh.
        first_import(connection)
        import_transactions(connection)
        self.assertEqual(self.refreshes(connection), [])
        # Six hours later Odoo asks; Salt Edge says "not yet" (its own interval), which
        # is no error: what it has is imported.
        seven_hours_ago = fields.Datetime.now() - datetime.timedelta(hours=7)
        connection.last_refresh_request = seven_hours_ago
        run, error = self.run_import(connection)
        self.assertIsNone(error)
        self.assertEqual([r["status"] for r in self.refreshes(connection)], [406])
        self.assertEqual(run.state, "done")
        self.assertFalse(connection.last_error)
        # Salt Edge allows four background fetches a day; the fifth is refused, quietly,
        # and Odoo waits the interval before asking again.
        for _index in range(5):
            self.advance_sandbox_days(400 / 86400)
            connection.last_refresh_request = seven_hours_ago
            run, error = self.run_import(connection)
            self.assertIsNone(error)
        statuses = [r["status"] for r in self.refreshes(connection)]
        self.assertEqual(statuses, [406, 200, 200, 200, 200, 406])
        self.assertGreater(connection.last_refresh_request, seven_hours_ago)
        self.assertFalse(connection.last_error)
        self.assertEqual(self.runs_of(connection).mapped("state"), ["done"] * 8)
        # Within the interval no refresh is asked at all.
        self.run_import(connection)
        self.assertEqual(len(self.refreshes(connection)), 6)

    # --- balances --------------------------------------------------------------------

    def test_a_journal_balance_that_differs_from_the_banks_is_flagged_once(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        first_import(connection)
        self.assertFalse(connection.balance_mismatch_note)
        # Somebody books a line of their own in the connected journal.
        manual = self.Line.create(
            {
                "journal_id": self.kbc_journal.id,
                "date": fields.Date.today(),
                "amount": 100.0,
                "payment_ref": "Cash deposit",
            }
        )
        import_transactions(connection)
        self.assertTrue(connection.balance_mismatch_note)
        self.assertIn(self.kbc_journal.name, connection.balance_mismatch_note)
        self.assertEqual(len(self.messages_of(connection, "differs from the bank")), 1)
        import_transactions(connection)
        self.assertTrue(connection.balance_mismatch_note)
        self.assertEqual(len(self.messages_of(connection, "differs from the bank")), 1)
        manual.unlink()
        import_transactions(connection)
        self.assertFalse(connection.balance_mismatch_note)
        self.assertFalse(connection.balance_mismatch_note)
        self.assertEqual(len(self.messages_of(connection, "match the bank")), 1)

    # --- the waiting page's slices ---------------------------------------------------

    def test_a_slice_brings_the_first_page_and_leaves_the_rest_to_the_background(self):
        connection = self.connected(N_BANK, journal=self.n_journal)
        account = connection.account_ids
        remote = self.remote_transactions(connection, account)
        cron = self.env.ref("account_bank_connection.ir_cron_import_requested")
        Trigger = self.env["ir.cron.trigger"]
        triggers = Trigger.search_count([("cron_id", "=", cron.id)])
        # No time at all: one page, never the whole history.
        run = connection._saltedge_first_import_run(seconds=0)
        self.assertEqual(
            sorted(self.imported(self.n_journal).mapped("saltedge_transaction_id")),
            sorted(str(t["id"]) for t in remote[:100]),
        )
        self.assertEqual((run.state, run.created_count, run.fetched_count), ("running", 100, 100))
        self.assertEqual(connection.resume_run_id, run)
        self.assertFalse(opening_line(account), "no opening line for part of the history")
        # The rest follows in the background even if nobody keeps the page open.
        self.assertTrue(connection.import_requested)
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), triggers + 1)
        self.Connection._cron_import_requested()
        lines = self.imported(self.n_journal)
        self.assertEqual(
            sorted(lines.mapped("saltedge_transaction_id")), sorted(str(t["id"]) for t in remote)
        )
        # One run in the history, resumed and finished by the scheduled action.
        self.assertEqual(self.runs_of(connection), run)
        # Salt Edge's from_id is inclusive: the cursor's transaction comes again, a duplicate.
        self.assertEqual(
            (run.state, run.fetched_count - run.duplicate_count, run.created_count),
            ("done", N_TRANSACTIONS, N_TRANSACTIONS + 1),
        )
        self.assertFalse(connection.resume_run_id)
        self.assertFalse(connection.import_requested)
        self.assertTrue(opening_line(account))
        self.assert_journal_is_the_banks(self.n_journal, connection, account)

    def test_slices_resume_one_run_and_its_count_grows_until_all_is_in(self):
        connection = self.connected(N_BANK, journal=self.n_journal)
        counts = []
        for _slice in range(10):
            run = connection._saltedge_first_import_run(seconds=0, keep_open=True)
            counts.append(run.created_count)
            if run.state != "running":
                break
        # Three pages of at most 100 (the next page starts at the cursor's transaction,
        # Salt Edge's from_id being inclusive), then the opening line with the last one.
        self.assertEqual(len(counts), 3)
        self.assertEqual(counts, sorted(set(counts)))
        self.assertEqual((counts[0], counts[-1]), (100, N_TRANSACTIONS + 1))
        self.assertEqual(self.runs_of(connection), run)
        self.assertEqual(len(self.imported(self.n_journal)), N_TRANSACTIONS)
        self.assertFalse(connection.resume_run_id)

    # --- failures ----------------------------------------------------------------------

    def test_a_failure_halfway_loses_nothing_and_the_rerun_doubles_nothing(self):
        connection = self.connected(N_BANK, journal=self.n_journal)
        account = connection.account_ids
        remote = self.remote_transactions(connection, account)
        self.assertEqual(len(remote), N_TRANSACTIONS)
        # The second page fails for good (each try of the client's retries).
        self.add_fault(kind="500", count=5, path_prefix="/transactions", after=1)
        with self.assertLogs(IMPORT_LOGGER, "WARNING"):
            [run] = self.run_scheduled_action()
        self.assertEqual(run, self.runs_of(connection))
        self.assertEqual((run.state, run.created_count, run.fetched_count), ("failed", 100, 100))
        self.assertIn("InternalServerError", run.error)
        self.assertIn("500", connection.last_error)
        self.assertEqual(len(self.messages_of(connection, "The import failed")), 1)
        # The first page is kept with its cursor; no opening line for half a history.
        lines = self.imported(self.n_journal)
        self.assertEqual(
            sorted(lines.mapped("saltedge_transaction_id")), [str(t["id"]) for t in remote[:100]]
        )
        self.assertEqual(account.last_transaction_id, str(remote[99]["id"]))
        self.assertFalse(account.first_sync_done)
        self.assertFalse(opening_line(account))
        # The next run goes on from there.
        [rerun] = self.run_scheduled_action()
        lines = self.imported(self.n_journal)
        self.assertEqual(
            sorted(lines.mapped("saltedge_transaction_id")), [str(t["id"]) for t in remote]
        )
        self.assertEqual(rerun, self.runs_of(connection)[0])
        self.assertEqual(
            (rerun.state, rerun.created_count, rerun.duplicate_count), ("done", 151, 1)
        )
        self.assertFalse(connection.last_error)
        self.assertTrue(opening_line(account))
        self.assert_journal_is_the_banks(self.n_journal, connection, account)

    def test_one_broken_connection_does_not_stop_the_two_others(self):
        ing_journal = self._bank_journal("ING", "INGT", ING_CURRENT)
        kbc = self.connected(account_ibans=[KBC_CURRENT])
        belfius = self.connected(
            "belfius_sandbox_be", journal=self.belfius_journal, account_ibans=[BELFIUS_CURRENT]
        )
        ing = self.connected("ing_sandbox_be", journal=ing_journal)
        # Salt Edge no longer knows the ING connection (removed on its side).
        ing.saltedge_connection_id = "999999999999"
        with self.assertLogs(IMPORT_LOGGER, "WARNING") as logs:
            self.Connection._cron_import_transactions()
        self.assertTrue(any("ConnectionNotFound" in line for line in logs.output))
        for connection, journal in ((kbc, self.kbc_journal), (belfius, self.belfius_journal)):
            account = connection.account_ids
            self.assertEqual(
                len(self.imported(journal)), len(self.remote_transactions(connection, account))
            )
            self.assertEqual(self.runs_of(connection).state, "done")
            self.assertFalse(connection.last_error)
        self.assertFalse(self.imported(ing_journal))
        self.assertEqual(self.runs_of(ing).state, "failed")
        self.assertIn("ConnectionNotFound", ing.last_error)
        self.assertIn("ConnectionNotFound", self.runs_of(ing).error)
        self.assertEqual(len(self.messages_of(ing, "The import failed")), 1)
        # The same error again is logged and on the run, not on the chatter again.
        with self.assertLogs(IMPORT_LOGGER, "WARNING"):
            self.Connection._cron_import_transactions()
        self.assertEqual(self.runs_of(ing).mapped("state"), ["failed", "failed"])
        self.assertEqual(len(self.messages_of(ing, "The import failed")), 1)
        # The failed one is tried again every hour; the two others have nothing new at
        # Salt Edge and are not read again.
        self.assertEqual(len(self.runs_of(kbc)), 1)
        self.assertEqual(len(self.runs_of(belfius)), 1)

    # --- buttons and history ---------------------------------------------------------

    def test_fetch_transactions_on_the_journal_imports_and_says_how_many(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        accountant = new_test_user(
            self.env,
            login="import_accountant",
            groups="base.group_user,account.group_account_user",
            company_id=self.company.id,
        )
        action = self.kbc_journal.with_user(accountant).action_bank_fetch()
        created = len(self.imported(self.kbc_journal)) + 1
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn(str(created), action["params"]["message"])
        run = self.runs_of(connection)
        self.assertEqual((run.trigger, run.created_count), ("manual", created))
        # The accountant reads the history, and cannot change it.
        self.assertEqual(
            run.with_user(accountant).read(["created_count"])[0]["created_count"], created
        )
        with self.assertRaises(AccessError):
            run.with_user(accountant).write({"created_count": 0})
        # A failure is said, not raised: the run and the error stay recorded.
        connection.saltedge_connection_id = "999999999999"
        action = connection.with_user(accountant).action_fetch_transactions()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("Salt Edge no longer knows this connection", action["params"]["message"])
        self.assertEqual(self.runs_of(connection)[0].state, "failed")


class TestParallelImport(ImportMixin, CommittedConnectionMixin, SandboxMixin, TransactionCase):
    """Two database transactions at once, as two Odoo workers have them (see
    CommittedConnectionMixin)."""

    sandbox_kwargs = {**INSTANT_FETCH, "n_transactions": N_TRANSACTIONS}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_sandbox()
        cls.Line = cls.env["account.bank.statement.line"]

    def committed_connection(self):
        """The N bank's connection, its one account feeding a new journal, committed:
        ``(connection id, journal id)``."""
        connection_id, [(_account, journal_id)] = super().committed_connection(N_BANK)
        return connection_id, journal_id

    def committed_lines(self, journal_id):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            journal = env["account.journal"].browse(journal_id)
            return sorted(self.imported(journal.with_env(env)).mapped("saltedge_transaction_id"))

    def imported(self, journal):
        return journal.env["account.bank.statement.line"].search(
            [
                ("journal_id", "=", journal.id),
                ("saltedge_transaction_id", "not like", "opening:%"),
            ]
        )

    def test_a_second_run_while_the_first_holds_the_connection_moves_on_and_adds_nothing(self):
        connection_id, journal_id = self.committed_connection()
        fetches = len(self.sandbox_api_requests("GET", "/transactions"))
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            first = api.Environment(cr1, SUPERUSER_ID, {})["account.bank.connection"]
            second = api.Environment(cr2, SUPERUSER_ID, {})["account.bank.connection"]
            run, error = first.browse(connection_id)._run_import("cron")
            self.assertIsNone(error)
            self.assertEqual(run.created_count, N_TRANSACTIONS + 1)
            fetched_by_first = len(self.sandbox_api_requests("GET", "/transactions"))
            self.assertEqual(fetched_by_first - fetches, 3)
            # The first run's transaction is still open: the second moves on at once,
            # without even asking Salt Edge.
            started = time.monotonic()
            skipped, error = second.browse(connection_id)._run_import("cron")
            self.assertLess(time.monotonic() - started, 5)
            self.assertFalse(skipped)
            self.assertIsNone(error)
            self.assertEqual(
                len(self.sandbox_api_requests("GET", "/transactions")), fetched_by_first
            )
            cr1.commit()
            # Once it committed, a run from the very start finds every transaction known.
            cr2.rollback()
            connection = second.browse(connection_id)
            connection.account_ids.last_transaction_id = False
            run, error = connection._run_import("cron")
            self.assertIsNone(error)
            self.assertEqual((run.created_count, run.duplicate_count), (0, N_TRANSACTIONS))
        lines = self.committed_lines(journal_id)
        self.assertEqual(len(lines), N_TRANSACTIONS)
        self.assertEqual(len(set(lines)), N_TRANSACTIONS)

    def test_two_workers_running_the_scheduled_action_together_import_each_transaction_once(self):
        connection_id, journal_id = self.committed_connection()
        start = threading.Barrier(2)
        failures = []

        def worker():
            try:
                with self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    start.wait(timeout=30)
                    # Outside a test thread: a commit per connection and per page.
                    env["account.bank.connection"]._cron_import_transactions()
            except Exception as error:  # reported by the test below
                failures.append(error)

        workers = [threading.Thread(target=worker) for _index in range(2)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=180)
        self.assertFalse(failures)
        self.assertFalse(any(thread.is_alive() for thread in workers))
        lines = self.committed_lines(journal_id)
        self.assertEqual(len(lines), N_TRANSACTIONS)
        self.assertEqual(len(set(lines)), N_TRANSACTIONS)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            connection = env["account.bank.connection"].browse(connection_id)
            runs = connection.import_run_ids
            self.assertEqual(sum(runs.mapped("created_count")), N_TRANSACTIONS + 1)
            self.assertEqual(set(runs.mapped("state")), {"done"})
            self.assertFalse(connection.last_error)
            self.assertFalse(connection.balance_mismatch_note)

    def remove_triggers_after(self, last_trigger):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM ir_cron_trigger WHERE id > %s", [last_trigger])

    def connection_row(self, connection_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT saltedge_connection_id, saltedge_customer_id, import_requested "
                "FROM account_bank_connection WHERE id = %s",
                [connection_id],
            )
            return cr.fetchone()

    def test_a_callback_during_a_page_neither_waits_for_it_nor_ends_the_run(self):
        connection_id, journal_id = self.committed_connection()
        remote_id, customer_id, _requested = self.connection_row(connection_id)
        # The callback below commits a trigger of the requested import: gone after the test.
        with self.registry.cursor() as cr:
            cr.execute("SELECT coalesce(max(id), 0) FROM ir_cron_trigger")
            last_trigger = cr.fetchone()[0]
        self.addCleanup(self.remove_triggers_after, last_trigger)
        # Salt Edge takes three seconds to answer the second page.
        self.sandbox_control(
            "faults", {"kind": "timeout", "delay": 3, "path_prefix": "/transactions", "after": 1}
        )
        outcome = {}

        def scheduled_run():
            try:
                with self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    connection = env["account.bank.connection"].browse(connection_id)
                    run, error = connection._run_import("cron", commit=True)
                    outcome.update(run=run.id, error=error)
            except Exception as error:  # reported by the test below
                outcome["crash"] = error

        worker = threading.Thread(target=scheduled_run)
        worker.start()
        # The first page is committed: the run now waits for Salt Edge's second one.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT max(fetched_count) FROM account_bank_import_run "
                    "WHERE connection_id = %s",
                    [connection_id],
                )
                if (cr.fetchone()[0] or 0) >= 100:
                    break
            time.sleep(0.05)
        # A success callback arrives meanwhile (a fetch Salt Edge finished by itself):
        # it writes the connection's row at once, without waiting for the page.
        payload = {
            "data": {"connection_id": remote_id, "customer_id": customer_id, "stage": "finish"},
            "meta": {"version": "6", "time": fields.Datetime.now().isoformat() + "Z"},
        }
        started = time.monotonic()
        with self.registry.cursor() as cr:
            cr.execute("SET LOCAL lock_timeout = '1s'")
            env = api.Environment(cr, SUPERUSER_ID, {})
            result = env["account.bank.connection"]._saltedge_handle_callback("success", payload)
        self.assertEqual(result, "import queued")
        self.assertLess(time.monotonic() - started, 1.5)
        worker.join(timeout=120)
        self.assertFalse(worker.is_alive())
        self.assertNotIn("crash", outcome)
        self.assertIsNone(outcome["error"])
        # The run went on to the end: every transaction once, one run, done.
        lines = self.committed_lines(journal_id)
        self.assertEqual(len(lines), N_TRANSACTIONS)
        self.assertEqual(len(set(lines)), N_TRANSACTIONS)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            runs = env["account.bank.connection"].browse(connection_id).import_run_ids
            self.assertEqual(runs.ids, [outcome["run"]])
            self.assertEqual((runs.state, runs.created_count), ("done", N_TRANSACTIONS + 1))
        # The callback's request outlives the run that was under way when it came.
        self.assertTrue(self.connection_row(connection_id)[2])

    def test_a_committing_run_whose_first_step_fails_stays_in_the_history(self):
        connection_id, _journal_id = self.committed_connection()
        # Salt Edge answers 500 to every try of reading the connection.
        self.sandbox_control("faults", {"kind": "500", "count": 5, "path_prefix": "/connections"})
        with self.registry.cursor() as cr, mute_logger(IMPORT_LOGGER):
            env = api.Environment(cr, SUPERUSER_ID, {})
            run, error = (
                env["account.bank.connection"]
                .browse(connection_id)
                ._run_import("cron", commit=True)
            )
            self.assertIsNotNone(error)
            run_id = run.id
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            runs = env["account.bank.connection"].browse(connection_id).import_run_ids
            self.assertEqual(runs.ids, [run_id])
            self.assertEqual(runs.state, "failed")
            self.assertIn("InternalServerError", runs.error)
            self.assertIn("InternalServerError", runs.connection_id.last_error)

    def test_two_transactions_adding_the_same_bank_transaction_at_once_add_it_once(self):
        _connection_id, journal_id = self.committed_connection()
        vals = {
            "journal_id": journal_id,
            "date": fields.Date.today(),
            "amount": 12.5,
            "payment_ref": "Same transaction, two workers",
            "saltedge_transaction_id": "424242424242",
        }
        outcome = {}

        def second_worker():
            with self.registry.cursor() as cr:
                cr.execute("SET LOCAL lock_timeout = '60s'")
                env = api.Environment(cr, SUPERUSER_ID, {})
                try:
                    with mute_logger("odoo.sql_db"):
                        env["account.bank.statement.line"].create(dict(vals))
                except psycopg2.IntegrityError as error:
                    outcome["error"] = error
                    cr.rollback()

        with self.registry.cursor() as cr1:
            env = api.Environment(cr1, SUPERUSER_ID, {})
            env["account.bank.statement.line"].create(dict(vals))
            env.flush_all()
            thread = threading.Thread(target=second_worker)
            thread.start()
            # The second insert waits on the first transaction's unique index entry...
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self.waiting_on_a_lock():
                time.sleep(0.05)
            self.assertTrue(self.waiting_on_a_lock())
        # ...and is refused once the first one committed.
        thread.join(timeout=60)
        self.assertIsInstance(outcome.get("error"), psycopg2.errors.UniqueViolation)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM account_bank_statement_line "
                "WHERE journal_id = %s AND saltedge_transaction_id = %s",
                [journal_id, vals["saltedge_transaction_id"]],
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def waiting_on_a_lock(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cr.fetchone()[0] > 0

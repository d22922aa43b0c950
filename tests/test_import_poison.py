"""What Salt Edge sends that PostgreSQL would refuse never stops an import: a NUL in a text,
a number where text is expected, a date that is no date, a value the database refuses,
an account whose transactions cannot be read. The sandbox sends such transactions through
its control API (``add_transactions`` with an ``override``: the test's doing, not the
sandbox imitating Salt Edge).

Every import here runs as a server runs it: the scheduled action (or a worker's
``_run_import`` with commits), with a cold ORM cache.
"""

from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase
from odoo.tools import SQL, mute_logger

from ..saltedge_transactions import ImportCounts
from .common import (
    INSTANT_FETCH,
    KBC_CURRENT,
    KBC_SAVINGS,
    BankConnectionCase,
    CommittedConnectionMixin,
    SandboxMixin,
    journal_balance,
    opening_line,
)

# The import's rooms log under the models' logger (the run, its pages, their lines).
IMPORT_LOGGER = "odoo.addons.account_bank_connection.models"
SKIPPED = "could not be imported"
TWO_ACCOUNT_BANK = "fakebank_oauth_xf"


class PoisonMixin:
    """Send hand-made transactions, import as the scheduled action does, and check the
    journal against the bank."""

    def add(self, connection, account, count=1, **override):
        """``count`` new transactions at the sandbox on ``account``, each with ``override``."""
        body = {"count": count, "account_id": account.saltedge_account_id}
        if override:
            body["override"] = override
        path = f"connections/{connection.saltedge_connection_id}/add_transactions"
        return self.sandbox_control(path, body)["data"]

    def line_ids(self, env, journal_id):
        """The Salt Edge ids of the journal's lines (not the opening line), sorted."""
        lines = env["account.bank.statement.line"].search(
            [
                ("journal_id", "=", journal_id),
                ("saltedge_transaction_id", "!=", False),
                ("saltedge_transaction_id", "not like", "opening:%"),
            ]
        )
        return sorted(lines.mapped("saltedge_transaction_id"))

    def expected_ids(self, remote, skipped=()):
        """Every transaction of the bank that is valid, once."""
        skipped = {str(item["id"]) for item in skipped}
        return sorted(str(t["id"]) for t in remote if str(t["id"]) not in skipped)


class TestPoisonTransactions(PoisonMixin, BankConnectionCase):
    # Pages of 25: a transaction added among others sits inside a page, with pages after.
    sandbox_kwargs = {**INSTANT_FETCH, "page_size": 25}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Line = cls.env["account.bank.statement.line"]
        cls.savings_journal = cls._bank_journal("KBC Spaarrekening", "KBCS", KBC_SAVINGS)
        euro = cls.env.ref("base.EUR")
        euro.active = True
        (cls.kbc_journal | cls.savings_journal).currency_id = euro

    def setUp(self):
        super().setUp()
        self.reset_sandbox()

    def cron(self):
        """The hourly scheduled action as a server runs it: a fresh environment."""
        self.env.invalidate_all()
        self.Connection._cron_import_transactions()

    def runs_of(self, connection):
        return self.env["account.bank.import.run"].search([("connection_id", "=", connection.id)])

    def skip_messages(self, connection):
        return connection.message_ids.filtered(lambda message: SKIPPED in (message.body or ""))

    def assert_journal_holds_the_bank(self, connection, account, journal, skipped=()):
        """Every valid transaction of the bank once in ``journal``, nothing else."""
        remote = self.remote_transactions(connection, account)
        self.assertEqual(self.line_ids(self.env, journal.id), self.expected_ids(remote, skipped))
        return remote

    # --- text that PostgreSQL refuses or that is no text -------------------------------

    def test_a_nul_in_the_description_and_the_payer_is_removed_and_the_line_imported(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.add(connection, account, count=2)
        [poison] = self.add(
            connection,
            account,
            amount=125.5,
            description="Huur\u0000 november +++090/9337/55493+++",
            extra={"payer": "Immo\u0000 Jacobs BV", "information": "\u0000"},
        )
        self.add(connection, account, count=2)
        self.cron()
        run = self.runs_of(connection)
        self.assertEqual((run.state, run.error), ("done", False))
        line = self.Line.search([("saltedge_transaction_id", "=", str(poison["id"]))])
        self.assertEqual(line.payment_ref, "Huur november +++090/9337/55493+++")
        self.assertEqual(line.partner_name, "Immo Jacobs BV")
        self.assertEqual(line.amount, 125.5)
        self.assert_journal_holds_the_bank(connection, account, self.kbc_journal)
        self.assertAlmostEqual(
            journal_balance(self.kbc_journal),
            self.remote_balance(connection, account),
            places=2,
        )
        self.assertEqual(run.skipped_count, 0)
        self.assertFalse(self.skip_messages(connection))

    def test_numbers_for_the_description_and_the_payer_become_text(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        [poison] = self.add(
            connection,
            account,
            amount=40,
            description=20261102,
            extra={
                "payer": 5,
                "payer_information": 68539007547034,
                "account_number": 42,
                "information": None,
            },
        )
        [nothing] = self.add(
            connection,
            account,
            amount="-7.25",
            description=None,
            extra={"payee": ["x"], "information": None},
        )
        self.cron()
        run = self.runs_of(connection)
        self.assertEqual((run.state, run.error), ("done", False))
        line = self.Line.search([("saltedge_transaction_id", "=", str(poison["id"]))])
        self.assertEqual((line.payment_ref, line.partner_name), ("20261102", "5"))
        self.assertFalse(line.account_number, "a number is no IBAN")
        # An amount written as text is an amount; a description that is nothing is "/".
        line = self.Line.search([("saltedge_transaction_id", "=", str(nothing["id"]))])
        self.assertEqual((line.amount, line.payment_ref, line.partner_name), (-7.25, "/", False))
        self.assert_journal_holds_the_bank(connection, account, self.kbc_journal)
        self.assertAlmostEqual(
            journal_balance(self.kbc_journal),
            self.remote_balance(connection, account),
            places=2,
        )

    # --- a transaction that cannot become a line -----------------------------------------

    def test_a_transaction_without_a_date_or_amount_is_skipped_said_once_and_never_blocks(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.cron()
        self.assertEqual(self.runs_of(connection).state, "done")
        # Inside a page with pages after it, and as the very last one (the next run's
        # cursor, which Salt Edge sends again as the first of the next page).
        self.add(connection, account, count=3)
        [no_date] = self.add(connection, account, amount=-61.0, made_on="not a date")
        self.add(connection, account, count=30)
        [no_amount] = self.add(connection, account, amount="abc")
        self.cron()
        run = self.runs_of(connection)[0]
        self.assertEqual((run.state, run.error), ("done", False))
        self.assertEqual((run.created_count, run.skipped_count), (33, 2))
        remote = self.assert_journal_holds_the_bank(
            connection, account, self.kbc_journal, skipped=[no_date, no_amount]
        )
        self.assertEqual(account.last_transaction_id, str(no_amount["id"]))
        note = run.skipped_note
        self.assertIn(f"{no_date['id']} of not a date", note)
        self.assertIn(f"{no_amount['id']} of {no_amount['made_on']}", note)
        self.assertIn("no valid date", note)
        self.assertIn("no valid amount", note)
        # Said on the connection: its chatter once, the form until another run skips.
        [message] = self.skip_messages(connection)
        self.assertIn("2 transactions could not be imported", message.body)
        self.assertIn(str(no_date["id"]), message.body)
        self.assertEqual(connection.last_skip_run_id, run)
        self.assertEqual(connection.skipped_note, note)
        # The journal misses what the bank booked without a date: the balance check says so.
        self.assertTrue(connection.balance_mismatch_note)
        self.assertAlmostEqual(
            journal_balance(self.kbc_journal) + no_date["amount"],
            self.remote_balance(connection, account),
            places=2,
        )
        # The next hours go on: nothing skipped again, nothing said again. (Whether the
        # first of them reads the connection again depends on where the refresh the run
        # asked for stood when it ended: with nothing new it makes no run at all.)
        self.cron()
        self.add(connection, account, count=2)
        self.cron()
        later = self.runs_of(connection).filtered(lambda later_run: later_run.id > run.id)
        self.assertTrue(later)
        self.assertEqual(set(later.mapped("state")), {"done"})
        self.assertEqual(set(later.mapped("skipped_count")), {0})
        self.assertEqual(later[0].created_count, 2)
        self.assertEqual(len(self.skip_messages(connection)), 1)
        self.assertEqual(len(self.remote_transactions(connection, account)), len(remote) + 2)
        self.assert_journal_holds_the_bank(
            connection, account, self.kbc_journal, skipped=[no_date, no_amount]
        )

    def test_what_is_no_transaction_in_a_page_is_skipped_and_the_rest_imported(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.cron()
        cursor = account.last_transaction_id
        self.add(connection, account, count=3)
        client = connection._saltedge_client()
        items, _next_id = next(
            client.iter_transaction_pages(
                connection.saltedge_connection_id, account.saltedge_account_id, from_id=cursor
            )
        )
        self.assertEqual(len(items), 4)
        page = [*items, None, "garbage", {"made_on": "2026-11-02", "amount": 5, "id": "1\x002"}]
        counts = ImportCounts()
        self.env.invalidate_all()
        account._import_page(page, counts, {})
        self.assertEqual(
            (counts.fetched, counts.created, counts.duplicates, counts.skipped), (7, 3, 1, 3)
        )
        self.assertEqual(account.last_transaction_id, str(items[-1]["id"]))
        self.assertIn("? of ?", counts.skipped_notes[0])
        self.assertIn("12 of 2026-11-02", counts.skipped_notes[2])

    def test_a_line_the_database_refuses_is_skipped_and_the_rest_of_its_page_created(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.cron()
        # A value that passes every check of the import, refused by the database.
        self.env.execute_query(
            SQL(
                "ALTER TABLE account_bank_statement_line ADD CONSTRAINT abc_test_refused "
                "CHECK (payment_ref NOT LIKE %s) NOT VALID",
                "%REFUSED BY THE DATABASE%",
            )
        )
        self.add(connection, account, count=2)
        [refused] = self.add(connection, account, description="REFUSED BY THE DATABASE")
        self.add(connection, account, count=2)
        with mute_logger("odoo.sql_db"):
            self.cron()
        run = self.runs_of(connection)[0]
        self.assertEqual((run.state, run.error, run.created_count), ("done", False, 4))
        self.assertEqual(run.skipped_count, 1)
        self.assertIn(str(refused["id"]), run.skipped_note)
        self.assertIn("abc_test_refused", run.skipped_note)
        self.assert_journal_holds_the_bank(connection, account, self.kbc_journal, skipped=[refused])
        # Not skipped again: past the cursor, and nothing new at Salt Edge means no run.
        self.cron()
        self.assertEqual(self.runs_of(connection)[0], run)
        self.add(connection, account, count=1)
        self.cron()
        self.assertEqual(self.runs_of(connection)[0].skipped_count, 0)
        self.assertEqual(self.runs_of(connection)[0].created_count, 1)

    # --- one account's failure -----------------------------------------------------------

    def test_an_account_that_fails_does_not_stop_the_other_account_of_the_connection(self):
        connection = self.connected(account_ibans=[KBC_CURRENT, KBC_SAVINGS])
        # In the order the import takes them.
        accounts = self.env["account.bank.connection.account"].search(
            [("connection_id", "=", connection.id)]
        )
        journals = {account: account.journal_id for account in accounts}
        self.assertEqual(set(journals.values()), {self.kbc_journal, self.savings_journal})
        # The first account's transactions cannot be read (each try of the client).
        self.add_fault(kind="500", count=5, path_prefix="/transactions")
        with self.assertLogs(IMPORT_LOGGER, "WARNING"):
            self.cron()
        run = self.runs_of(connection)
        self.assertEqual(run.state, "failed")
        self.assertIn("InternalServerError", run.error)
        self.assertIn("500", connection.last_error)
        failed, imported = accounts[0], accounts[1]
        self.assertFalse(self.line_ids(self.env, journals[failed].id))
        remote = self.assert_journal_holds_the_bank(connection, imported, journals[imported])
        self.assertEqual(run.created_count, len(remote) + len(opening_line(imported)))
        # The account that imported is finished (opening line, balance); the other waits.
        self.assertTrue(imported.first_sync_done)
        self.assertFalse(failed.first_sync_done)
        # The next run brings the rest; every transaction once, each journal the bank's.
        self.cron()
        self.assertEqual(self.runs_of(connection)[0].state, "done")
        self.assertFalse(connection.last_error)
        for account in accounts:
            self.assert_journal_holds_the_bank(connection, account, journals[account])
            self.assertAlmostEqual(
                journal_balance(journals[account]),
                self.remote_balance(connection, account),
                places=2,
            )

    def add_fault(self, **fault):
        self.sandbox_control("faults", fault)


class TestPoisonWithCommits(PoisonMixin, CommittedConnectionMixin, SandboxMixin, TransactionCase):
    """A worker's run, committing each page as the scheduled action does outside tests:
    what is committed, and what a failed page leaves (nothing). Each test commits its own
    connection and removes it after."""

    sandbox_kwargs = {**INSTANT_FETCH, "page_size": 20}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_sandbox()

    def worker_run(self, connection_id, *names):
        """One scheduled run of the connection in a worker of its own: a new cursor (a cold
        cache), a commit per page. Returns the run's fields ``names`` and the connection's
        ``last_error``, read from another cursor."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["account.bank.connection"].browse(connection_id)._run_import("cron", commit=True)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            connection = env["account.bank.connection"].browse(connection_id)
            run = connection.import_run_ids[:1]
            return {
                **{name: run[name] for name in ("state", "error", *names)},
                "last_error": connection.last_error or "",
            }

    def committed_line_ids(self, journal_id):
        with self.registry.cursor() as cr:
            return self.line_ids(api.Environment(cr, SUPERUSER_ID, {}), journal_id)

    def test_with_commits_a_failed_page_is_undone_the_other_account_imported_and_a_skip_kept(
        self,
    ):
        connection_id, linked = self.committed_connection(TWO_ACCOUNT_BANK)
        (first_account, first_journal), (second_account, second_journal) = linked
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            connection = env["account.bank.connection"].browse(connection_id)
            first = connection.account_ids.filtered(
                lambda a: a.saltedge_account_id == first_account
            )
            [poison] = self.add(connection, first, made_on="2026-13-45")
            remote = {
                account: self.remote_transactions(connection, record)
                for account, record in (
                    (first_account, first),
                    (second_account, connection.account_ids - first),
                )
            }
        # The first account's second page cannot be read: its first page stays committed.
        self.sandbox_control(
            "faults", {"kind": "500", "count": 5, "path_prefix": "/transactions", "after": 1}
        )
        with self.assertLogs(IMPORT_LOGGER, "WARNING"):
            outcome = self.worker_run(connection_id)
        self.assertEqual(
            self.committed_line_ids(first_journal), self.expected_ids(remote[first_account][:20])
        )
        self.assertEqual(
            self.committed_line_ids(second_journal), self.expected_ids(remote[second_account])
        )
        self.assertEqual(outcome["state"], "failed")
        self.assertIn("InternalServerError", outcome["error"])
        self.assertIn("500", outcome["last_error"])
        # The next run goes on from the cursor, skips the poison once, doubles nothing.
        outcome = self.worker_run(connection_id, "skipped_count", "skipped_note")
        self.assertEqual((outcome["state"], outcome["skipped_count"]), ("done", 1))
        self.assertIn(f"{poison['id']} of 2026-13-45", outcome["skipped_note"])
        self.assertFalse(outcome["last_error"])
        self.assertEqual(
            self.committed_line_ids(first_journal),
            self.expected_ids(remote[first_account], skipped=[poison]),
        )
        self.assertEqual(
            self.committed_line_ids(second_journal), self.expected_ids(remote[second_account])
        )
        outcome = self.worker_run(connection_id, "created_count", "skipped_count")
        self.assertEqual(
            (outcome["state"], outcome["created_count"], outcome["skipped_count"]),
            ("done", 0, 0),
        )

"""Salt Edge failing on the way, table-driven over (phase, fault kind).

Phases: the connect call (the bank picker opening Salt Edge's screens), the return reading
the connection, the refresh asked before an import, and the second page of transactions.
Kinds: 429, 500, a timeout, a garbage page and a page cut off halfway, from the sandbox.

For each pair:
- a fault that lasts fewer tries than the client's retry budget is recovered within the
  same run: everything arrives, exactly once, and no error is left;
- a fault that lasts the whole budget fails with a clear error (in words, without the
  secret), loses and doubles nothing, and once the fault is gone the next run brings every
  transaction exactly once and clears the error.

The number of tries is the real one; the waits between them are shortened here. For the
timeouts the client's timeout is one second and the sandbox really waits longer.
"""

import contextlib
import time
from datetime import timedelta

import requests

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests.common import _super_send

from ..models import const
from ..sandbox.providers import belgian_iban
from .common import (
    INSTANT_FETCH,
    N_BANK,
    SECRET,
    BankConnectionCase,
    ImportMixin,
    first_import,
)

# The timeout last: it shortens the client's timeout for the rest of the test method.
FAULT_KINDS = ("429", "500", "garbage", "truncated", "timeout")
TIMEOUT = 1
RECOVERED_COUNT = 2
# Three pages of the N bank; few lines keep each case quick.
N_TRANSACTIONS = 12
PAGE_SIZE = 5
N_IBAN = belgian_iban(954, 1000001)
UPDATES_BANK = "fakebank_with_updates_xf"
UPDATES_IBAN = belgian_iban(955, 1000001)
MODULE_LOGGER = "odoo.addons.account_bank_connection"

# What the error recorded on a connection or a run names, per fault.
ERROR_CLASS = {
    "429": "TooManyRequests (HTTP 429)",
    "500": "InternalServerError (HTTP 500)",
    "garbage": "InvalidResponse (HTTP 200)",
    "truncated": "InvalidResponse (HTTP 200)",
    "timeout": "Timeout",
}
# What the accountant reads when a connect fails, per fault.
SENTENCE = {
    "429": "asks to wait before the next request",
    "500": "cannot be reached right now",
    "garbage": "the answer is not a JSON object",
    "truncated": "the answer is not a JSON object",
    "timeout": "no answer in time",
}


class TestFaults(ImportMixin, BankConnectionCase):
    sandbox_kwargs = {**INSTANT_FETCH, "n_transactions": N_TRANSACTIONS, "page_size": PAGE_SIZE}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Line = cls.env["account.bank.statement.line"]
        cls.n_journal = cls._bank_journal("Fake N", "FAKN", N_IBAN)
        cls.updates_journal = cls._bank_journal("Fake upd", "FAKU", UPDATES_IBAN)
        euro = cls.env.ref("base.EUR")
        euro.active = True
        (cls.n_journal | cls.updates_journal).currency_id = euro
        # The tries of the scheduled jobs' patient policy, and of a person waiting.
        cls.budget = const.HTTP_RETRIES + 1
        cls.interactive_budget = const.INTERACTIVE_HTTP_RETRIES + 1

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        # Odoo's test harness raises every timeout under 10 s to 10 s; the timeout faults
        # need the client's own timeout, and the sandbox is on this machine.
        if r.url.startswith(cls.sandbox.url + "/"):
            return _super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)

    def setUp(self):
        super().setUp()
        self.patch(const, "HTTP_BACKOFF_BASE", 0.02)
        self.patch(const, "HTTP_BACKOFF_MAX", 0.1)
        self.patch(const, "INTERACTIVE_BACKOFF_MAX", 0.1)
        # The imports here are the scheduled ones, with their patient policy, asking Salt
        # Edge for a refresh themselves (as they do when Salt Edge does not on its own).
        self.env["ir.config_parameter"].sudo().set_param(const.PARAM_AUTOMATIC_REFRESH, False)

    def run_import(self, connection, trigger="cron"):
        return connection.sudo()._run_import(trigger)

    # --- helpers ---------------------------------------------------------------------

    def for_each_fault(self, case, interactive=False):
        """``case(kind, count, recovered)`` for each kind, once with fewer faults than
        the budget and once with the whole budget: a person waiting (``interactive``) gets
        one retry, the scheduled jobs four."""
        budget = self.interactive_budget if interactive else self.budget
        recovered_count = min(RECOVERED_COUNT, budget - 1)
        for kind in FAULT_KINDS:
            if kind == "timeout":
                self.patch(const, "HTTP_TIMEOUT", TIMEOUT)
                self.patch(const, "INTERACTIVE_HTTP_TIMEOUT", TIMEOUT)
            for count, recovered in ((recovered_count, True), (budget, False)):
                with self.subTest(kind=kind, count=count), self.fresh_sandbox():
                    case(kind, count, recovered)

    @contextlib.contextmanager
    def fresh_sandbox(self):
        """A sandbox that knows nothing and a database rolled back afterwards."""
        self.reset_sandbox()
        savepoint = self.env.cr.savepoint()
        try:
            yield
        finally:
            savepoint.close(rollback=True)
            self.env.invalidate_all()

    def inject(self, kind, count, path_prefix, after=0):
        self.add_fault(
            kind=kind,
            count=count,
            path_prefix=path_prefix,
            after=after,
            delay=TIMEOUT + 0.5,
            retry_after=1,
        )

    def assert_fault_spent(self, kind, count):
        """Every fault was served (so the client really met them), none is left."""
        self.assertEqual(self.sandbox_get("faults"), [])
        served = [entry for entry in self.sandbox_get("requests") if entry["fault"]]
        self.assertEqual([entry["fault"] for entry in served], [kind] * count)

    def assert_in_words(self, text, expected):
        self.assertIn(expected, text or "")
        for secret in (SECRET, "PRIVATE KEY", "Traceback", "Signature"):
            self.assertNotIn(secret, text)

    def assert_imported_once(self, connection, journal):
        """The journal has each of Salt Edge's transactions exactly once, no error left."""
        account = connection.account_ids.filtered(lambda a: a.journal_id == journal)
        remote = [str(t["id"]) for t in self.remote_transactions(connection, account)]
        ids = self.imported(journal).mapped("saltedge_transaction_id")
        self.assertTrue(remote)
        self.assertEqual(len(ids), len(set(ids)), "a transaction imported twice")
        self.assertEqual(sorted(ids), sorted(remote))
        self.assertFalse(connection.last_error)
        self.assertTrue(account.first_sync_done)

    def assert_nothing_doubled(self, connection, journal):
        """Each line of the journal is one of Salt Edge's transactions, none twice."""
        account = connection.account_ids.filtered(lambda a: a.journal_id == journal)
        remote = {str(t["id"]) for t in self.remote_transactions(connection, account)}
        ids = self.imported(journal).mapped("saltedge_transaction_id")
        self.assertEqual(len(ids), len(set(ids)), "a transaction imported twice")
        self.assertLessEqual(set(ids), remote)

    def clear_faults(self):
        requests.delete(f"{self.sandbox.url}/sandbox/faults", timeout=10).raise_for_status()

    def connect_and_import(self):
        connection = self.connected(N_BANK, journal=self.n_journal)
        first_import(connection)
        self.assert_imported_once(connection, self.n_journal)
        return connection

    # --- the phases ------------------------------------------------------------------

    def test_the_connect_call_failing_is_retried_or_said_and_the_next_try_works(self):
        def case(kind, count, recovered):
            self.inject(kind, count, "/connections/connect")
            if recovered:
                with self.assertLogs(MODULE_LOGGER, "WARNING"):
                    self.connect_and_import()
                self.assert_fault_spent(kind, count)
                return
            with (
                self.assertLogs(MODULE_LOGGER, "WARNING"),
                self.assertRaises(UserError) as caught,
                self.env.cr.savepoint(),
            ):
                self.connect()
            self.assert_fault_spent(kind, count)
            self.assert_in_words(caught.exception.args[0], SENTENCE[kind])
            self.assertFalse(self.Connection.search([]))
            self.assertFalse(self.imported(self.n_journal))
            self.clear_faults()
            self.connect_and_import()

        self.for_each_fault(case, interactive=True)

    def test_the_return_reading_the_connection_failing_is_retried_or_said_and_reloadable(self):
        def case(kind, count, recovered):
            params = self.connect(N_BANK, journal=self.n_journal, account_ibans=[N_IBAN])
            self.inject(kind, count, f"/connections/{params['connection_id']}")
            if recovered:
                with self.assertLogs(MODULE_LOGGER, "WARNING"):
                    connection = self.finish(params)
                self.assert_fault_spent(kind, count)
            else:
                # The return page rolls back: the state stays usable for a reload.
                with (
                    self.assertLogs(MODULE_LOGGER, "WARNING"),
                    self.assertRaises(UserError) as caught,
                    self.env.cr.savepoint(),
                ):
                    self.finish(params)
                self.assert_fault_spent(kind, count)
                self.assert_in_words(caught.exception.args[0], SENTENCE[kind])
                self.assertFalse(self.Connection.search([]))
                self.clear_faults()
                connection = self.finish(params)
            self.assertEqual(connection.state, "connected")
            first_import(connection)
            self.assert_imported_once(connection, self.n_journal)

        self.for_each_fault(case, interactive=True)

    def test_the_return_reading_the_consent_or_the_accounts_failing_is_said_in_words(self):
        for path in ("/consents", "/accounts"):
            with self.subTest(path=path), self.fresh_sandbox():
                params = self.connect(N_BANK, journal=self.n_journal, account_ibans=[N_IBAN])
                self.inject("500", self.interactive_budget, path)
                with (
                    self.assertLogs(MODULE_LOGGER, "WARNING"),
                    self.assertRaises(UserError) as caught,
                    self.env.cr.savepoint(),
                ):
                    self.finish(params)
                self.assert_fault_spent("500", self.interactive_budget)
                self.assert_in_words(caught.exception.args[0], SENTENCE["500"])
                self.assertFalse(self.Connection.search([]))
                self.clear_faults()
                connection = self.finish(params)
                first_import(connection)
                self.assert_imported_once(connection, self.n_journal)

    def test_a_person_waiting_gets_one_retry_and_an_answer_within_the_actions_budget(self):
        self.patch(const, "INTERACTIVE_HTTP_TIMEOUT", TIMEOUT)
        # Salt Edge hangs: the return tries the call twice, then says so.
        params = self.connect(N_BANK, journal=self.n_journal, account_ibans=[N_IBAN])
        self.inject("timeout", 10, f"/connections/{params['connection_id']}")
        with (
            self.assertLogs(MODULE_LOGGER, "WARNING"),
            self.assertRaises(UserError) as caught,
            self.env.cr.savepoint(),
        ):
            self.finish(params)
        served = [entry for entry in self.sandbox_get("requests") if entry["fault"]]
        self.assertEqual(len(served), self.interactive_budget)
        self.assert_in_words(caught.exception.args[0], SENTENCE["timeout"])
        self.clear_faults()
        # Salt Edge answers, but slowly: the calls of one action share a budget, and the
        # action answers with a sentence once it is spent instead of holding the worker.
        self.patch(const, "INTERACTIVE_BUDGET_SECONDS", 2 * TIMEOUT)
        self.add_fault(kind="timeout", count=10, path_prefix="/", delay=0.7 * TIMEOUT)
        with (
            self.assertLogs(MODULE_LOGGER, "WARNING"),
            self.assertRaises(UserError) as caught,
            self.env.cr.savepoint(),
        ):
            self.finish(params)
        self.assert_in_words(caught.exception.args[0], SENTENCE["timeout"])
        self.clear_faults()
        # The same slow Salt Edge with time enough: it was the budget that stopped it.
        self.patch(const, "INTERACTIVE_BUDGET_SECONDS", 30)
        self.add_fault(kind="timeout", count=10, path_prefix="/", delay=0.7 * TIMEOUT)
        connection = self.finish(params)
        self.assertEqual(connection.state, "connected")

    def test_the_refresh_failing_imports_what_salt_edge_has_says_so_and_asks_again(self):
        # One connection for the whole table (its first import is the slow part); this
        # bank has new transactions at every refresh.
        self.reset_sandbox()
        journal = self.updates_journal
        connection = self.connected(UPDATES_BANK, journal=journal, account_ibans=[UPDATES_IBAN])
        first_import(connection)
        self.assert_imported_once(connection, journal)
        path = f"/connections/{connection.saltedge_connection_id}/background_refresh"
        for kind in FAULT_KINDS:
            if kind == "timeout":
                self.patch(const, "HTTP_TIMEOUT", TIMEOUT)
            # A cut-off answer comes after Salt Edge did the refresh: the retry meets its
            # "not yet" (406), understood when whole; when cut too, the client stops
            # there (a 406 is no passing trouble) and the run says "HTTP 406".
            cut = kind == "truncated"
            recovered_count = 1 if cut else RECOVERED_COUNT
            for count, recovered in ((recovered_count, True), (self.budget, False)):
                with self.subTest(kind=kind, count=count):
                    # Twelve hours on (at most four refreshes a day), Odoo asks Salt Edge
                    # to fetch from the bank before it imports.
                    self.advance_sandbox_days(0.5)
                    connection.last_refresh_request = fields.Datetime.now() - timedelta(hours=7)
                    self.inject(kind, count, path)
                    with self.assertLogs(MODULE_LOGGER, "WARNING"):
                        run, error = self.run_import(connection)
                    # The tries of this run: the faults, then (recovered) one answer.
                    tries = [entry["fault"] for entry in self.refreshes(connection)]
                    spent = 2 if cut and not recovered else count
                    expected = [kind] * spent + ([None] if recovered else [])
                    self.assertEqual(tries[-len(expected) :], expected)
                    self.assertNotEqual(tries[-len(expected) - 1 : -len(expected)], [kind])
                    left = self.sandbox_get("faults")
                    self.assertEqual(sum(fault["remaining"] for fault in left), count - spent)
                    self.assertIsNone(error)
                    self.assertEqual(run.state, "done")
                    if recovered:
                        self.assertGreater(run.created_count, 0)
                        self.assert_imported_once(connection, journal)
                        continue
                    # What Salt Edge had is in, once; the failed refresh is said on the
                    # connection and the run, and the next run asks again.
                    self.assert_nothing_doubled(connection, journal)
                    words = "(HTTP 406)" if cut else ERROR_CLASS[kind]
                    self.assert_in_words(connection.last_error, words)
                    self.assert_in_words(run.error, words)
                    self.assertLess(
                        connection.last_refresh_request,
                        fields.Datetime.now() - timedelta(hours=6),
                    )
                    self.clear_and_run_again(connection, journal)
                    self.assertEqual(self.refreshes(connection)[-1]["status"], 200)

    def test_the_second_page_failing_keeps_the_first_and_the_next_run_brings_the_rest(self):
        def case(kind, count, recovered):
            connection = self.connected(N_BANK, journal=self.n_journal)
            account = connection.account_ids
            remote = [str(t["id"]) for t in self.remote_transactions(connection, account)]
            self.assertEqual(len(remote), N_TRANSACTIONS)
            # Just connected: no refresh, only the pages.
            connection.last_refresh_request = fields.Datetime.now()
            self.inject(kind, count, "/transactions", after=1)
            with self.assertLogs(MODULE_LOGGER, "WARNING"):
                run, error = self.run_import(connection)
            self.assert_fault_spent(kind, count)
            if recovered:
                self.assertIsNone(error)
                self.assertEqual(run.created_count, N_TRANSACTIONS + 1)
                self.assert_imported_once(connection, self.n_journal)
                return
            self.assertEqual((run.state, run.created_count), ("failed", PAGE_SIZE))
            self.assert_in_words(connection.last_error, ERROR_CLASS[kind])
            self.assert_in_words(run.error, ERROR_CLASS[kind])
            self.assertEqual(len(self.messages_of(connection, "The import failed")), 1)
            ids = self.imported(self.n_journal).mapped("saltedge_transaction_id")
            self.assertEqual(sorted(ids), sorted(remote[:PAGE_SIZE]))
            self.assert_nothing_doubled(connection, self.n_journal)
            self.assertEqual(account.last_transaction_id, remote[PAGE_SIZE - 1])
            run = self.clear_and_run_again(connection, self.n_journal)
            self.assertEqual(run.created_count, N_TRANSACTIONS - PAGE_SIZE + 1)

        self.for_each_fault(case)

    def test_pages_going_round_in_a_circle_fail_the_run_in_words_and_double_nothing(self):
        self.reset_sandbox()
        connection = self.connected(N_BANK, journal=self.n_journal)
        account = connection.account_ids
        remote = [str(t["id"]) for t in self.remote_transactions(connection, account)]
        self.assertEqual(len(remote), N_TRANSACTIONS)
        read_before = len(self.sandbox_api_requests("GET", "/transactions"))
        connection.last_refresh_request = fields.Datetime.now()
        # Page three, the last, says its next page is page two, which the run has read.
        self.add_fault(kind="page_cycle", count=1, path_prefix="/transactions", after=2)
        with self.assertLogs(MODULE_LOGGER, "WARNING"):
            run, error = self.run_import(connection)
        self.assert_fault_spent("page_cycle", 1)
        self.assertEqual(error.error_class, "PageCycle")
        # Three pages asked for and not one more; page three, pointing back, not imported.
        read = len(self.sandbox_api_requests("GET", "/transactions")) - read_before
        self.assertEqual(read, 3)
        self.assertEqual((run.state, run.created_count), ("failed", 2 * PAGE_SIZE))
        words = f"Salt Edge's pages went round in a circle (next_id {remote[PAGE_SIZE]} was"
        self.assert_in_words(connection.last_error, words)
        self.assert_in_words(run.error, words)
        (message,) = self.messages_of(connection, "The import failed")
        self.assertIn("Odoo stopped reading from Salt Edge", message.body)
        ids = self.imported(self.n_journal).mapped("saltedge_transaction_id")
        self.assertEqual(sorted(ids), sorted(remote[: 2 * PAGE_SIZE]))
        self.assert_nothing_doubled(connection, self.n_journal)
        self.assertEqual(account.last_transaction_id, remote[2 * PAGE_SIZE - 1])
        # Salt Edge pages right again: the next run brings the rest, once.
        run = self.clear_and_run_again(connection, self.n_journal)
        self.assertEqual(run.created_count, N_TRANSACTIONS - 2 * PAGE_SIZE + 1)

    def clear_and_run_again(self, connection, journal):
        """The fault is gone: the next run brings everything, once, and clears the error."""
        self.clear_faults()
        # A request the client gave up on (a timeout) is still being answered by the
        # sandbox: a refresh it then does would start after the clock moved, and the
        # next refresh be "too soon". Every request answered first, as Salt Edge's are.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            entry["status"] is None for entry in self.sandbox_get("requests")
        ):
            time.sleep(0.2)
        self.advance_sandbox_days(400 / 86400)
        connection.last_refresh_request = fields.Datetime.now() - timedelta(hours=7)
        run, error = self.run_import(connection)
        self.assertIsNone(error)
        self.assertEqual((run.state, run.error), ("done", False))
        self.assert_imported_once(connection, journal)
        return run

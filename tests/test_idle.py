"""The hourly import reads one list of connections per company from Salt Edge, and only
the connections whose entry moved (or that need a run anyway): an idle connection costs
no request of its own. As a server runs it: the scheduled action in a cold environment."""

from .common import (
    BELFIUS_CURRENT,
    INSTANT_FETCH,
    KBC_CURRENT,
    BankConnectionCase,
    ImportMixin,
)

CONSENT_DAYS = 180
# Queries an idle connection may cost the hourly run (the bound).
IDLE_QUERIES_PER_CONNECTION = 20


class TestIdleHour(ImportMixin, BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Line = cls.env["account.bank.statement.line"]

    def setUp(self):
        super().setUp()
        self.reset_sandbox()
        self.kbc = self.connected(account_ibans=[KBC_CURRENT])
        self.belfius = self.connected(
            "belfius_sandbox_be", journal=self.belfius_journal, account_ibans=[BELFIUS_CURRENT]
        )
        for connection in self.kbc | self.belfius:
            run, error = self.import_now(connection, "first")
            self.assertFalse(error)
            self.assertEqual(run.state, "done")
        self.assertTrue(self.kbc.saltedge_idle_key)
        self.assertTrue(self.belfius.saltedge_idle_key)

    def requests_during(self, action):
        """The sandbox's API requests made while ``action()`` ran, and its result."""
        before = len(self.sandbox_get("requests"))
        self.assertLess(before, 400, "the sandbox keeps the last 500 requests")
        result = action()
        return self.sandbox_get("requests")[before:], result

    def hourly(self):
        return self.run_scheduled_action("ir_cron_import_transactions")

    def test_an_idle_hour_reads_one_list_and_imports_nothing(self):
        queries_before = self.env.cr.sql_log_count
        requests, runs = self.requests_during(self.hourly)
        queries = self.env.cr.sql_log_count - queries_before
        self.assertFalse(runs, "nothing new at Salt Edge: no import run")
        self.assertEqual(
            [(entry["method"], entry["path"]) for entry in requests],
            [("GET", "/api/v6/connections")],
            "one list for the company, no request of either connection",
        )
        self.assertIn(f"customer_id={self.company.saltedge_customer_id}", requests[0]["query"])
        self.assertLessEqual(queries, 2 * IDLE_QUERIES_PER_CONNECTION)

    def test_a_new_attempt_is_imported_without_a_callback_and_only_that_connection(self):
        # A day later Salt Edge refreshes the KBC connection by itself and its callback is
        # lost (no callback reaches Odoo in this test): only its entry in the list tells.
        self.advance_sandbox_days(1)
        self.kbc._saltedge_client().background_refresh(self.kbc.saltedge_connection_id)
        self.sandbox_control("fetches/wait", {"timeout": 30})
        added = self.sandbox_control(
            f"connections/{self.kbc.saltedge_connection_id}/add_transactions", {"count": 2}
        )["data"]
        self.assertFalse(self.kbc.import_requested)
        requests, runs = self.requests_during(self.hourly)
        self.assertEqual(runs.connection_id, self.kbc)
        self.assertEqual(runs.state, "done")
        self.assertGreaterEqual(runs.created_count, len(added))
        belfius_id = self.belfius.saltedge_connection_id
        self.assertFalse(
            [e for e in requests if belfius_id in e["path"] or belfius_id in e["query"]],
            "the idle Belfius connection was not read",
        )
        # Imported once: the next idle hour reads the list only.
        requests, runs = self.requests_during(self.hourly)
        self.assertFalse(runs)
        self.assertEqual(len(requests), 1)

    def test_transactions_added_at_salt_edge_move_its_entry_and_are_imported(self):
        added = self.sandbox_control(
            f"connections/{self.belfius.saltedge_connection_id}/add_transactions", {"count": 3}
        )["data"]
        runs = self.hourly()
        self.assertEqual(runs.connection_id, self.belfius)
        self.assertEqual(runs.created_count, len(added))

    def test_a_callback_still_triggers_its_import_at_once(self):
        # What a success or notify callback leaves (see the callback's tests): the
        # requested-import action takes it at once, with no list read.
        self.kbc.import_requested = True
        requests, runs = self.requests_during(
            lambda: self.run_scheduled_action("ir_cron_import_requested")
        )
        self.assertEqual(runs.connection_id, self.kbc)
        self.assertNotIn(
            ("GET", "/api/v6/connections"), [(e["method"], e["path"]) for e in requests]
        )
        # And were that action late, the hourly run imports it too, entry moved or not.
        self.kbc.import_requested = True
        self.assertEqual(self.hourly().connection_id, self.kbc)

    def test_a_connection_whose_entry_needs_the_user_is_marked_as_before(self):
        self.advance_sandbox_days(CONSENT_DAYS + 1)
        runs = self.hourly()
        self.assertEqual(set(runs.connection_id.ids), {self.kbc.id, self.belfius.id})
        self.assertEqual(self.kbc.state, "expired")
        self.assertEqual(self.belfius.state, "expired")
        self.assertTrue(self.messages_of(self.kbc, "Reconnect the bank"))

    def test_an_entry_without_its_last_attempt_is_read_in_full(self):
        entry = self.kbc._saltedge_client().get_connection(self.kbc.saltedge_connection_id)
        self.assertEqual(
            self.env["account.bank.connection"]._saltedge_idle_key(entry),
            self.kbc.saltedge_idle_key,
            "the key of the entry as the run read it",
        )
        for missing in ("last_attempt", "updated_at"):
            partial = {key: value for key, value in entry.items() if key != missing}
            self.assertIsNone(self.env["account.bank.connection"]._saltedge_idle_key(partial))

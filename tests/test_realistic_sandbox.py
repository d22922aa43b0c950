"""The addon against the sandbox as the real Salt Edge behaves, its default: the return URL
carries hints only when asked (and a proxy may strip them), the fetch finishes seconds
after the user is back (recent transactions first, older history later with higher ids,
accounts that appear on the way), one to three identical success callbacks, background
refresh without the user and interactive refresh with the user.

Every test checks the outcome that matters to the accountant: every transaction exactly
once, the journal's balance equal to the bank's, Connected until equal to the consent's
date, and the calls Odoo made (never ``/refresh`` without a user).
"""

import datetime
import json
import time
from urllib.parse import urlencode, urlparse

import pytz

from odoo.tests import tagged

from ..models import const
from ..sandbox import complete_connect, signing
from .common import (
    KBC_CURRENT,
    KBC_SAVINGS,
    BankConnectionCase,
    BankConnectionHttpCase,
    journal_balance,
)


class RealisticSandboxMixin:
    """Helpers over the sandbox's default, which behaves as the real Salt Edge does."""

    def wait_for_fetches(self, timeout=30):
        """Wait (bounded) until the sandbox has no fetch running."""
        answer = self.sandbox_control("fetches/wait", {"timeout": timeout})
        self.assertEqual(answer["data"]["running"], 0, "the sandbox's fetch did not finish")

    def without_hints(self, url):
        """The return URL as a proxy or a bookmark leaves it: only our own ``state``."""
        parts = urlparse(url)
        params = self.return_params(url)
        self.assertIn("state", params)
        return parts._replace(query=urlencode({"state": params["state"]})).geturl()

    def lines_of(self, journal):
        return self.env["account.bank.statement.line"].search([("journal_id", "=", journal.id)])

    def consent_date(self, connection):
        """Connected until as Salt Edge gives it: the consent's expires_at in Brussels."""
        client = connection._saltedge_client()
        consents = list(client.list_consents(connection.saltedge_connection_id))
        consent = next(c for c in consents if str(c["id"]) == connection.saltedge_consent_id)
        moment = datetime.datetime.fromisoformat(consent["expires_at"].replace("Z", "+00:00"))
        return moment.astimezone(pytz.timezone("Europe/Brussels")).date()

    def assert_books_match_the_bank(self, connection, journal, iban=KBC_CURRENT):
        """Every posted transaction once, and the journal's balance the bank's."""
        self.env.invalidate_all()
        account = connection.account_ids.filtered(lambda a: a.iban == iban)
        self.assertEqual(account.journal_id, journal)
        remote = self.remote_transactions(connection, account)
        lines = self.lines_of(journal)
        ids = lines.mapped("saltedge_transaction_id")
        self.assertEqual(len(ids), len(set(ids)), "a transaction is in the journal twice")
        self.assertEqual(
            {str(t["id"]) for t in remote},
            set(ids) - {f"opening:{account.saltedge_account_id}"},
            "the journal does not hold exactly the bank's transactions",
        )
        self.assertAlmostEqual(
            journal_balance(journal), self.remote_balance(connection, account), places=2
        )
        self.assertFalse(connection.balance_mismatch_note)
        self.assertEqual(connection.connected_until, self.consent_date(connection))
        return lines

    def requests_to(self, suffix):
        return [
            entry
            for entry in self.sandbox_get("requests")
            if entry["method"] == "POST" and entry["path"].endswith(suffix)
        ]


class TestRealisticSandbox(RealisticSandboxMixin, BankConnectionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Session = cls.env["account.bank.connect.session"]

    def setUp(self):
        super().setUp()
        self.reset_sandbox()

    def start(self, journal=None, **widget):
        """Bank verbinden and Salt Edge's screens; returns the URL the user comes back on,
        while Salt Edge is still fetching."""
        return self.connect_url(journal=journal, account_ibans=[KBC_CURRENT], **widget)

    def finish_url(self, url):
        return self.finish(self.return_params(url))

    def after_salt_edge_fetched(self, connection):
        """What a success callback leads to: the requested import of this connection."""
        self.wait_for_fetches()
        payload = {
            "data": {
                "connection_id": connection.saltedge_connection_id,
                "customer_id": connection.saltedge_customer_id,
                "custom_fields": {},
                "stage": "finish",
            },
            "meta": {"version": "6", "time": "2030-01-01T10:00:00Z"},
        }
        self.assertEqual(
            self.Connection._saltedge_handle_callback("success", payload), "import queued"
        )
        self.Connection._cron_import_requested()
        self.env.invalidate_all()

    # --- the connect request and the return ------------------------------------------

    def test_connect_asks_for_the_hints_and_sends_our_reference(self):
        url = self.start()
        params = self.return_params(url)
        # The sandbox, like Salt Edge, adds connection_id only when the connect asked.
        self.assertIn("connection_id", params)
        session = self.Session.search([], limit=1)
        remote = self.Connection._saltedge_client().get_connection(params["connection_id"])
        custom_fields = remote["last_attempt"]["custom_fields"]
        self.assertEqual(custom_fields[const.CUSTOM_FIELD_REFERENCE], session.reference)
        self.assertTrue(remote.get("automatic_refresh"), "Salt Edge refreshes by itself")

    def test_a_return_without_hints_finds_the_connection_and_imports_it_once(self):
        connection = self.finish_url(self.without_hints(self.start()))
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.connected_until, self.consent_date(connection))
        self.after_salt_edge_fetched(connection)
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_a_return_with_the_hints_imports_everything_once(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_a_return_without_hints_after_a_cancel_says_so(self):
        url = self.connect_url(cancel_at="login")
        with self.assertRaisesRegex(Exception, "cancelled|not confirm|no connection"):
            self.finish_url(self.without_hints(url))

    def test_only_the_hourly_import_searches_salt_edge_for_connects_without_a_hint(self):
        self.connect_url(cancel_at="login")  # a cancelled connect: its session stays open
        searches = len(self.sandbox_api_requests("GET", "/connections"))
        # The requested import runs every few minutes: it takes hinted connects only.
        self.Connection._cron_import_requested()
        self.assertEqual(len(self.sandbox_api_requests("GET", "/connections")), searches)
        self.Connection._cron_import_transactions()
        self.assertEqual(len(self.sandbox_api_requests("GET", "/connections")), searches + 1)
        self.assertFalse(self.Connection.search([]))

    def test_a_user_who_never_comes_back_is_connected_by_the_hourly_import(self):
        self.start()  # the user closes the tab at Salt Edge's last screen
        self.wait_for_fetches()
        self.assertFalse(self.Connection.search([]))
        self.Connection._cron_import_transactions()
        self.env.invalidate_all()
        connection = self.Connection.search([])
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.user_id, self.env.user)
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    # --- a fetch that finishes after the return ---------------------------------------

    def test_history_and_accounts_arriving_after_the_return_are_imported_once(self):
        connection = self.finish_url(self.start())
        # Back in Odoo while Salt Edge still fetches: the first import takes what is there
        # and books no opening line yet.
        self.assertFalse(connection.fetch_finished)
        run = connection._saltedge_first_import_run()
        self.assertFalse(run.fetch_finished)
        opening_key = "opening:%"
        self.assertFalse(
            self.lines_of(self.kbc_journal).filtered(
                lambda line: (line.saltedge_transaction_id or "").startswith(opening_key[:-1])
            )
        )
        self.after_salt_edge_fetched(connection)
        self.assertTrue(connection.fetch_finished)
        lines = self.assert_books_match_the_bank(connection, self.kbc_journal)
        # The older history came with higher ids than the recent transactions.
        remote = self.remote_transactions(connection, connection.account_ids)
        by_id = sorted(remote, key=lambda t: int(t["id"]))
        self.assertGreater(by_id[0]["made_on"], by_id[-1]["made_on"])
        self.assertTrue(lines)

    def test_an_account_listed_only_after_the_return_is_linked_by_its_iban(self):
        savings = self._bank_journal("KBC Spaarrekening", "KBCS", KBC_SAVINGS)
        url = self.connect_url(account_ibans=[KBC_CURRENT, KBC_SAVINGS])
        connection = self.finish_url(url)
        self.after_salt_edge_fetched(connection)
        self.assertEqual(len(connection.account_ids), 2)
        self.assert_books_match_the_bank(connection, self.kbc_journal)
        self.assert_books_match_the_bank(connection, savings, iban=KBC_SAVINGS)

    def test_three_success_callbacks_import_the_connection_once(self):
        connection = self.finish_url(self.start())
        self.wait_for_fetches()
        for _callback in range(3):
            self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    # --- renew, fetch, the scheduled import ------------------------------------------

    def test_renew_gives_a_new_consent_on_the_same_connection(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        old_consent = connection.saltedge_consent_id
        self.advance_sandbox_days(100)
        action = connection.action_renew()
        renewed = self.finish_url(self.without_hints(complete_connect(action["url"])))
        self.assertEqual(renewed, connection)
        self.assertNotEqual(connection.saltedge_consent_id, old_consent)
        self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_fetch_asks_a_background_refresh_never_the_interactive_one(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        self.advance_sandbox_days(1)
        connection.action_fetch_transactions()
        self.assertEqual(len(self.requests_to("/background_refresh")), 1)
        self.assertFalse(self.requests_to("/refresh"))
        self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_fetch_while_salt_edge_fetches_is_no_error(self):
        connection = self.finish_url(self.start())
        connection.last_refresh_request = False
        connection.next_refresh_possible_at = False
        action = connection.action_fetch_transactions()
        self.assertEqual(action["params"]["type"], "success", action["params"]["message"])
        self.assertFalse(connection.last_error)
        self.assertEqual(connection.state, "connected")
        self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_the_hourly_import_never_calls_the_interactive_refresh(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        params = self.env["ir.config_parameter"].sudo()
        # Salt Edge refreshes by itself (the default): the hourly run only imports.
        self.advance_sandbox_days(1)
        self.Connection._cron_import_transactions()
        self.assertFalse(self.requests_to("/background_refresh"))
        # Without it, the hourly run asks for a background refresh, within the limits.
        params.set_param(const.PARAM_AUTOMATIC_REFRESH, False)
        connection.last_refresh_request = datetime.datetime(2020, 1, 1)
        self.Connection._cron_import_transactions()
        self.Connection._cron_import_transactions()
        self.assertEqual(len(self.requests_to("/background_refresh")), 1)
        self.assertFalse(self.requests_to("/refresh"))
        self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_a_failed_fetch_with_a_live_consent_keeps_the_connection_imported(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        remote_id = connection.saltedge_connection_id
        self.sandbox_control(
            f"connections/{remote_id}/fail_next",
            {"error_class": "ProviderUnavailable", "error_message": "The bank is down."},
        )
        self.advance_sandbox_days(1)
        self.Connection._saltedge_client().background_refresh(remote_id)
        self.wait_for_fetches()
        payload = {
            "data": {
                "connection_id": remote_id,
                "customer_id": connection.saltedge_customer_id,
                "custom_fields": {},
                "error_class": "ProviderUnavailable",
                "error_message": "The bank is down.",
            },
            "meta": {"version": "6", "time": "2030-01-01T10:00:00Z"},
        }
        self.assertEqual(
            self.Connection._saltedge_handle_callback("fail", payload), "error recorded"
        )
        self.assertEqual(connection.state, "connected")
        self.Connection._cron_import_requested()
        self.assertEqual(connection.state, "connected")
        self.assertIn(connection, self.Connection.search([("state", "in", ("connected", "error"))]))

    def test_an_expired_consent_asks_the_user_after_the_status_is_read(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        self.advance_sandbox_days(200)
        connection.import_requested = True
        self.Connection._cron_import_requested()
        self.assertEqual(connection.state, "expired")

    def test_refresh_at_the_bank_goes_through_the_banks_screens_and_back(self):
        connection = self.finish_url(self.start())
        self.after_salt_edge_fetched(connection)
        consent = connection.saltedge_consent_id
        self.advance_sandbox_days(1)
        # The bank refused a background refresh without the user (what _request_refresh
        # records): the form offers Refresh at the bank.
        connection.sudo().refresh_needs_user = True
        action = connection.action_refresh_at_bank()
        self.assertTrue(
            self.requests_to(f"/connections/{connection.saltedge_connection_id}/refresh")
        )
        back = self.finish_url(self.without_hints(complete_connect(action["url"])))
        self.assertEqual(back, connection)
        self.assertEqual(connection.saltedge_consent_id, consent)
        # Back from the bank with success: the button goes, without waiting for a later
        # background refresh to succeed.
        self.assertFalse(connection.refresh_needs_user)
        self.after_salt_edge_fetched(connection)
        self.assert_books_match_the_bank(connection, self.kbc_journal)


@tagged("post_install", "-at_install")
class TestRealisticSandboxOverHttp(RealisticSandboxMixin, BankConnectionHttpCase):
    """The callbacks Salt Edge sends, delivered over HTTP to Odoo's callback route."""

    def setUp(self):
        super().setUp()
        self.reset_sandbox()
        self.admin = self.env.ref("base.user_admin")
        self.Connection = self.env["account.bank.connection"]
        self.authenticate("admin", "admin")

    def start_at_the_bank(self):
        """Bank verbinden as the admin; returns Salt Edge's connect URL. Everything is
        written to the database first, as the button's request commits before the user is
        at the bank: from then on Salt Edge's callbacks use the cursor, and this thread
        leaves it alone until they are answered."""
        action = self.Connection.with_user(self.admin)._saltedge_start_connect(
            self.company, "kbc_sandbox_be", journal=self.kbc_journal
        )
        self.env.flush_all()
        return action["url"]

    def callbacks_of(self, kind):
        return [record for record in self.sandbox_get("callbacks") if record["kind"] == kind]

    def post_signed(self, kind, body, signature=None):
        url = f"{self.base_url()}{const.CALLBACK_ROUTE}/{kind}"
        if signature is None:
            signature = signing.sign(
                self.sandbox.app.private_key, signing.callback_message(url, body)
            )
        return self.url_open(
            url,
            data=body,
            headers={"Content-Type": "application/json", "Signature": signature},
            timeout=30,
        )

    def test_the_success_callback_connects_a_user_who_never_came_back(self):
        complete_connect(self.start_at_the_bank(), account_ibans=[KBC_CURRENT])
        self.wait_for_fetches()
        self.sandbox.app.sender.wait(20)
        self.env.invalidate_all()
        successes = self.callbacks_of("success")
        self.assertTrue(1 <= len(successes) <= 3)
        self.assertEqual({record["status"] for record in successes}, {200})
        results = self.env["account.bank.callback"].search([("kind", "=", "success")])
        self.assertIn("link queued", results.mapped("result"))
        self.Connection._cron_import_requested()
        self.env.invalidate_all()
        connection = self.Connection.search([])
        self.assertEqual(connection.state, "connected")
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_the_waiting_page_shows_salt_edges_stages_and_finishes_with_the_fetch(self):
        url = complete_connect(self.start_at_the_bank(), account_ibans=[KBC_CURRENT])
        response = self.url_open(self.without_hints(url), timeout=60)
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_bank_connect_waiting", response.text)
        self.assertIn("o_bank_connect_stage", response.text)
        session_url = response.url
        stages = []
        # The page's script asks every second; Salt Edge is asked at most every
        # FIRST_SLICE_MIN_INTERVAL_SECONDS, so the page finishes within a few of those.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answer = self.url_open(
                f"{session_url}/import",
                data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}}),
                headers={"Content-Type": "application/json"},
                timeout=60,
            ).json()["result"]
            if answer.get("done"):
                break
            stages.append(answer["stage"])
            self.sandbox_control("fetches/wait", {"timeout": 0.5})
            time.sleep(0.5)
        else:
            self.fail("the waiting page never finished")
        self.assertTrue(stages, "the page was done before Salt Edge had fetched")
        self.assertTrue(all(stage.startswith("Salt Edge") for stage in stages), stages)
        self.sandbox.app.sender.wait(20)
        self.env.invalidate_all()
        connection = self.Connection.search([])
        page = self.url_open(session_url, timeout=60)
        self.assertIn("connected until", page.text)
        self.assert_books_match_the_bank(connection, self.kbc_journal)

    def test_a_signed_callback_of_a_kind_we_do_not_use_is_acknowledged_and_ignored(self):
        body = json.dumps({"data": {"connection_id": "1", "customer_id": "2"}}).encode()
        for kind in ("service", "interactive"):
            response = self.post_signed(kind, body)
            self.assertEqual((response.status_code, response.json()["status"]), (200, "ok"))
        self.env.invalidate_all()
        ledger = self.env["account.bank.callback"].search(
            [("kind", "in", ("service", "interactive"))]
        )
        self.assertEqual(sorted(ledger.mapped("result")), ["ignored", "ignored"])
        forged = self.post_signed("service", body, signature="bm90IGEgc2lnbmF0dXJl")
        self.assertEqual(forged.status_code, 403)

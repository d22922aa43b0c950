"""The real controllers over HTTP: the browser's return from the bank and Salt Edge's
signed callbacks, with the sandbox on one side and Odoo's HTTP server on the other.

The sandbox posts its callbacks from a background thread; Odoo serves them through the
test cursor. A test therefore flushes before anything that makes the sandbox call back,
waits (bounded) until the sandbox has had Odoo's answers, and only then reads the
database again.
"""

import datetime
import json
import socket
from unittest.mock import patch
from urllib.parse import urlparse

from odoo import Command, fields
from odoo.tests import tagged
from odoo.tools import SQL

from ..models import const
from ..odoo_series import holding_http_requests, user_groups_field
from ..saltedge_client import generate_key_pair
from ..sandbox import complete_connect, signing
from ..sandbox.providers import belgian_iban
from .common import (
    CALLBACKS_PER_SUCCESS,
    INSTANT_FETCH,
    KBC_SAVINGS,
    N_BANK,
    BankConnectionHttpCase,
)


@tagged("post_install", "-at_install")
class TestHttpRoutes(BankConnectionHttpCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    def setUp(self):
        super().setUp()
        self.reset_sandbox()
        self.admin = self.env.ref("base.user_admin")
        self.Connection = self.env["account.bank.connection"]
        self.authenticate("admin", "admin")
        # The page's requests import a slice each, however fast they come (the interval
        # between slices has its own test).
        self.patch(const, "FIRST_SLICE_MIN_INTERVAL_SECONDS", 0)

    # --- helpers ---------------------------------------------------------------------

    def bank_screens(self, expected_callbacks=CALLBACKS_PER_SUCCESS, **widget):
        """Bank verbinden as admin and the sandbox's screens; returns the return URL once
        the connect's callbacks have been answered by Odoo."""
        self.env.flush_all()
        url = self.connect_url(user=self.admin, **widget)
        self.wait_for_callbacks(expected_callbacks)
        self.env.invalidate_all()
        return url

    def then_wait_for_callbacks(self, count):
        self.wait_for_callbacks(count)
        self.env.invalidate_all()
        return self.sandbox_get("callbacks")

    def callback_url(self, kind):
        return f"{self.base_url()}{const.CALLBACK_ROUTE}/{kind}"

    def post_callback(self, kind, body, signature):
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Signature"] = signature
        return self.url_open(self.callback_url(kind), data=body, headers=headers, timeout=30)

    def callback_body(self, connection, sent_at=None, **data):
        """A callback of ``connection`` as Salt Edge sends it, sent ``sent_at`` (an aware
        datetime; default now, by Odoo's clock)."""
        sent_at = sent_at or datetime.datetime.now(datetime.timezone.utc)
        document = {
            "data": {
                "connection_id": connection.saltedge_connection_id,
                "customer_id": connection.saltedge_customer_id,
                "custom_fields": {},
                **data,
            },
            "meta": {"version": "6", "time": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        return json.dumps(document).encode()

    def signed_by_salt_edge(self, kind, body):
        message = signing.callback_message(self.callback_url(kind), body)
        return signing.sign(self.sandbox.app.private_key, message)

    # --- the return from the bank ----------------------------------------------------

    def import_from_the_waiting_page(self, session_url):
        """What the waiting page's script does: ask the import route until done."""
        response = self.url_open(
            f"{session_url}/import",
            data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}}),
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        self.assertEqual(response.status_code, 200)
        return response.json()["result"]

    def import_until_done(self, session_url, polls=100):
        """The waiting page's script until the page is done (each request imports a slice
        of the history); returns the last answer."""
        for _poll in range(polls):
            answer = self.import_from_the_waiting_page(session_url)
            if answer.get("done"):
                return answer
        self.fail(f"the waiting page was not done after {polls} requests")

    def waiting_page_of_the_n_bank(self):
        """Bank verbinden with the bank of 1,500 transactions (15 pages) on a new journal,
        back from its screens: ``(journal, the waiting page's URL)``."""
        iban = belgian_iban(954, 1000001)
        journal = self._bank_journal("Fake N", "FAKN", iban)
        url = self.bank_screens(provider_code=N_BANK, journal=journal, account_ibans=[iban])
        return journal, self.url_open(url, timeout=120).url

    def lines_of(self, journal):
        return self.env["account.bank.statement.line"].search([("journal_id", "=", journal.id)])

    def test_returning_from_the_bank_waits_imports_and_shows_connected_until(self):
        url = self.bank_screens()
        response = self.url_open(url, timeout=120)
        # The return goes on to the waiting page, which the first import follows.
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.history[0].status_code, 303)
        session_url = response.url
        self.assertIn(const.SESSION_ROUTE, session_url)
        self.assertIn("o_bank_connect_waiting", response.text)
        self.assertIn("Do not close this screen", response.text)
        self.env.invalidate_all()
        connection = self.Connection.search([])
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.user_id, self.admin)
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.assertFalse(self.lines_of(self.kbc_journal), "nothing imported before the page asks")
        self.assertEqual(self.import_until_done(session_url), {"done": True})
        self.env.invalidate_all()
        lines = self.lines_of(self.kbc_journal)
        self.assertTrue(lines)
        self.assertTrue(all(lines.mapped("saltedge_transaction_id")))
        result = self.url_open(session_url)
        self.assertEqual(result.status_code, 200)
        self.assertIn("connected until", result.text)
        self.assertIn(connection._format_connected_until(), result.text)
        run = connection.import_run_ids
        self.assertEqual((run.trigger, run.state), ("first", "done"))
        self.assertTrue(run.created_count)
        # The bank's transactions the connect brought; the opening line is not one.
        self.assertIn(f"{run.created_count - 1} transactions imported", result.text)

    def test_the_waiting_page_shows_the_first_lines_at_once_and_the_rest_in_the_background(self):
        journal, session_url = self.waiting_page_of_the_n_bank()
        counts = []
        # The page's requests get no time: a page each, however long the history.
        with patch.object(const, "FIRST_SLICE_SECONDS", 0):
            for _poll in range(2):
                answer = self.import_from_the_waiting_page(session_url)
                self.assertFalse(answer["done"])
                counts.append(answer["count"])
                self.env.invalidate_all()
                self.assertEqual(len(self.lines_of(journal)), answer["count"])
            self.assertEqual(counts[0], 100)
            self.assertGreater(counts[1], counts[0])
            page = self.url_open(session_url, timeout=60)
            self.assertIn(f'data-count="{counts[1]}"', page.text)
            # Nobody keeps the page open: the scheduled action brings the rest.
            connection = self.Connection.search([])
            self.assertTrue(connection.import_requested)
            self.Connection._cron_import_requested()
            self.env.flush_all()
            self.assertEqual(self.import_from_the_waiting_page(session_url), {"done": True})
        self.env.invalidate_all()
        remote = self.remote_transactions(connection, connection.account_ids)
        ids = sorted(str(transaction["id"]) for transaction in remote)
        lines = self.lines_of(journal).filtered(
            lambda line: not line.saltedge_transaction_id.startswith("opening:")
        )
        self.assertEqual(sorted(lines.mapped("saltedge_transaction_id")), ids)
        self.assertEqual(len(connection.import_run_ids), 1, "one run, resumed")
        result = self.url_open(session_url, timeout=60)
        self.assertIn(f"{len(ids)} transactions imported", result.text)

    def session_of(self, session_url):
        session_id = int(urlparse(session_url).path.rsplit("/", 1)[-1])
        return self.env["account.bank.connect.session"].browse(session_id)

    def test_the_page_counts_the_lines_this_connect_brought_whenever_the_run_began(self):
        url = self.bank_screens()
        session_url = self.url_open(url, timeout=120).url
        self.assertEqual(self.import_until_done(session_url), {"done": True})
        self.env.invalidate_all()
        session = self.session_of(session_url)
        run = session.connection_id.import_run_ids
        lines = self.lines_of(self.kbc_journal).filtered(
            lambda line: not line.saltedge_transaction_id.startswith("opening:")
        )
        self.assertTrue(lines)
        # The return was handled at 12:00:00.5 and the page's first slice began within
        # the same second: the run says 12:00:00 (Odoo keeps whole seconds), the return
        # half a second more (it is written by SQL). Once in three connects on a server.
        self.env.cr.execute(
            "UPDATE account_bank_connect_session SET used_at = %s WHERE id = %s",
            [run.date_start + datetime.timedelta(milliseconds=500), session.id],
        )
        self.env.invalidate_all()
        result = self.url_open(session_url, timeout=60)
        self.assertIn(f"{len(lines)} transactions imported", result.text)

    def test_the_page_asks_salt_edge_at_most_every_few_seconds_and_resumes_light(self):
        journal, session_url = self.waiting_page_of_the_n_bank()
        connection = self.Connection.search([])
        connection_path = f"/connections/{connection.saltedge_connection_id}"
        self.patch(const, "FIRST_SLICE_SECONDS", 0)
        self.patch(const, "FIRST_SLICE_MIN_INTERVAL_SECONDS", 3600)
        before = len(self.sandbox_api_requests())
        first = self.import_from_the_waiting_page(session_url)
        self.assertEqual(first["count"], 100)
        asked = self.sandbox_api_requests()[before:]
        self.assertEqual(sum(1 for r in asked if r["path"] == "/api/v6/transactions"), 1)
        # The page polls every second: within the interval it reads the count, Salt Edge
        # hears nothing.
        for _poll in range(3):
            answer = self.import_from_the_waiting_page(session_url)
            self.assertEqual((answer["done"], answer["count"]), (False, 100))
        self.assertEqual(len(self.sandbox_api_requests()), before + len(asked))
        # The next slice goes on with the same run's pages: no confirm, no accounts.
        self.patch(const, "FIRST_SLICE_MIN_INTERVAL_SECONDS", 0)
        before = len(self.sandbox_api_requests())
        second = self.import_from_the_waiting_page(session_url)
        self.env.invalidate_all()
        self.assertGreater(second["count"], first["count"])
        self.assertEqual(second["count"], len(self.lines_of(journal)))
        paths = [r["path"] for r in self.sandbox_api_requests()[before:]]
        self.assertEqual(paths, ["/api/v6/transactions"])
        self.assertNotIn(f"/api/v6{connection_path}", paths)
        # Until the end: every transaction once, one run, and the opening line.
        self.patch(const, "FIRST_SLICE_SECONDS", 2)
        self.assertEqual(self.import_until_done(session_url), {"done": True})
        self.env.invalidate_all()
        self.assertEqual(len(connection.import_run_ids), 1)
        self.assertEqual(connection.import_run_ids.state, "done")
        remote = self.remote_transactions(connection, connection.account_ids)
        ids = sorted(str(transaction["id"]) for transaction in remote)
        lines = self.lines_of(journal)
        imported = [key for key in lines.mapped("saltedge_transaction_id") if ":" not in key]
        self.assertEqual(sorted(imported), ids)
        self.assertEqual(len(lines), len(ids) + 1, "and the opening line")

    def test_a_slice_that_fails_leaves_the_page_waiting_and_the_next_one_finishes(self):
        url = self.bank_screens()
        session_url = self.url_open(url, timeout=120).url
        Connection = type(self.Connection)
        calls = []

        def broken(connection, **kwargs):
            calls.append(connection.id)
            raise RuntimeError("the server lost its database connection")

        with (
            patch.object(Connection, "_saltedge_first_import_run", broken),
            self.assertLogs(
                "odoo.addons.account_bank_connection.models.account_bank_connect_session", "ERROR"
            ),
        ):
            answer = self.import_from_the_waiting_page(session_url)
        self.assertEqual(len(calls), 1)
        self.assertFalse(answer["done"])
        self.env.invalidate_all()
        self.assertEqual(self.session_of(session_url).import_state, "waiting")
        # The next poll imports, as if nothing had happened.
        self.assertEqual(self.import_until_done(session_url), {"done": True})
        self.env.invalidate_all()
        self.assertTrue(self.lines_of(self.kbc_journal))

    def test_a_refresh_or_second_click_on_the_waiting_page_imports_once(self):
        url = self.bank_screens()
        session_url = self.url_open(url, timeout=120).url
        # A second tab asks while the first holds the import: told to wait, nothing run.
        self.env.invalidate_all()
        session = self.env["account.bank.connect.session"].search([], limit=1)
        session._claim_first_import()
        self.env.flush_all()
        answer = self.import_from_the_waiting_page(session_url)
        self.assertFalse(answer["done"])
        self.assertIn("Salt Edge", answer["stage"])
        self.env.invalidate_all()
        self.assertFalse(self.lines_of(self.kbc_journal))
        self.assertFalse(session.connection_id.import_run_ids)
        # The first request finishes (here: given back), then one import for any number of asks.
        session.import_state = "waiting"
        self.env.flush_all()
        self.assertEqual(self.import_until_done(session_url), {"done": True})
        self.assertEqual(self.import_from_the_waiting_page(session_url), {"done": True})
        self.env.invalidate_all()
        self.assertEqual(len(session.connection_id.import_run_ids), 1)
        count = len(self.lines_of(self.kbc_journal))
        self.assertTrue(count)
        # Refreshing the return URL itself lands on the same result, nothing imported again.
        again = self.url_open(url, timeout=60)
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.url, session_url)
        self.assertIn("connected until", again.text)
        self.env.invalidate_all()
        self.assertEqual(len(self.lines_of(self.kbc_journal)), count)
        self.assertEqual(len(self.Connection.search([])), 1)

    def test_the_waiting_page_of_another_user_shows_nothing(self):
        url = self.bank_screens()
        session_url = self.url_open(url, timeout=120).url
        self.env.invalidate_all()
        connection = self.Connection.search([])
        self.env["res.users"].create(
            {
                "name": "Colleague",
                "login": "colleague",
                "password": "colleague-password",
                user_groups_field(self.env): [
                    Command.set([self.env.ref("account.group_account_manager").id])
                ],
            }
        )
        self.env.flush_all()
        self.authenticate("colleague", "colleague-password")
        page = self.url_open(session_url)
        self.assertEqual(page.status_code, 400)
        self.assertNotIn(connection.name, page.text)
        self.assertEqual(
            self.import_from_the_waiting_page(session_url), {"done": False, "missing": True}
        )
        self.env.invalidate_all()
        self.assertFalse(self.lines_of(self.kbc_journal))

    def test_a_reused_state_leads_back_to_the_same_page_and_changes_nothing(self):
        # Only the savings account: the KBC journal keeps its own IBAN, nothing to import.
        url = self.bank_screens(account_ibans=[KBC_SAVINGS])
        first = self.url_open(url, timeout=60)
        self.assertEqual(first.status_code, 200)
        self.env.invalidate_all()
        connection = self.Connection.search([])
        self.assertEqual(connection.account_ids.mapped("iban"), [KBC_SAVINGS])
        self.assertEqual(connection.unlinked_account_count, 1)
        messages = len(connection.message_ids)
        again = self.url_open(url, timeout=60)
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.url, first.url)
        self.env.invalidate_all()
        self.assertEqual(self.Connection.search([]), connection)
        self.assertEqual(len(connection.message_ids), messages)

    def test_a_forged_state_gets_a_clear_page_and_changes_nothing(self):
        url = self.bank_screens()
        params = self.return_params(url)
        session_id, nonce, _signature = params["state"].split(".")
        forged = f"{session_id}.{nonce}.{'A' * 43}"
        response = self.url_open(
            f"{const.RETURN_ROUTE}?state={forged}&connection_id={params['connection_id']}"
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("not valid", response.text)
        self.env.invalidate_all()
        self.assertFalse(self.Connection.search([]))
        self.assertFalse(self.env["account.bank.connect.session"].browse(int(session_id)).used_at)

    def test_a_state_of_another_user_gets_a_clear_page(self):
        self.env.flush_all()
        url = self.connect_url()  # started by the test's own (super)user, not admin
        self.wait_for_callbacks(CALLBACKS_PER_SUCCESS)
        response = self.url_open(url)
        self.assertEqual(response.status_code, 400)
        self.assertIn("another user", response.text)
        self.env.invalidate_all()
        self.assertFalse(self.Connection.search([]))

    def test_a_cancelled_connect_is_explained_and_creates_nothing(self):
        url = self.bank_screens(expected_callbacks=0, cancel_at="terms")
        self.assertEqual(self.return_params(url)["error_class"], "ConnectionCancelled")
        response = self.url_open(url)
        self.assertEqual(response.status_code, 400)
        self.assertIn("cancelled", response.text)
        self.env.invalidate_all()
        self.assertFalse(self.Connection.search([]))
        self.assertFalse(self.kbc_journal.bank_connection_id)
        self.assertFalse(self.sandbox_get("callbacks"))

    def test_a_cancelled_renew_leaves_the_connection_as_it_was(self):
        connection = self.connected()
        until = connection.connected_until
        action = connection.with_user(self.admin).action_renew()
        self.env.flush_all()
        url = complete_connect(action["url"], cancel_at="terms")
        # Salt Edge reports the abandoned reconnect with a fail callback.
        sent = self.then_wait_for_callbacks(CALLBACKS_PER_SUCCESS + 2)
        self.assertEqual((sent[-1]["kind"], sent[-1]["status"]), ("fail", 200))
        response = self.url_open(url)
        self.assertEqual(response.status_code, 400)
        self.assertIn("cancelled", response.text)
        self.env.invalidate_all()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.connected_until, until)
        self.assertFalse(connection.last_error)
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)

    # --- callbacks sent by the sandbox ------------------------------------------------

    def rewind_sandbox_an_hour(self):
        """Salt Edge's clock an hour back: what the test does next happened an hour ago,
        and ``advance_sandbox_an_hour`` brings it to now. Its callbacks carry its clock,
        which Odoo holds against its own (at most a day old, a few minutes ahead)."""
        self.sandbox_control("clock", {"advance_seconds": -3600})

    def advance_sandbox_an_hour(self):
        self.sandbox_control("clock", {"advance_seconds": 3600})

    def test_a_refresh_at_salt_edge_calls_back_and_asks_for_an_import(self):
        # Connected an hour ago: Salt Edge refreshes a connection once its interval (five
        # minutes in the sandbox) has passed.
        self.rewind_sandbox_an_hour()
        connection = self.connected()
        self.assertFalse(connection.import_requested)
        self.advance_sandbox_an_hour()
        self.Connection._saltedge_client().background_refresh(connection.saltedge_connection_id)
        sent = self.then_wait_for_callbacks(2 * CALLBACKS_PER_SUCCESS)
        self.assertEqual({record["status"] for record in sent}, {200})
        self.assertEqual(sent[-1]["kind"], "success")
        self.assertTrue(connection.import_requested)
        self.assertEqual(connection.last_stage, "finish")
        results = self.env["account.bank.callback"].search(
            [("saltedge_connection_id", "=", connection.saltedge_connection_id)]
        )
        self.assertIn("import queued", results.mapped("result"))

    def test_a_failed_refresh_calls_back_and_records_the_error(self):
        self.rewind_sandbox_an_hour()
        connection = self.connected()
        remote_id = connection.saltedge_connection_id
        self.sandbox_control(
            f"connections/{remote_id}/fail_next",
            {"error_class": "ProviderError", "error_message": "The bank is closed for lunch."},
        )
        self.advance_sandbox_an_hour()
        self.Connection._saltedge_client().background_refresh(remote_id)
        sent = self.then_wait_for_callbacks(CALLBACKS_PER_SUCCESS + 2)
        self.assertEqual([record["kind"] for record in sent[-2:]], ["notify", "fail"])
        # The consent still runs: the connection stays in the import, which reads its
        # status from Salt Edge.
        self.assertEqual(connection.state, "connected")
        self.assertTrue(connection.import_requested)
        self.assertEqual(connection.last_error, "ProviderError: The bank is closed for lunch.")
        messages = connection.message_ids.filtered(lambda m: "closed for lunch" in m.body)
        self.assertEqual(len(messages), 1)

    def test_a_connection_removed_at_salt_edge_calls_back_and_is_disconnected(self):
        connection = self.connected()
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.Connection._saltedge_client().delete_connection(connection.saltedge_connection_id)
        sent = self.then_wait_for_callbacks(CALLBACKS_PER_SUCCESS + 1)
        self.assertEqual((sent[-1]["kind"], sent[-1]["status"]), ("destroy", 200))
        self.assertEqual(connection.state, "disconnected")
        self.assertFalse(self.kbc_journal.bank_connection_id)

    def test_disconnect_at_odoo_and_the_destroy_callback_that_follows_act_once(self):
        connection = self.connected()
        # As the button does: DELETE at Salt Edge, which calls back with destroy. The
        # test cursor's lock makes the callback wait until the disconnect is written, as
        # the end of the button's transaction would.
        with holding_http_requests(self):
            connection.action_disconnect()
            self.env.flush_all()
        sent = self.then_wait_for_callbacks(CALLBACKS_PER_SUCCESS + 1)
        self.assertEqual((sent[-1]["kind"], sent[-1]["status"]), ("destroy", 200))
        self.assertEqual(connection.state, "disconnected")
        self.assertEqual(
            len(connection.message_ids.filtered(lambda m: "Disconnected" in m.body)), 1
        )
        self.assertFalse(connection.message_ids.filtered(lambda m: "removed at Salt" in m.body))

    # --- callbacks posted by hand -----------------------------------------------------

    def test_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(self):
        connection = self.connected()
        messages = len(connection.message_ids)
        body = self.callback_body(connection)
        wrong_key, _public = generate_key_pair()
        forged = signing.sign(
            signing.load_private_key(wrong_key),
            signing.callback_message(self.callback_url("destroy"), body),
        )
        for signature in (forged, None, "not base64 at all"):
            response = self.post_callback("destroy", body, signature)
            self.assertEqual(response.status_code, 403)
        # Signed by Salt Edge, but for another URL (another kind): refused too.
        response = self.post_callback("destroy", body, self.signed_by_salt_edge("fail", body))
        self.assertEqual(response.status_code, 403)
        self.env.invalidate_all()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.assertEqual(len(connection.message_ids), messages)
        self.assertFalse(self.env["account.bank.callback"].search([("kind", "=", "destroy")]))

    def test_a_notify_and_a_success_with_the_same_body_are_two_callbacks(self):
        connection = self.connected()
        body = self.callback_body(connection, stage="finish")
        for kind in ("notify", "success"):
            response = self.post_callback(kind, body, self.signed_by_salt_edge(kind, body))
            self.assertEqual(response.json()["status"], "ok")
        self.env.invalidate_all()
        self.assertTrue(connection.import_requested)

    # --- how old a callback may be ----------------------------------------------------

    def post_success(self, connection, sent_at=None, **meta):
        """A success callback of ``connection`` signed by Salt Edge, sent ``sent_at``;
        returns (HTTP status, JSON status, the ledger's result)."""
        body = self.callback_body(connection, sent_at=sent_at, stage="finish")
        if meta:
            document = json.loads(body)
            document["meta"] = meta
            body = json.dumps(document).encode()
        Ledger = self.env["account.bank.callback"]
        before = Ledger.search([]).ids
        response = self.post_callback("success", body, self.signed_by_salt_edge("success", body))
        self.env.invalidate_all()
        ledger = Ledger.search([("id", "not in", before)])
        self.assertEqual(len(ledger), 1, "each callback signed by Salt Edge is in the ledger")
        return response.status_code, response.json()["status"], ledger.result

    def assert_refused(self, connection, sent_at=None, reason="", **meta):
        """The callback is acknowledged (Salt Edge would only send it again), recorded
        with ``reason`` in the ledger and a warning in the log, and changes nothing."""
        stage, triggers = connection.last_stage, self.env["ir.cron.trigger"].search([]).ids
        with self.assertLogs("odoo.addons.account_bank_connection", "WARNING") as logs:
            answer = self.post_success(connection, sent_at, **meta)
        self.assertEqual(answer, (200, reason, reason))
        self.assertTrue(any(reason in line and "refused" in line for line in logs.output))
        self.assertFalse(connection.import_requested)
        self.assertEqual(connection.last_stage, stage)
        self.assertFalse(self.env["ir.cron.trigger"].search([("id", "not in", triggers)]))

    def test_a_signed_success_sent_two_days_ago_is_refused_and_changes_nothing(self):
        connection = self.connected()
        two_days_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
        self.assert_refused(connection, two_days_ago, "too old")
        # Just over the limit (a day) is too old as well.
        limit = datetime.timedelta(seconds=const.CALLBACK_MAX_AGE_SECONDS + 60)
        self.assert_refused(
            connection, datetime.datetime.now(datetime.timezone.utc) - limit, "too old"
        )

    def test_a_signed_success_from_beyond_the_clock_skew_is_refused(self):
        connection = self.connected()
        # Ten minutes beyond the clock skew Odoo allows.
        ahead = datetime.timedelta(seconds=const.CALLBACK_CLOCK_SKEW_SECONDS + 600)
        self.assert_refused(
            connection, datetime.datetime.now(datetime.timezone.utc) + ahead, "too new"
        )

    def test_a_signed_success_without_a_time_is_refused(self):
        connection = self.connected()
        self.assert_refused(connection, reason="no time", version="6")
        self.assert_refused(connection, reason="no time", version="6", time="yesterday")
        self.assert_refused(connection, reason="no time", version="6", time=1767225600)

    def test_a_fresh_signed_success_is_applied_within_the_clock_skew_too(self):
        connection = self.connected()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(self.post_success(connection, now), (200, "ok", "import queued"))
        self.assertTrue(connection.import_requested)
        connection.import_requested = False
        self.env.flush_all()
        # Salt Edge's clock a few minutes ahead of Odoo's, or a day's delivery delay: in.
        for sent_at in (
            now + datetime.timedelta(minutes=4),
            now - datetime.timedelta(hours=23),
        ):
            self.assertEqual(self.post_success(connection, sent_at), (200, "ok", "import queued"))
            self.assertTrue(connection.import_requested)
            connection.import_requested = False
            self.env.flush_all()

    def test_the_ledger_remembers_a_callback_as_long_as_its_time_lets_it_in(self):
        Ledger = self.env["account.bank.callback"].sudo()
        accepted_for = datetime.timedelta(
            seconds=const.CALLBACK_MAX_AGE_SECONDS + const.CALLBACK_CLOCK_SKEW_SECONDS
        )
        recent = Ledger._claim("a" * 64, "success", "1")
        forgotten = Ledger._claim("b" * 64, "success", "1")
        now = fields.Datetime.now()
        self.env.execute_query(
            SQL(
                "UPDATE account_bank_callback SET create_date = CASE id"
                " WHEN %s THEN %s::timestamp ELSE %s::timestamp END WHERE id IN %s",
                recent.id,
                now - accepted_for - datetime.timedelta(hours=1),
                now - datetime.timedelta(days=const.CALLBACK_LEDGER_DAYS, hours=1),
                (recent.id, forgotten.id),
            )
        )
        Ledger._gc_old_callbacks()
        self.assertTrue(recent.exists(), "forgotten while a replay would still be let in")
        self.assertFalse(forgotten.exists())

    def test_a_chunked_body_over_the_limit_is_refused_without_being_read_whole(self):
        """A body sent chunked has no Content-Length for Odoo to refuse it by. This one is
        over the limit and never ends: the answer must come anyway, after at most the
        limit was read (bounded: the socket gives up after 20 s)."""
        host, port = urlparse(self.base_url()).hostname, urlparse(self.base_url()).port
        path = f"{const.CALLBACK_ROUTE}/success"
        piece = b"x" * 8192
        with socket.create_connection((host, port), timeout=20) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                "Signature: c2lnbmF0dXJl\r\n\r\n".encode()
            )
            for _piece in range(10):  # 80 KiB, over the 64 KiB limit; no last chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            answer = sock.recv(4096)
        self.assertTrue(answer.startswith(b"HTTP/1."), answer[:80])
        self.assertIn(b" 413 ", answer.split(b"\r\n", 1)[0])

    def test_the_same_callback_twice_has_the_effect_of_one(self):
        connection = self.connected()
        body = self.callback_body(
            connection, error_class="ProviderError", error_message="Maintenance tonight."
        )
        signature = self.signed_by_salt_edge("fail", body)
        first = self.post_callback("fail", body, signature)
        second = self.post_callback("fail", body, signature)
        self.assertEqual((first.status_code, first.json()["status"]), (200, "ok"))
        self.assertEqual((second.status_code, second.json()["status"]), (200, "duplicate"))
        self.env.invalidate_all()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.last_error, "ProviderError: Maintenance tonight.")
        self.assertEqual(
            len(connection.message_ids.filtered(lambda m: "Maintenance tonight" in m.body)), 1
        )
        self.assertEqual(self.env["account.bank.callback"].search_count([("kind", "=", "fail")]), 1)

    def test_a_callback_retried_after_a_concurrent_update_acts_once(self):
        # Two callbacks of one connection at once: Odoo rolls the loser back and serves it
        # again, which must read the same body and still answer ok.
        connection = self.connected()
        Ledger = self.env["account.bank.callback"]
        before = Ledger.search([]).ids
        body = self.callback_body(connection, stage="finish")
        Connection = type(self.env["account.bank.connection"])
        handle = Connection._saltedge_handle_callback
        calls = []

        def collide_once(model, kind, payload):
            calls.append(kind)
            if len(calls) == 1:
                # What PostgreSQL raises for the loser of a concurrent update.
                model.env.cr.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'concurrent update'"
                    " USING ERRCODE = 'serialization_failure'; END $$"
                )
            return handle(model, kind, payload)

        with patch.object(Connection, "_saltedge_handle_callback", collide_once):
            signature = self.signed_by_salt_edge("success", body)
            response = self.post_callback("success", body, signature)
        self.assertEqual((response.status_code, response.json()["status"]), (200, "ok"))
        self.assertEqual(calls, ["success", "success"])
        self.env.invalidate_all()
        self.assertTrue(connection.import_requested)
        ledger = Ledger.search([("id", "not in", before)])
        self.assertEqual(ledger.mapped("result"), ["import queued"])

"""The life of a bank connection on real Odoo against the Salt Edge sandbox over HTTP:
Bank verbinden, the return from the bank, accounts and journals, renew, disconnect, the
daily consent check, callbacks and who may do what.

Every test starts from an empty sandbox whose clock stands still at the real time, so a
consent ends exactly ``period_days`` (180 for the Belgian sandbox banks) after it was given.
"""

import datetime
import json
from unittest.mock import patch

import pytz

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user

from ..models import const
from ..models.account_bank_connect_session import ConnectStateError
from ..sandbox import complete_connect
from .common import (
    BELFIUS_CURRENT,
    BELFIUS_SAVINGS,
    INSTANT_FETCH,
    KBC_CURRENT,
    KBC_SAVINGS,
    BankConnectionCase,
    first_import,
    import_transactions,
)

CONSENT_DAYS = 180


class TestConnectionFlow(BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Session = cls.env["account.bank.connect.session"]

    def setUp(self):
        super().setUp()
        self.reset_sandbox()

    # --- helpers ---------------------------------------------------------------------

    def sandbox_today_plus(self, days):
        """The Brussels date ``days`` after the sandbox's (frozen) now."""
        now = datetime.datetime.fromisoformat(
            self.sandbox_get("clock")["now"].replace("Z", "+00:00")
        )
        moment = now + datetime.timedelta(days=days)
        return moment.astimezone(pytz.timezone("Europe/Brussels")).date()

    def account_of(self, connection, iban):
        return connection.account_ids.filtered(lambda account: account.iban == iban)

    def messages_of(self, connection, text):
        return connection.message_ids.filtered(lambda message: text in (message.body or ""))

    def callback(self, connection, kind, **data):
        payload = {
            "data": {
                "connection_id": connection.saltedge_connection_id,
                "customer_id": connection.saltedge_customer_id,
                "custom_fields": {},
                **data,
            },
            "meta": {"version": "6", "time": fields.Datetime.now().isoformat()},
        }
        return self.Connection._saltedge_handle_callback(kind, json.loads(json.dumps(payload)))

    def manager(self, login, company=None):
        company = company or self.company
        return new_test_user(
            self.env,
            login=login,
            groups="base.group_user,account.group_account_manager",
            company_id=company.id,
            company_ids=[(6, 0, company.ids)],
        )

    # --- connect and return ----------------------------------------------------------

    def test_connecting_kbc_links_the_starting_journal_and_shows_connected_until(self):
        connection = self.connected()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.provider_code, "kbc_sandbox_be")
        self.assertEqual(connection.company_id, self.company)
        self.assertEqual(connection.connected_until, self.sandbox_today_plus(CONSENT_DAYS))
        self.assertTrue(connection.saltedge_consent_id)
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.assertEqual(self.kbc_journal.bank_connected_until, connection.connected_until)
        self.assertEqual(self.account_of(connection, KBC_CURRENT).journal_id, self.kbc_journal)
        self.assertTrue(self.messages_of(connection, "connected until"))

    def test_the_account_without_a_journal_is_listed_on_the_connection(self):
        connection = self.connected()
        self.assertEqual(sorted(connection.account_ids.mapped("iban")), [KBC_SAVINGS, KBC_CURRENT])
        self.assertFalse(self.account_of(connection, KBC_SAVINGS).journal_id)
        self.assertEqual(connection.unlinked_account_count, 1)
        self.assertFalse(self.belfius_journal.bank_connection_id)

    def test_other_accounts_whose_iban_is_a_bank_journal_of_the_company_are_linked_too(self):
        savings_journal = self._bank_journal("Belfius Spaar", "BFSS", BELFIUS_SAVINGS)
        # Started from the savings journal: it gets its own IBAN, the current account
        # goes to the journal that has its IBAN.
        connection = self.connected("belfius_sandbox_be", journal=savings_journal)
        self.assertEqual(self.account_of(connection, BELFIUS_SAVINGS).journal_id, savings_journal)
        self.assertEqual(
            self.account_of(connection, BELFIUS_CURRENT).journal_id, self.belfius_journal
        )
        self.assertEqual(connection.journal_ids, savings_journal | self.belfius_journal)
        self.assertEqual(connection.unlinked_account_count, 0)
        self.assertFalse(self.kbc_journal.bank_connection_id)

    def test_a_journal_without_an_iban_gets_the_only_account_and_its_iban(self):
        journal = self.env["account.journal"].create(
            {"name": "ING", "code": "INGT", "type": "bank"}
        )
        connection = self.connected("ing_sandbox_be", journal=journal)
        account = connection.account_ids
        self.assertEqual(len(account), 1)
        self.assertEqual(account.journal_id, journal)
        self.assertEqual(journal.bank_acc_number, account.iban)

    def test_only_the_ticked_accounts_are_read_from_the_bank(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        self.assertEqual(connection.account_ids.mapped("iban"), [KBC_CURRENT])
        self.assertEqual(connection.unlinked_account_count, 0)

    def test_create_journal_makes_a_bank_journal_with_the_accounts_iban_and_currency(self):
        connection = self.connected()
        savings = self.account_of(connection, KBC_SAVINGS)
        action = savings.action_create_journal()
        journal = self.env["account.journal"].browse(action["res_id"])
        self.assertEqual(journal.type, "bank")
        self.assertEqual(journal.company_id, self.company)
        self.assertEqual(journal.bank_acc_number, KBC_SAVINGS)
        self.assertEqual(savings.currency_id.name, "EUR")
        self.assertEqual(journal.currency_id or journal.company_id.currency_id, savings.currency_id)
        self.assertEqual(savings.journal_id, journal)
        self.assertEqual(journal.bank_connection_id, connection)
        self.assertEqual(connection.unlinked_account_count, 0)
        with self.assertRaises(UserError):
            savings.action_create_journal()
        # The new journal receives the account's transactions.
        self.assertGreater(import_transactions(connection), 0)
        lines = self.env["account.bank.statement.line"].search([("journal_id", "=", journal.id)])
        self.assertTrue(lines)
        self.assertTrue(all(lines.mapped("saltedge_transaction_id")))

    def test_the_salt_edge_customer_is_created_once_per_company(self):
        first = self.connected()
        customer_id = self.company.sudo().saltedge_customer_id
        self.assertTrue(customer_id)
        second = self.connected("belfius_sandbox_be", journal=self.belfius_journal)
        self.assertEqual(self.company.sudo().saltedge_customer_id, customer_id)
        self.assertEqual(first.saltedge_customer_id, customer_id)
        self.assertEqual(second.saltedge_customer_id, customer_id)
        self.assertEqual(len(self.sandbox_api_requests("POST", "/customers")), 1)
        self.assertNotEqual(first, second)

    def test_a_return_naming_a_connection_of_another_customer_is_refused(self):
        client = self.Connection._saltedge_client()
        stranger = client.create_customer("someone-else")
        session = client.create_connect_session(
            stranger["id"], "https://elsewhere.example.com/back", provider_code="kbc_sandbox_be"
        )
        foreign_id = self.return_params(complete_connect(session["connect_url"]))["connection_id"]
        params = self.connect()
        params["connection_id"] = foreign_id
        with self.assertRaisesRegex(UserError, "does not belong"):
            self.finish(params)
        self.assertFalse(self.Connection.search([("saltedge_connection_id", "=", foreign_id)]))
        self.assertFalse(self.kbc_journal.bank_connection_id)

    def test_a_cancelled_connect_is_explained_and_creates_nothing(self):
        for screen, error_class in (
            ("terms", "ConnectionCancelled"),
            ("login", "ProviderAccessNotGranted"),
        ):
            params = self.connect(cancel_at=screen)
            self.assertEqual(params["error_class"], error_class)
            self.assertNotIn("connection_id", params)
            message = self.Connection._connect_error_message(params["error_class"])
            self.assertIn("cancelled", message)
            self.assertIn("Nothing changed", message)
        self.assertFalse(self.Connection.search([]))
        self.assertFalse(self.kbc_journal.bank_connection_id)

    def test_a_bank_that_fails_is_explained_in_words(self):
        message = self.Connection._connect_error_message("ProviderUnavailable")
        self.assertIn("cannot be reached", message)
        self.assertIn("Nothing changed", message)

    # --- the state of the return URL -------------------------------------------------

    def assert_refused(self, token, text):
        with self.assertRaisesRegex(ConnectStateError, text):
            self.Session._consume(token)
        self.assertFalse(self.Connection.search([]))

    def test_a_forged_state_is_refused(self):
        params = self.connect()
        session_id, nonce, signature = params["state"].split(".")
        self.assert_refused("1.forged.state", "not valid")
        self.assert_refused("", "not valid")
        self.assert_refused(f"{session_id}.{nonce}.{signature[:-2]}xx", "not valid")
        self.assert_refused(f"{session_id}.{nonce[:-2]}xx.{signature}", "not valid")
        self.assertFalse(self.Session.sudo().browse(int(session_id)).used_at)

    def test_a_state_is_used_once(self):
        params = self.connect()
        connection = self.finish(params)
        with self.assertRaisesRegex(ConnectStateError, "already handled"):
            self.Session._consume(params["state"])
        self.assertEqual(self.Connection.search([]), connection)

    def test_a_state_older_than_an_hour_is_refused(self):
        params = self.connect()
        session = self.Session.sudo().browse(int(params["state"].split(".")[0]))
        session.expires_at = fields.Datetime.now() - datetime.timedelta(seconds=1)
        self.assert_refused(params["state"], "more than an hour ago")
        self.assertFalse(session.used_at)

    def test_a_state_of_another_user_is_refused(self):
        params = self.connect()
        colleague = self.manager("abc_flow_colleague")
        with self.assertRaisesRegex(ConnectStateError, "another user"):
            self.Session.with_user(colleague)._consume(params["state"])
        self.assertFalse(self.Connection.search([]))

    def test_a_state_for_a_company_the_user_no_longer_has_is_refused(self):
        other_company = self.env["res.company"].create({"name": "Other BV"})
        user = self.manager("abc_flow_two_companies")
        user.company_ids = [(4, other_company.id)]
        session = self.Session.with_user(user)._start(other_company, provider_code="kbc")
        token = session._token()
        user.company_ids = [(3, other_company.id)]
        with self.assertRaisesRegex(ConnectStateError, "no access"):
            self.Session.with_user(user)._consume(token)
        self.assertFalse(session.used_at)

    # --- the first import ------------------------------------------------------------

    def test_the_first_import_fills_the_journal_and_a_second_run_adds_nothing(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        imported = first_import(connection)
        Line = self.env["account.bank.statement.line"]
        domain = [
            ("journal_id", "=", self.kbc_journal.id),
            ("saltedge_transaction_id", "!=", False),
        ]
        self.assertGreater(imported, 0, connection.last_error)
        self.assertEqual(Line.search_count(domain), imported)
        self.assertTrue(connection.last_sync, connection.last_error)
        self.assertEqual(import_transactions(connection), 0)
        # Even from the start again, a transaction is never imported twice.
        connection.account_ids.last_transaction_id = False
        self.assertEqual(import_transactions(connection), 0)
        self.assertEqual(Line.search_count(domain), imported)

    # --- renew -----------------------------------------------------------------------

    def test_renew_keeps_the_record_and_its_journals_and_moves_connected_until(self):
        connection = self.connected()
        first_until = connection.connected_until
        first_consent = connection.saltedge_consent_id
        self.advance_sandbox_days(10)
        action = connection.action_renew()
        self.assertEqual(action["type"], "ir.actions.act_url")
        renewed = self.finish(self.return_params(complete_connect(action["url"])))
        self.assertEqual(renewed, connection)
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.connected_until, first_until + datetime.timedelta(days=10))
        self.assertNotEqual(connection.saltedge_consent_id, first_consent)
        self.assertEqual(self.kbc_journal.bank_connection_id, connection)
        self.assertEqual(self.Connection.search_count([]), 1)
        self.assertEqual(
            len(
                self.sandbox_api_requests(
                    "POST", f"/connections/{connection.saltedge_connection_id}/reconnect"
                )
            ),
            1,
        )

    def test_an_expired_connection_can_be_reconnected(self):
        connection = self.connected()
        self.advance_sandbox_days(CONSENT_DAYS + 1)
        self.Connection._cron_check_consents()
        self.assertEqual(connection.state, "expired")
        action = connection.action_renew()
        self.finish(self.return_params(complete_connect(action["url"])))
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.connected_until, self.sandbox_today_plus(CONSENT_DAYS))

    # --- disconnect ------------------------------------------------------------------

    def test_disconnect_deletes_at_salt_edge_and_unlinks_the_journals(self):
        connection = self.connected()
        remote_id = connection.saltedge_connection_id
        connection.action_disconnect()
        deletes = self.sandbox_api_requests("DELETE", f"/connections/{remote_id}")
        self.assertEqual([entry["status"] for entry in deletes], [200])
        self.assertEqual(connection.state, "disconnected")
        self.assertFalse(connection.journal_ids)
        self.assertFalse(self.kbc_journal.bank_connection_id)
        self.assertFalse(connection.account_ids.journal_id)
        self.assertTrue(self.messages_of(connection, "Disconnected by"))
        remote = self.Connection._saltedge_client().get_connection(remote_id)
        self.assertEqual(remote["status"], "disabled")
        with self.assertRaises(UserError):
            connection.action_renew()

    def test_bank_feeds_says_salt_edge_while_connected_and_comes_back_at_disconnect(self):
        """Odoo's views and scheduled actions (Enterprise's synchronization among them)
        read the journal's Bank Feeds: ours while a connection feeds it, and the former
        value again once it is disconnected."""
        journal = self.kbc_journal
        self.assertEqual(journal.bank_statements_source, "undefined")
        sources = dict(journal._fields["bank_statements_source"]._description_selection(self.env))
        self.assertIn(const.JOURNAL_SOURCE, sources)
        connection = self.connected()
        self.assertEqual(journal.bank_statements_source, const.JOURNAL_SOURCE)
        self.assertEqual(journal.bank_connection_previous_source, "undefined")
        # Nothing else takes the journal's feed while it is connected.
        journal.bank_statements_source = "undefined"
        self.assertEqual(journal.bank_statements_source, const.JOURNAL_SOURCE)
        connection.action_disconnect()
        self.assertEqual(journal.bank_statements_source, "undefined")
        self.assertFalse(journal.bank_connection_previous_source)

    def test_disconnect_works_when_salt_edge_no_longer_knows_the_connection(self):
        connection = self.Connection.create(
            {
                "name": "KBC",
                "state": "connected",
                "provider_code": "kbc_sandbox_be",
                "saltedge_connection_id": "999999999",
                "saltedge_customer_id": "1",
            }
        )
        self.kbc_journal.bank_connection_id = connection
        connection.action_disconnect()
        # Confirmed with Salt Edge first, which no longer knows it: nothing to revoke.
        reads = self.sandbox_api_requests("GET", "/connections/999999999")
        self.assertEqual([entry["status"] for entry in reads], [404])
        self.assertFalse(self.sandbox_api_requests("DELETE", "/connections/999999999"))
        self.assertEqual(connection.state, "disconnected")
        self.assertFalse(self.kbc_journal.bank_connection_id)

    # --- the daily consent check -----------------------------------------------------

    def test_the_daily_check_finds_an_expired_consent(self):
        connection = self.connected()
        self.Connection._cron_check_consents()
        self.assertEqual(connection.state, "connected")
        self.advance_sandbox_days(CONSENT_DAYS + 1)
        self.Connection._cron_check_consents()
        self.assertEqual(connection.state, "expired")
        self.assertTrue(self.messages_of(connection, "Reconnect the bank"))
        activities = connection.activity_ids
        self.assertEqual(len(activities), 1)
        self.assertIn("Reconnect", activities.summary)
        self.assertEqual(self.kbc_journal.bank_connection_level, "danger")
        # The next day says nothing new.
        self.Connection._cron_check_consents()
        self.assertEqual(len(connection.activity_ids), 1)

    def test_the_daily_check_moves_connected_until_when_the_bank_renewed_elsewhere(self):
        connection = self.connected()
        connection.connected_until = fields.Date.today()
        self.Connection._cron_check_consents()
        self.assertEqual(connection.connected_until, self.sandbox_today_plus(CONSENT_DAYS))

    # --- callbacks -------------------------------------------------------------------

    def test_a_success_callback_asks_for_an_import(self):
        connection = self.connected()
        self.assertFalse(connection.import_requested)
        self.assertEqual(self.callback(connection, "success", stage="finish"), "import queued")
        self.assertTrue(connection.import_requested)
        # The requested import, of this connection only, not the hourly pass over all.
        cron = self.env.ref("account_bank_connection.ir_cron_import_requested")
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]))
        hourly = self.env.ref("account_bank_connection.ir_cron_import_transactions")
        self.assertFalse(self.env["ir.cron.trigger"].search([("cron_id", "=", hourly.id)]))

    def test_a_fail_callback_records_the_error_once_and_keeps_the_connection(self):
        connection = self.connected()
        for _attempt in range(2):
            self.callback(
                connection, "fail", error_class="ProviderError", error_message="Bank is down."
            )
        # A bank that is down for an hour is not the end: Salt Edge's status decides.
        self.assertEqual(connection.state, "connected")
        self.assertTrue(connection.import_requested)
        self.assertEqual(connection.last_error, "ProviderError: Bank is down.")
        self.assertEqual(len(self.messages_of(connection, "Bank is down.")), 1)

    def test_a_fail_callback_for_a_cancelled_renew_changes_nothing(self):
        connection = self.connected()
        result = self.callback(
            connection,
            "fail",
            error_class="ConnectionCancelled",
            error_message="The user cancelled the connection.",
        )
        self.assertEqual(result, "cancelled")
        self.assertEqual(connection.state, "connected")
        self.assertFalse(connection.last_error)

    def test_a_destroy_callback_disconnects(self):
        connection = self.connected()
        self.assertEqual(self.callback(connection, "destroy"), "disconnected")
        self.assertEqual(self.callback(connection, "destroy"), "disconnected")
        self.assertEqual(connection.state, "disconnected")
        self.assertFalse(self.kbc_journal.bank_connection_id)
        self.assertEqual(len(self.messages_of(connection, "removed at Salt Edge")), 1)

    def test_a_callback_for_a_connection_of_another_customer_changes_nothing(self):
        connection = self.connected()
        payload = {"data": {"connection_id": connection.saltedge_connection_id, "customer_id": "1"}}
        self.assertEqual(self.Connection._saltedge_handle_callback("destroy", payload), "unknown")
        self.assertEqual(connection.state, "connected")

    def test_a_notify_reads_its_connection_once_and_writes_only_what_changes(self):
        connection = self.connected()
        # The ids the payload is built from, read before the queries are counted.
        self.assertTrue(connection.saltedge_connection_id and connection.saltedge_customer_id)
        self.env.flush_all()
        with self.assertQueryCount(2):  # the connection's row, then its new stage
            self.assertEqual(self.callback(connection, "notify", stage="fetch_recent"), "noted")
        self.assertEqual(connection.last_stage, "fetch_recent")
        self.assertFalse(connection.fetch_finished)
        # The same stage again (Salt Edge sends a stage more than once): nothing to write,
        # so nothing a concurrent callback of the same connection could collide with.
        write_date = connection.write_date
        with self.assertQueryCount(1):
            self.assertEqual(self.callback(connection, "notify", stage="fetch_recent"), "noted")
        self.assertEqual(connection.write_date, write_date)
        self.assertEqual(self.callback(connection, "success", stage="finish"), "import queued")
        self.assertEqual(connection.last_stage, "finish")
        self.assertTrue(connection.import_requested)
        self.assertTrue(connection.saltedge_seen_at)

    def test_a_burst_of_callbacks_queues_a_trigger_each_and_wakes_the_cron_once(self):
        cron = self.env.ref("account_bank_connection.ir_cron_import_requested")
        Trigger = self.env["ir.cron.trigger"]
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        IrCron = type(self.env["ir.cron"])
        spy = patch.object(IrCron, "_trigger", autospec=True, side_effect=IrCron._trigger)
        with spy as trigger:
            for _callback in range(3):
                self.Connection._trigger_requested_import(callback=True)
            # Not a callback's (the waiting page's slice): the cron workers are woken.
            self.Connection._trigger_requested_import()
        moments = [call.args[1] if len(call.args) > 1 else None for call in trigger.call_args_list]
        triggers = Trigger.search([("cron_id", "=", cron.id)], order="id")
        self.assertEqual(len(triggers), 4)
        # The first is due now and wakes the cron workers (Odoo's NOTIFY); the next two
        # find it due and are queued a second later, without another wake-up.
        self.assertIsNone(moments[0])
        for moment in moments[1:3]:
            self.assertTrue(moment)
            self.assertLessEqual(moment - triggers[0].call_at, datetime.timedelta(seconds=2))
            self.assertGreater(moment, triggers[0].call_at - datetime.timedelta(seconds=1))
        self.assertIsNone(moments[3])

    def test_a_callback_signature_is_checked_with_the_key_in_the_settings_now(self):
        from ..saltedge_client import generate_key_pair
        from ..saltedge_client import verify_callback_signature as _signed_by_salt_edge
        from ..sandbox import signing

        url, body = "https://odoo.example/cb/notify", b'{"data": {}}'
        keys = [generate_key_pair() for _pair in range(2)]
        signatures = [
            signing.sign(signing.load_private_key(private), signing.callback_message(url, body))
            for private, _public in keys
        ]
        for _twice in range(2):  # the second time from the parsed key kept in memory
            self.assertTrue(_signed_by_salt_edge(keys[0][1], url, body, signatures[0]))
            self.assertFalse(_signed_by_salt_edge(keys[0][1], url, body, signatures[1]))
        # A new key in the settings is another PEM text: the old key's signature is refused.
        self.assertFalse(_signed_by_salt_edge(keys[1][1], url, body, signatures[0]))
        self.assertTrue(_signed_by_salt_edge(keys[1][1], url, body, signatures[1]))
        self.assertFalse(_signed_by_salt_edge(keys[1][1], url, body + b" ", signatures[1]))
        self.assertFalse(_signed_by_salt_edge(keys[1][1], url + "x", body, signatures[1]))
        for pem in ("", "not a key", keys[1][0]):  # nothing, garbage, a private key
            self.assertFalse(_signed_by_salt_edge(pem, url, body, signatures[1]))
        for signature in (None, "", "not base64!", "c2ln", " " + signatures[1] + "é"):
            self.assertFalse(_signed_by_salt_edge(keys[1][1], url, body, signature))

    # --- who may do what -------------------------------------------------------------

    def test_an_accounting_manager_connects_renews_and_disconnects(self):
        manager = self.manager("abc_flow_manager")
        # Bank verbinden on the journal opens the bank picker; Verbinden on KBC.
        action = self.kbc_journal.with_user(manager).action_bank_connect()
        Picker = self.env[action["res_model"]].with_user(manager).with_context(**action["context"])
        bank = Picker.search([*action.get("domain", []), ("code", "=", "kbc_sandbox_be")])
        self.assertEqual(len(bank), 1)
        params = self.return_params(complete_connect(bank.action_connect()["url"]))
        session = self.Session.with_user(manager)._consume(params["state"])
        connection = self.Connection.with_user(manager)._saltedge_finish_return(
            session, connection_hint=params.get("connection_id")
        )
        self.assertEqual(connection.env.user, manager)
        self.assertEqual(connection.user_id, manager)
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.action_renew()["type"], "ir.actions.act_url")
        connection.action_disconnect()
        self.assertEqual(connection.state, "disconnected")

    def test_an_accountant_sees_connections_but_cannot_change_them(self):
        connection = self.connected()
        accountant = new_test_user(
            self.env,
            login="abc_flow_accountant",
            groups="base.group_user,account.group_account_user",
        )
        as_accountant = connection.with_user(accountant)
        self.assertEqual(as_accountant.read(["state"])[0]["state"], "connected")
        self.assertEqual(self.Connection.with_user(accountant).search([]), connection)
        for action in (as_accountant.action_renew, as_accountant.action_disconnect):
            with self.assertRaises(AccessError):
                action()
        with self.assertRaises(AccessError):
            self.kbc_journal.with_user(accountant).action_bank_connect()
        with self.assertRaises(AccessError):
            as_accountant.write({"state": "disconnected"})
        with self.assertRaises(AccessError):
            self.Connection.with_user(accountant)._saltedge_start_connect(
                self.company, "kbc_sandbox_be", journal=self.kbc_journal
            )
        self.assertEqual(connection.state, "connected")
        self.assertFalse(self.sandbox_api_requests("DELETE"))

    def test_a_plain_internal_user_sees_no_connection(self):
        self.connected()
        user = new_test_user(self.env, login="abc_flow_plain", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.Connection.with_user(user).search([])
        with self.assertRaises(AccessError):
            self.env["account.bank.connection.account"].with_user(user).search([])

    def test_a_user_of_another_company_does_not_see_the_connection(self):
        connection = self.connected()
        other_company = self.env["res.company"].create({"name": "Andere BV"})
        stranger = self.manager("abc_flow_other_company", company=other_company)
        Connection = self.Connection.with_user(stranger)
        self.assertFalse(Connection.search([]))
        self.assertFalse(self.env["account.bank.connection.account"].with_user(stranger).search([]))
        with self.assertRaises(AccessError):
            connection.with_user(stranger).read(["name"])

    # --- Salt Edge ids are the module's ------------------------------------------------

    def test_salt_edge_ids_and_the_state_are_not_written_by_hand(self):
        connection = self.connected()
        manager = self.manager("abc_flow_ids_manager")
        for vals in (
            {"saltedge_connection_id": "100000000099"},
            {"saltedge_customer_id": "100000000098"},
            {"saltedge_consent_id": "100000000097"},
            {"state": "connected"},
        ):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                connection.with_user(manager).write(vals)
        with self.assertRaises(AccessError):
            connection.account_ids[:1].with_user(manager).write({"saltedge_account_id": "1"})
        # What is the user's to change still is.
        connection.with_user(manager).write({"name": "Mijn KBC"})
        self.assertEqual(connection.name, "Mijn KBC")

    def test_another_companys_connection_is_refused_for_import_consent_check_and_revoke(self):
        connection = self.connected()
        # Another company's connection at Salt Edge: another customer.
        client = self.Connection._saltedge_client()
        customer = client.create_customer("another-company")
        session = client.create_connect_session(
            customer["id"], "http://localhost/return", provider_code="belfius_sandbox_be"
        )
        back = self.return_params(complete_connect(session["connect_url"]))
        foreign_id = back["connection_id"]
        # Somebody points this company's connection at it (the module's own code could).
        connection.sudo().saltedge_connection_id = foreign_id
        run, error = connection.sudo()._run_import("manual")
        self.assertIn("does not belong", str(error))
        self.assertFalse(run.created_count)
        with self.assertRaisesRegex(UserError, "does not belong"):
            connection._saltedge_update_consent(client)
        deletes_before = len(self.sandbox_api_requests("DELETE"))
        with self.assertRaisesRegex(UserError, "does not belong"):
            connection.action_disconnect()
        self.assertEqual(len(self.sandbox_api_requests("DELETE")), deletes_before)
        self.assertEqual(client.get_connection(foreign_id)["status"], "active")

    def test_a_fail_or_destroy_older_than_what_odoo_knows_changes_nothing(self):
        connection = self.connected()
        seen = connection.saltedge_seen_at
        self.assertTrue(seen, "the return read the connection and its time")
        older = (seen - datetime.timedelta(minutes=5)).isoformat() + "Z"
        newer = (seen + datetime.timedelta(minutes=5)).isoformat() + "Z"

        def send(kind, time, **data):
            payload = {
                "data": {
                    "connection_id": connection.saltedge_connection_id,
                    "customer_id": connection.saltedge_customer_id,
                    **data,
                },
                "meta": {"version": "6", "time": time},
            }
            return self.Connection._saltedge_handle_callback(kind, payload)

        # Sent before the state Odoo read: it would undo it. Recorded as stale.
        self.assertEqual(send("fail", older, error_class="ProviderError"), "stale")
        self.assertEqual(send("destroy", older), "stale")
        self.assertEqual(connection.state, "connected")
        self.assertFalse(connection.last_error)
        self.assertFalse(connection.import_requested)
        # A newer success moves what Odoo knows on; a fail from between is stale too.
        self.assertEqual(send("success", newer, stage="finish"), "import queued")
        between = (seen + datetime.timedelta(minutes=1)).isoformat() + "Z"
        self.assertEqual(send("fail", between, error_class="ProviderError"), "stale")
        self.assertFalse(connection.last_error)
        # A fail newer than all of it is applied.
        latest = (seen + datetime.timedelta(minutes=10)).isoformat() + "Z"
        self.assertEqual(send("fail", latest, error_class="ProviderError"), "error recorded")
        self.assertEqual(connection.last_error, "ProviderError")

    def test_only_a_successful_finished_attempt_counts_as_a_finished_fetch(self):
        connection = self.connected()

        def finished(**attempt):
            return connection._saltedge_note_fetch({"last_attempt": attempt})

        finish = [{"name": "fetch_recent"}, {"name": "finish"}]
        self.assertTrue(finished(finished=True, stages=finish, success_at="2030-01-01T10:00:00Z"))
        self.assertFalse(finished(finished=False, stages=finish[:1]))
        # A failed attempt may have fetched part of the history only.
        self.assertFalse(finished(finished=True, stages=finish, fail_error_class="ProviderError"))
        # Stages listed in another order: success_at says it.
        reordered = [{"name": "finish"}, {"name": "fetch_full"}]
        self.assertTrue(
            finished(finished=True, stages=reordered, success_at="2030-01-01T10:00:00Z")
        )
        self.assertFalse(finished(finished=True, stages=reordered))

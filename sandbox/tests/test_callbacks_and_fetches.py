"""The callbacks the sandbox signs and sends, and its staged fetch: accounts, then recent
transactions, then older history, as Salt Edge fetches after a connect or refresh."""

import base64
import datetime
import json
import socket
import time

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from sandbox import BE_DEMO_IBANS, SandboxServer, complete_connect
from sandbox.ledger import balance_before
from sandbox.providers import PROVIDERS_BY_CODE
from sandbox.tests.common import (
    APP_ID,
    FIRST_ID,
    MONDAY_MORNING,
    RETURN_TO,
    SECRET,
    CallbackReceiver,
    Client,
    SandboxCase,
)


class CallbackTest(SandboxCase):
    def setUp(self):
        super().setUp()
        self.receiver = CallbackReceiver()
        self.addCleanup(self.receiver.close)
        self.server.callback_url = self.receiver.url + "/callbacks/{kind}"
        key_pem = requests.get(self.server.url + "/sandbox/public_key.pem", timeout=10).content
        self.salt_edge_key = serialization.load_pem_public_key(key_pem, default_backend())

    def assert_signed(self, path, headers, body):
        url = self.receiver.url + path
        signature = base64.b64decode(headers["Signature"])
        self.assertEqual(headers["Content-Type"], "application/json")
        try:
            self.salt_edge_key.verify(
                signature, url.encode() + b"|" + body, padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            self.fail(f"callback to {path} has a bad signature")

    def kinds_and_stages(self, connection_id=None):
        """The kinds received, and the stages of the notify callbacks, in order."""
        kinds, stages = [], []
        for path, headers, body in self.receiver.received:
            self.assert_signed(path, headers, body)
            document = json.loads(body)
            if connection_id and document["data"].get("connection_id") != connection_id:
                continue
            kinds.append(path.rsplit("/", 1)[1])
            self.assertEqual(document["meta"]["version"], "6")
            if kinds[-1] == "notify":
                stages.append(document["data"]["stage"])
        return kinds, stages

    def wait_callbacks(self):
        self.server.app.sender.wait(10)

    def successes(self, count):
        self.assertTrue(
            self.receiver.wait_for(
                lambda got: sum(p.endswith("/success") for p, _h, _b in got) >= count
            )
        )

    def test_connect_sends_signed_notify_and_success_callbacks(self):
        fields = {"odoo_state": "xyz"}
        connection_id = self.connect(
            data={"attempt": {"return_to": RETURN_TO, "custom_fields": fields}}
        )
        self.successes(2)
        kinds, stages = self.kinds_and_stages()
        self.assertEqual(kinds, ["notify"] * 6 + ["success"] * 2)
        self.assertEqual(
            stages, ["start", "connect", "fetch_accounts", "fetch_recent", "fetch_full", "finish"]
        )
        datas = [json.loads(body)["data"] for _p, _h, body in self.receiver.received]
        self.assertTrue(all(data["connection_id"] == connection_id for data in datas))
        self.assertTrue(all(data["custom_fields"] == fields for data in datas))
        # Salt Edge announces one to three identical success callbacks: here two.
        self.assertEqual(datas[-1], datas[-2])
        self.assertEqual(datas[-1]["stage"], "finish")
        self.assertEqual(set(datas[-1]), {"connection_id", "customer_id", "custom_fields", "stage"})
        time.sleep(0.3)
        self.assertEqual(len(self.receiver.received), 8)

    def test_three_success_callbacks_and_an_instant_fetch(self):
        # fetch_seconds=0: the whole fetch inside the request, with the same callbacks.
        with SandboxServer(
            app_id=APP_ID,
            secret=SECRET,
            fetch_seconds=0,
            success_callbacks=3,
            callback_url=self.receiver.url + "/callbacks/{kind}",
        ) as server:
            client = Client(server)
            requests.post(server.url + "/sandbox/clock", json={"now": MONDAY_MORNING}, timeout=10)
            customer_id = self.assert_ok(
                client.call("POST", "/customers", body={"data": {"identifier": "i"}})
            )["data"]["id"]
            body = {
                "data": {
                    "customer_id": customer_id,
                    "consent": {"scopes": ["accounts", "transactions"]},
                    "attempt": {"return_to": RETURN_TO},
                    "provider": {"code": "ing_sandbox_be"},
                }
            }
            session = self.assert_ok(client.call("POST", "/connections/connect", body=body))["data"]
            final = complete_connect(session["connect_url"])
            self.assertEqual(final, RETURN_TO)  # no hints asked
            listed = self.assert_ok(
                client.call("GET", "/connections", {"customer_id": customer_id})
            )["data"]
            connection_id = listed[0]["id"]
            self.assertTrue(listed[0]["last_attempt"]["finished"])
            accounts = client.call("GET", "/accounts", {"connection_id": connection_id})
            self.assertTrue(self.assert_ok(accounts)["data"])
            self.successes(3)
            server.app.sender.wait(5)
            self.salt_edge_key = serialization.load_pem_public_key(
                server.public_key_pem, default_backend()
            )
        kinds, stages = self.kinds_and_stages()
        self.assertEqual(kinds, ["notify"] * 6 + ["success"] * 3)
        self.assertEqual(
            stages, ["start", "connect", "fetch_accounts", "fetch_recent", "fetch_full", "finish"]
        )

    def test_background_refresh_failing_at_the_bank_sends_start_and_fail(self):
        connection_id = self.connect()
        self.successes(2)
        self.receiver.received.clear()
        failure = {"error_class": "ProviderError", "error_message": "Bank down"}
        self.control("POST", f"/connections/{connection_id}/fail_next", failure)
        self.advance(advance_seconds=301)
        self.background_refresh(connection_id)
        self.assertTrue(
            self.receiver.wait_for(lambda got: any(p.endswith("/fail") for p, _h, _b in got))
        )
        kinds, stages = self.kinds_and_stages()
        self.assertEqual((kinds, stages), (["notify", "fail"], ["start"]))
        fail = json.loads(self.receiver.received[-1][2])["data"]
        self.assertEqual(
            (fail["error_class"], fail["error_message"]), ("ProviderError", "Bank down")
        )

    def test_automatic_refresh_runs_the_staged_fetch_outside_the_daily_limit(self):
        connection_id = self.connect(data={"automatic_refresh": True})
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertIs(connection["automatic_refresh"], True)
        self.assertIs(connection["daily_refresh"], True)
        for _refresh in range(3):
            self.advance(advance_seconds=301)
            self.background_refresh(connection_id)
        self.wait_callbacks()
        self.receiver.received.clear()
        answer = self.control("POST", f"/connections/{connection_id}/automatic_refresh")
        self.assertFalse(answer["data"]["last_attempt"]["finished"])
        self.assertFalse(answer["data"]["last_attempt"]["user_present"])
        self.wait_fetches()
        self.successes(2)
        kinds, stages = self.kinds_and_stages()
        self.assertEqual(kinds, ["notify"] * 6 + ["success"] * 2)
        self.advance(advance_seconds=301)
        self.background_refresh(connection_id)  # the 4th of the day: automatic ones are free
        self.advance(advance_seconds=301)
        self.refresh_refused(connection_id, 406, "BackgroundFetchLimitExceeded")

    def test_automatic_refresh_is_refused_without_the_request_or_a_live_consent(self):
        asked = self.connect(data={"daily_refresh": True})  # the v5 name works too
        self.assertTrue(
            self.assert_call_ok("GET", f"/connections/{asked}")["data"]["automatic_refresh"]
        )
        not_asked = self.connect(customer_id=self.customer("other"))
        connection = self.assert_call_ok("GET", f"/connections/{not_asked}")["data"]
        self.assertIs(connection["automatic_refresh"], False)
        self.assertIs(connection["daily_refresh"], False)
        url = f"{self.server.url}/sandbox/connections/{{}}/automatic_refresh"
        refused = requests.post(url.format(not_asked), timeout=10)
        self.assertEqual(refused.status_code, 400, refused.text)
        self.assertEqual(refused.json()["error"]["class"], "ConnectionCannotBeRefreshed")
        self.advance(advance_days=181)
        expired = requests.post(url.format(asked), timeout=10)
        self.assertEqual(expired.status_code, 400, expired.text)
        self.assertEqual(expired.json()["error"]["class"], "ConnectionCannotBeRefreshed")

    def test_delete_sends_destroy_and_a_failing_bank_sends_fail(self):
        connection_id = self.connect()
        self.receiver.wait_for(lambda got: any(p.endswith("/success") for p, _h, _b in got))
        self.assert_call_ok("DELETE", f"/connections/{connection_id}")
        self.assertTrue(
            self.receiver.wait_for(lambda got: any(p.endswith("/destroy") for p, _h, _b in got))
        )
        session = self.connect_session("fakebank_with_error_xf", customer_id=self.customer("b"))
        complete_connect(session["connect_url"])
        self.assertTrue(
            self.receiver.wait_for(lambda got: any(p.endswith("/fail") for p, _h, _b in got))
        )
        for path, headers, body in self.receiver.received:
            self.assert_signed(path, headers, body)
        fail = next(json.loads(b) for p, _h, b in self.receiver.received if p.endswith("/fail"))
        self.assertEqual(fail["data"]["error_class"], "ProviderUnavailable")

    def test_an_unreachable_callback_url_does_not_break_the_api(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead_port = probe.getsockname()[1]
        self.server.callback_url = f"http://127.0.0.1:{dead_port}/callback"
        connection_id = self.connect()
        self.server.app.sender.wait(10)
        sent = self.control("GET", "/callbacks")["data"]
        self.assertTrue(sent and all(record["error"] for record in sent))
        self.assert_call_ok("GET", f"/connections/{connection_id}")


class StagedFetchTest(SandboxCase):
    """The fetch as Salt Edge runs it: in stages, after the user is back in the app."""

    fetch_seconds = 2.0  # a stage every half second

    def fetches(self):
        return self.control("GET", "/fetches")["data"]

    def wait_for_stage(self, connection_id, stage, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [f for f in self.fetches() if f["connection_id"] == connection_id]
            if running and running[0]["stage"] == stage:
                return running[0]
            time.sleep(0.01)
        self.fail(f"no fetch of {connection_id} at stage {stage}")

    def test_accounts_then_recent_then_older_history_with_higher_ids(self):
        started = time.monotonic()
        connection_id = self.connect(wait=False)
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        # Back in the application before the fetch: connection and consent, no accounts.
        self.assertLess(time.monotonic() - started, self.fetch_seconds / 4)
        self.assertEqual(connection["status"], "active")
        attempt = connection["last_attempt"]
        self.assertFalse(attempt["finished"])
        self.assertFalse(attempt["finished_recent"])
        self.assertEqual([stage["name"] for stage in attempt["stages"]], ["start", "connect"])
        self.assertIsNone(connection["last_success_at"])
        self.assertEqual(
            self.fetches(),
            [{"connection_id": connection_id, "attempt_id": attempt["id"], "stage": "connect"}],
        )
        self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})
        query = {"connection_id": connection_id}
        self.assertEqual(self.assert_call_ok("GET", "/accounts", query)["data"], [])
        # fetch_accounts: every account, already with its true balance.
        self.wait_for_stage(connection_id, "fetch_accounts")
        accounts = self.assert_call_ok("GET", "/accounts", query)["data"]
        self.assertEqual(
            [account["extra"]["iban"] for account in accounts],
            list(BE_DEMO_IBANS["kbc_sandbox_be"]),
        )
        self.assertEqual(self.assert_call_ok("GET", "/transactions", query)["data"], [])
        # fetch_recent: the last 30 days only.
        self.wait_for_stage(connection_id, "fetch_recent")
        recent, _pages = self.all_transactions(connection_id)
        self.assertTrue(recent)
        self.assertGreaterEqual(min(t["made_on"] for t in recent), "2025-02-09")
        attempt = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        attempt = attempt["last_attempt"]
        self.assertTrue(attempt["finished_recent"])
        self.assertFalse(attempt["finished"])
        # fetch_full, then finish: the older history, with higher ids than the recent one.
        self.wait_fetches()
        self.assertEqual(self.fetches(), [])
        everything, _pages = self.all_transactions(connection_id)
        older = [t for t in everything if t["made_on"] < "2025-02-09"]
        self.assertTrue(older)
        self.assertGreater(min(int(t["id"]) for t in older), max(int(t["id"]) for t in recent))
        self.assertEqual(
            {t["id"] for t in everything} - {t["id"] for t in older}, {t["id"] for t in recent}
        )
        provider = PROVIDERS_BY_CODE["kbc_sandbox_be"]
        after = self.assert_call_ok("GET", "/accounts", query)["data"]
        for early, late, template in zip(accounts, after, provider.accounts, strict=True):
            self.assertEqual(early["balance"], late["balance"])
            own = [t for t in everything if t["account_id"] == late["id"]]
            first_day = datetime.date.fromisoformat(min(t["made_on"] for t in own))
            holder = late["extra"]["holder_name"]
            before = balance_before(provider, template, holder, first_day)
            expected = round(before + sum(t["amount"] for t in own), 2)
            self.assertAlmostEqual(late["balance"], expected, places=2)
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        attempt = connection["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertEqual(attempt["success_at"], "2025-03-10T08:00:00Z")
        self.assertEqual(connection["last_success_at"], "2025-03-10T08:00:00Z")
        self.assertEqual(
            [stage["name"] for stage in attempt["stages"]],
            ["start", "connect", "fetch_accounts", "fetch_recent", "fetch_full", "finish"],
        )

    def test_a_refresh_while_a_fetch_runs_is_already_processing(self):
        connection_id = self.connect(wait=False)
        error = self.refresh_refused(connection_id, 409, "ConnectionAlreadyProcessing")
        self.assertTrue(error["message"])
        body = {"data": {"attempt": {"return_to": RETURN_TO}}}
        interactive = self.client.call("POST", f"/connections/{connection_id}/refresh", body=body)
        self.assert_error(interactive, 409, "ConnectionAlreadyProcessing")
        self.wait_fetches()
        self.advance(advance_seconds=301)
        self.background_refresh(connection_id, wait=False)
        self.advance(advance_seconds=301)  # past the interval: still one fetch at a time
        self.refresh_refused(connection_id, 409, "ConnectionAlreadyProcessing")
        waited = self.control("POST", "/fetches/wait", {"timeout": 0})
        self.assertEqual(waited["data"]["running"], 1)
        self.wait_fetches()
        self.background_refresh(connection_id, wait=False)
        self.wait_fetches()

    def test_a_reset_stops_the_fetches_of_the_old_state(self):
        self.connect(wait=False)
        self.control("POST", "/reset")
        self.assertEqual(self.fetches(), [])
        customer_id = self.customer("after-reset")
        self.assertEqual(customer_id, str(FIRST_ID))
        time.sleep(self.fetch_seconds + 0.3)
        # The old fetch gave no id and made no account in the new state.
        self.assertEqual(self.customer("later"), str(FIRST_ID + 1))
        self.assertEqual(
            self.assert_call_ok("GET", "/accounts", {"customer_id": customer_id})["data"], []
        )

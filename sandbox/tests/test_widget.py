"""The connect widget's screens as a browser goes through them: login methods, ticked
accounts, cancel, the guide's Dutch texts, the hints in the redirect back, interactive
refresh and the banks offered."""

import requests

from sandbox import BE_DEMO_IBANS, complete_connect
from sandbox.providers import PROVIDERS_BY_CODE
from sandbox.tests.common import (
    RETURN_TO,
    SandboxCase,
    query_of,
)


class WidgetTest(SandboxCase):
    def test_business_itsme_connect_returns_to_the_application_with_its_parameters(self):
        session = self.connect_session()
        final = complete_connect(session["connect_url"], customer_type="business")
        params = query_of(final)
        self.assertEqual(params["state"], "xyz")
        self.assertEqual(params["db"], "demo")
        self.assertTrue(params["connection_id"].isdigit())
        self.assertNotIn("error_class", params)
        # The session is finished: opening the link again goes back to the same place.
        again = requests.get(session["connect_url"], allow_redirects=False, timeout=10)
        self.assertEqual(again.headers["Location"], final)

    def test_card_reader_and_a_subset_of_accounts(self):
        iban = BE_DEMO_IBANS["kbc_sandbox_be"][1]
        session = self.connect_session()
        final = complete_connect(
            session["connect_url"], login_method="card_reader", account_ibans=[iban]
        )
        self.wait_fetches()
        accounts = self.assert_call_ok(
            "GET", "/accounts", {"connection_id": query_of(final)["connection_id"]}
        )["data"]
        self.assertEqual([account["extra"]["iban"] for account in accounts], [iban])

    def test_cancel_redirects_with_an_error_and_leaves_no_connection(self):
        customer_id = self.customer()
        for screen, error_class in (
            ("customer_type", "ConnectionCancelled"),
            ("terms", "ConnectionCancelled"),
            ("wait", "ConnectionCancelled"),
            ("login", "ProviderAccessNotGranted"),
            ("accounts", "ProviderAccessNotGranted"),
        ):
            session = self.connect_session(customer_id=customer_id)
            params = query_of(complete_connect(session["connect_url"], cancel_at=screen))
            self.assertEqual(params["error_class"], error_class, screen)
            self.assertTrue(params["error_message"])
            self.assertEqual(params["state"], "xyz")
        listed = self.assert_call_ok("GET", "/connections", {"customer_id": customer_id})
        self.assertEqual(listed["data"], [])

    def test_screens_refuse_unticked_terms_and_ignore_double_submits(self):
        session = self.connect_session()
        url = session["connect_url"]
        http = requests.Session()
        http.post(url, data={"step": "customer_type", "customer_type": "business"}, timeout=10)
        refused = http.post(url, data={"step": "terms"}, timeout=10)
        self.assertIn('content="terms"', refused.text)
        self.assertIn("tick the box", refused.text)
        http.post(url, data={"step": "terms", "accept_terms": "1"}, timeout=10)
        for _refresh in range(3):  # refreshing the wait page changes nothing
            self.assertIn('content="wait"', http.get(url, timeout=10).text)
        http.get(url + "/continue?step=wait", timeout=10)
        http.post(url, data={"step": "login", "login_method": "itsme"}, timeout=10)
        ibans = list(BE_DEMO_IBANS["kbc_sandbox_be"])
        for _click in range(2):  # a double click on Confirm
            http.post(url, data={"step": "accounts", "account": ibans}, timeout=10)
        page = http.get(url, timeout=10).text
        self.assertIn('content="activating"', page)
        final = complete_connect(url, session=http)
        customer_id = session["customer_id"]
        listed = self.assert_call_ok("GET", "/connections", {"customer_id": customer_id})["data"]
        self.assertEqual([c["id"] for c in listed], [query_of(final)["connection_id"]])

    def test_dutch_screens_follow_the_guide(self):
        body = {
            "data": {
                "customer_id": self.customer(),
                "consent": {"scopes": ["accounts", "transactions"]},
                "attempt": {"return_to": RETURN_TO, "locale": "nl"},
                "provider": {"code": "belfius_sandbox_be"},
            }
        }
        url = self.assert_call_ok("POST", "/connections/connect", body=body)["data"]["connect_url"]
        http = requests.Session()
        self.assertIn("Business", http.get(url, timeout=10).text)
        http.post(url, data={"step": "customer_type", "customer_type": "business"}, timeout=10)
        http.post(url, data={"step": "terms", "accept_terms": "1"}, timeout=10)
        wait = http.get(url, timeout=10).text
        self.assertIn("Sluit niet je scherm!", wait)
        self.assertIn('http-equiv="refresh"', wait)
        http.get(url + "/continue?step=wait", timeout=10)
        login = http.get(url, timeout=10).text
        self.assertIn("Kaartlezer &amp; bankkaart", login)
        http.post(url, data={"step": "login", "login_method": "itsme"}, timeout=10)
        self.assertIn("Bevestigen", http.get(url, timeout=10).text)

    def test_failing_bank_redirects_with_provider_unavailable(self):
        session = self.connect_session("fakebank_with_error_xf")
        params = query_of(complete_connect(session["connect_url"]))
        self.assertEqual(params["error_class"], "ProviderUnavailable")
        connection = self.assert_call_ok("GET", f"/connections/{params['connection_id']}")["data"]
        self.assertEqual(connection["status"], "inactive")
        self.assertEqual(connection["last_attempt"]["fail_error_class"], "ProviderUnavailable")

    def test_expired_connect_session_is_not_usable(self):
        session = self.connect_session()
        self.advance(advance_seconds=3601)
        page = requests.get(session["connect_url"], timeout=10)
        self.assertEqual(page.status_code, 410)
        self.assertIn('content="expired"', page.text)


class ReturnHintTest(SandboxCase):
    def test_the_redirect_carries_hints_only_when_asked(self):
        customer_id = self.customer()
        session = self.connect_session(customer_id=customer_id, hints=False)
        final = complete_connect(session["connect_url"])
        self.assertEqual(final, RETURN_TO)  # return_to as given, its own query kept
        cancelled = self.connect_session(customer_id=customer_id, hints=False)
        final = complete_connect(cancelled["connect_url"], cancel_at="login")
        self.assertEqual(final, RETURN_TO)
        # Only the error hints: a success comes back without connection_id.
        only_errors = self.connect_session(
            customer_id=customer_id, hints=False, data={"return_error_class": True}
        )
        self.assertEqual(complete_connect(only_errors["connect_url"]), RETURN_TO)
        failing = self.connect_session(
            "fakebank_with_error_xf", customer_id, False, {"return_error_class": True}
        )
        params = query_of(complete_connect(failing["connect_url"]))
        self.assertEqual(params["error_class"], "ProviderUnavailable")
        self.assertNotIn("connection_id", params)
        # Only the connection hint: a cancel comes back without error_class.
        only_id = self.connect_session(
            customer_id=customer_id, hints=False, data={"return_connection_id": True}
        )
        params = query_of(complete_connect(only_id["connect_url"], cancel_at="accounts"))
        self.assertEqual(params, {"state": "xyz", "db": "demo"})
        bad = self.client.call(
            "POST",
            "/connections/connect",
            body={
                "data": {
                    "customer_id": customer_id,
                    "consent": {"scopes": ["accounts", "transactions"]},
                    "attempt": {"return_to": RETURN_TO},
                    "return_connection_id": "yes please",
                }
            },
        )
        self.assert_error(bad, 400, "WrongRequestFormat")

    def test_the_connection_is_found_from_the_customer_alone(self):
        customer_id = self.customer()
        ids = []
        for number in range(3):
            fields = {"odoo_state": f"s{number}"}
            data = {"attempt": {"return_to": RETURN_TO, "custom_fields": fields}}
            session = self.connect_session(customer_id=customer_id, hints=False, data=data)
            self.assertEqual(complete_connect(session["connect_url"]), RETURN_TO)
            listed = self.assert_call_ok("GET", "/connections", {"customer_id": customer_id})
            listed = listed["data"]
            ids.append(listed[-1]["id"])
            attempt = listed[-1]["last_attempt"]
            self.assertEqual(attempt["custom_fields"], fields)
            self.assertEqual(attempt["created_at"], "2025-03-10T08:00:00Z")
            self.assertEqual(listed[-1]["created_at"], "2025-03-10T08:00:00Z")
        self.wait_fetches()
        first = self.assert_call_ok(
            "GET", "/connections", {"customer_id": customer_id, "per_page": 2}
        )
        self.assertEqual([c["id"] for c in first["data"]], ids[:2])
        self.assertEqual(first["meta"]["next_id"], ids[2])
        rest = self.assert_call_ok(
            "GET",
            "/connections",
            {"customer_id": customer_id, "per_page": 2, "from_id": first["meta"]["next_id"]},
        )
        self.assertEqual([c["id"] for c in rest["data"]], ids[2:])
        self.assertIsNone(rest["meta"]["next_id"])
        for connection in first["data"] + rest["data"]:
            for field in ("status", "last_success_at", "next_refresh_possible_at"):
                self.assertIn(field, connection)
            self.assertTrue(connection["last_attempt"]["finished"])
            self.assertTrue(connection["last_attempt"]["custom_fields"]["odoo_state"])


class InteractiveRefreshTest(SandboxCase):
    def refresh_session(self, connection_id, **data):
        body = {
            "data": {
                "attempt": {
                    "return_to": RETURN_TO,
                    "fetch_scopes": ["accounts", "transactions"],
                    "custom_fields": {"odoo_state": "refresh"},
                },
                **data,
            }
        }
        path = f"/connections/{connection_id}/refresh"
        return self.assert_call_ok("POST", path, body=body)["data"]

    def test_the_user_logs_in_at_the_bank_and_the_fetch_follows(self):
        connection_id = self.connect("fakebank_with_updates_xf")
        before, _pages = self.all_transactions(connection_id)
        consent_id = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        consent_id = consent_id["last_consent_id"]
        answer = self.refresh_session(connection_id, return_connection_id=True)
        self.assertEqual(answer["expires_at"], "2025-03-10T09:00:00Z")
        self.assertTrue(answer["connect_url"].startswith(self.server.url + "/connect/"))
        http = requests.Session()
        # The bank's screens only: no customer type, no terms, no accounts to pick.
        self.assertIn('content="login"', http.get(answer["connect_url"], timeout=10).text)
        final = complete_connect(answer["connect_url"], session=http)
        self.assertEqual(query_of(final)["connection_id"], connection_id)
        self.wait_fetches()
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["last_consent_id"], consent_id)
        consents = self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})["data"]
        self.assertEqual(len(consents), 1)
        attempt = connection["last_attempt"]
        self.assertTrue(attempt["finished"] and attempt["user_present"])
        self.assertEqual(attempt["custom_fields"], {"odoo_state": "refresh"})
        after, _pages = self.all_transactions(connection_id)
        self.assertEqual(len(after) - len(before), 6)

    def test_card_reader_put_and_no_hints_unless_asked(self):
        connection_id = self.connect()
        path = f"/connections/{connection_id}/refresh"
        body = {"data": {"attempt": {"return_to": RETURN_TO}}}
        answer = self.assert_call_ok("PUT", path, body=body)["data"]
        final = complete_connect(answer["connect_url"], login_method="card_reader")
        self.assertEqual(final, RETURN_TO)
        self.wait_fetches()
        attempt = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        attempt = attempt["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertIsNone(attempt["fail_error_class"])

    def test_leaving_the_bank_records_a_failed_attempt(self):
        connection_id = self.connect()
        answer = self.refresh_session(connection_id, return_error_class=True)
        params = query_of(complete_connect(answer["connect_url"], cancel_at="login"))
        self.assertEqual(params["error_class"], "ProviderAccessNotGranted")
        self.assertNotIn("connection_id", params)
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "active")
        self.assertEqual(connection["last_attempt"]["fail_error_class"], "ProviderAccessNotGranted")

    def test_a_refresh_needs_a_return_url(self):
        connection_id = self.connect()
        path = f"/connections/{connection_id}/refresh"
        missing = self.client.call("POST", path, body={"data": {"attempt": {}}})
        self.assert_error(missing, 400, "ReturnURLInvalid")


class ProviderScreenTest(SandboxCase):
    def offered(self, provider_filter):
        body = {
            "data": {
                "customer_id": self.customer(f"c{len(provider_filter)}{provider_filter}"),
                "consent": {"scopes": ["accounts", "transactions"]},
                "attempt": {"return_to": RETURN_TO},
                "provider": provider_filter,
            }
        }
        url = self.assert_call_ok("POST", "/connections/connect", body=body)["data"]["connect_url"]
        page = requests.get(url, timeout=10).text
        self.assertIn('content="provider"', page)
        return {code for code in PROVIDERS_BY_CODE if f'value="{code}"' in page}

    def test_the_widget_offers_the_banks_of_the_connect_filter(self):
        fake = {code for code in PROVIDERS_BY_CODE if code.endswith("_xf")}
        belgian = set(BE_DEMO_IBANS)
        self.assertEqual(self.offered({"country_code": "BE", "include_sandboxes": True}), belgian)
        self.assertEqual(self.offered({"country_code": "XF", "include_sandboxes": True}), fake)
        self.assertEqual(self.offered({"include_sandboxes": True}), belgian | fake)
        self.assertEqual(self.offered({}), belgian)

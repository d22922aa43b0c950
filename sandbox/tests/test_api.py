"""The sandbox's API: providers, customers, connections, consents, accounts, transactions
and their pages, the life of a connection over months (refresh limits, consent expiry,
reconnect, delete, pending transactions), and the faults a test can ask for."""

import datetime
import json
import time

import requests

from sandbox import BE_DEMO_IBANS, complete_connect
from sandbox.ledger import drafts_for_period
from sandbox.providers import PROVIDERS_BY_CODE
from sandbox.tests.common import (
    APP_ID,
    RETURN_TO,
    SECRET,
    SandboxCase,
    mod97_ok,
    query_of,
    sign_with_cryptography,
    structured_ok,
)


class EndpointTest(SandboxCase):
    def test_providers_list_belgian_banks_and_fake_ones_on_request(self):
        banks = self.assert_call_ok("GET", "/providers", {"country_code": "BE"})["data"]
        self.assertEqual({bank["code"] for bank in banks}, set(BE_DEMO_IBANS))
        for bank in banks:
            for field in ("code", "name", "country_code", "logo_url", "status", "mode"):
                self.assertIn(field, bank)
        by_code = {bank["code"]: bank for bank in banks}
        self.assertEqual(by_code["argenta_sandbox_be"]["max_consent_days"], 90)
        self.assertEqual(by_code["kbc_sandbox_be"]["max_consent_days"], 180)
        logo = requests.get(by_code["kbc_sandbox_be"]["logo_url"], timeout=10)
        self.assertEqual(logo.headers["Content-Type"], "image/svg+xml")
        self.assertIn("<svg", logo.text)
        # As at Salt Edge, a list filtered on BE holds no fake (XF) banks, even with
        # include_sandboxes; they come with country_code=XF, or with no country at all.
        params = {"country_code": "BE", "include_sandboxes": "true"}
        belgian = self.assert_call_ok("GET", "/providers", params)["data"]
        self.assertEqual({bank["code"] for bank in belgian}, set(BE_DEMO_IBANS))
        params = {"country_code": "XF", "include_sandboxes": "true"}
        fake = {bank["code"] for bank in self.assert_call_ok("GET", "/providers", params)["data"]}
        self.assertIn("fakebank_with_error_xf", fake)
        self.assertIn("fakebank_oauth_with_n_transactions_xf", fake)
        self.assertTrue(all(code.endswith("_xf") for code in fake), fake)
        hidden = self.assert_call_ok("GET", "/providers", {"country_code": "XF"})["data"]
        self.assertEqual(hidden, [])
        everything = self.assert_call_ok("GET", "/providers", {"include_sandboxes": "true"})["data"]
        self.assertEqual({bank["code"] for bank in everything}, fake | set(BE_DEMO_IBANS))

    def test_customers_are_unique_by_identifier(self):
        document = self.assert_call_ok("POST", "/customers", body={"data": {"identifier": "acme"}})
        data = document["data"]
        self.assertEqual(data["id"], data["customer_id"])
        self.assertTrue(data["id"].isdigit())
        self.assertEqual(data["identifier"], "acme")
        again = self.client.call("POST", "/customers", body={"data": {"identifier": "acme"}})
        self.assert_error(again, 409, "DuplicatedCustomer")
        empty = self.client.call("POST", "/customers", body={"data": {}})
        self.assert_error(empty, 400, "WrongRequestFormat")

    def test_unparseable_body_is_a_json_parse_error(self):
        url = self.server.api_url + "/customers"
        body = b"{not json"
        expires = int(time.time()) + 60
        message = f"{expires}|POST|{url}|".encode() + body
        headers = {
            "App-id": APP_ID,
            "Secret": SECRET,
            "Expires-at": str(expires),
            "Signature": sign_with_cryptography(self.client_key, message),
        }
        response = requests.post(url, data=body, headers=headers, timeout=10)
        self.assert_error(response, 400, "JsonParseError")

    def test_connect_checks_customer_provider_and_return_url(self):
        customer_id = self.customer()
        base = {
            "customer_id": customer_id,
            "consent": {"scopes": ["accounts", "transactions"]},
            "attempt": {"return_to": RETURN_TO},
            "provider": {"code": "kbc_sandbox_be"},
        }
        cases = (
            ({"customer_id": "999"}, 404, "CustomerNotFound"),
            ({"provider": {"code": "nobank_xx"}}, 404, "ProviderNotFound"),
            ({"attempt": {"return_to": "javascript:alert(1)"}}, 400, "ReturnURLInvalid"),
        )
        for change, status, error_class in cases:
            response = self.client.call(
                "POST", "/connections/connect", body={"data": {**base, **change}}
            )
            self.assert_error(response, status, error_class)
        session = self.assert_call_ok("POST", "/connections/connect", body={"data": base})["data"]
        self.assertTrue(session["connect_url"].startswith(self.server.url + "/connect/"))
        self.assertEqual(session["expires_at"], "2025-03-10T09:00:00Z")

    def test_connection_consent_accounts_and_transactions_after_the_widget(self):
        connection_id = self.connect()
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "active")
        self.assertEqual(connection["provider_code"], "kbc_sandbox_be")
        self.assertEqual(connection["country_code"], "BE")
        self.assertTrue(connection["last_attempt"]["finished"])
        self.assertIsNone(connection["last_attempt"]["fail_error_class"])
        consents = self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})["data"]
        self.assertEqual(len(consents), 1)
        self.assertEqual(consents[0]["id"], connection["last_consent_id"])
        self.assertEqual(consents[0]["period_days"], 180)
        self.assertEqual(consents[0]["expires_at"], "2025-09-06T08:00:00Z")
        accounts = self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})["data"]
        self.assertEqual(
            [account["extra"]["iban"] for account in accounts],
            list(BE_DEMO_IBANS["kbc_sandbox_be"]),
        )
        self.assertTrue(all(account["currency_code"] == "EUR" for account in accounts))
        posted, _pages = self.all_transactions(connection_id)
        self.assertGreater(len(posted), 50)
        self.assertEqual([t["id"] for t in posted], sorted(t["id"] for t in posted))
        dates = {t["made_on"] for t in posted}
        self.assertGreaterEqual(min(dates), "2024-12-11")
        self.assertLessEqual(max(dates), "2025-03-10")
        self.assertTrue(any(t["amount"] > 0 for t in posted))
        self.assertTrue(any(t["amount"] < 0 for t in posted))
        self.assertTrue(all(t["status"] == "posted" and t["duplicated"] is False for t in posted))
        self.assertTrue(all(t["extra"].get("posting_date") for t in posted))
        structured = [
            t["extra"]["information"]
            for t in posted
            if t["extra"].get("information", "").startswith("+++")
        ]
        self.assertTrue(structured)
        self.assertTrue(all(structured_ok(text) for text in structured), structured)
        counterparties = [
            t["extra"]["account_number"] for t in posted if "account_number" in t["extra"]
        ]
        self.assertTrue(counterparties and all(mod97_ok(iban) for iban in counterparties))
        named = [t for t in posted if t["amount"] > 0 and "payer" in t["extra"]]
        self.assertTrue(named and all(t["extra"]["payee"] == "Demo Company BV" for t in named))
        foreign = [t for t in posted if t["extra"].get("original_currency_code")]
        self.assertTrue(foreign)
        self.assertTrue({t["extra"]["original_currency_code"] for t in foreign} <= {"USD", "GBP"})
        pending = self.assert_call_ok(
            "GET", "/transactions", {"connection_id": connection_id, "pending": "true"}
        )["data"]
        self.assertTrue(all(t["status"] == "pending" for t in pending))
        self.assertTrue(all("posting_date" not in t["extra"] for t in pending))
        only_savings = self.assert_call_ok(
            "GET",
            "/transactions",
            {"connection_id": connection_id, "account_id": accounts[1]["id"]},
        )["data"]
        self.assertTrue(only_savings)
        self.assertTrue(all(t["account_id"] == accounts[1]["id"] for t in only_savings))

    def test_balance_moves_by_exactly_the_new_posted_transactions(self):
        connection_id = self.connect()
        before = self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})["data"]
        before = before[0]
        added = self.control(
            "POST", f"/connections/{connection_id}/add_transactions", {"count": 4}
        )["data"]
        self.assertEqual(len(added), 4)
        after = self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})["data"][0]
        delta = round(after["balance"] - before["balance"], 2)
        self.assertAlmostEqual(delta, round(sum(t["amount"] for t in added), 2), places=2)

    def test_added_transactions_move_the_connections_updated_at_even_on_a_frozen_clock(self):
        customer_id = self.customer()
        connection_id = self.connect(customer_id=customer_id)
        self.control("POST", "/clock", {"freeze": True})
        path = f"/connections/{connection_id}"
        before = self.assert_call_ok("GET", path)["data"]["updated_at"]
        self.control("POST", f"/connections/{connection_id}/add_transactions", {"count": 1})
        once = self.assert_call_ok("GET", path)["data"]["updated_at"]
        self.control("POST", f"/connections/{connection_id}/add_transactions", {"count": 1})
        twice = self.assert_call_ok("GET", path)["data"]["updated_at"]
        self.assertLess(before, once)
        self.assertLess(once, twice)
        listed = self.assert_call_ok("GET", "/connections", {"customer_id": customer_id})
        entry = next(c for c in listed["data"] if c["id"] == connection_id)
        self.assertEqual(entry, self.assert_call_ok("GET", path)["data"])

    def test_unknown_ids_and_missing_parameters(self):
        self.assert_error(self.client.call("GET", "/connections/12345"), 404, "ConnectionNotFound")
        self.assert_error(self.client.call("GET", "/transactions"), 400, "WrongRequestFormat")
        connection_id = self.connect()
        bad_account = self.client.call(
            "GET", "/transactions", {"connection_id": connection_id, "account_id": "1"}
        )
        self.assert_error(bad_account, 404, "AccountNotFound")
        self.assert_error(self.client.call("GET", "/nothing/here"), 404, "RouteNotFound")

    def test_pagination_over_three_pages_with_an_inclusive_from_id(self):
        connection_id = self.connect("fakebank_oauth_with_n_transactions_xf")
        first = self.assert_call_ok("GET", "/transactions", {"connection_id": connection_id})
        self.assertEqual(len(first["data"]), 100)
        next_id = first["meta"]["next_id"]
        self.assertIn(f"from_id={next_id}", first["meta"]["next_page"])
        second = self.assert_call_ok(
            "GET", "/transactions", {"connection_id": connection_id, "from_id": next_id}
        )
        self.assertEqual(second["data"][0]["id"], next_id)
        items, pages = self.all_transactions(connection_id)
        self.assertEqual(pages, 3)
        self.assertEqual(len(items), 250)
        self.assertEqual(len({t["id"] for t in items}), 250)
        self.assertEqual([int(t["id"]) for t in items], sorted(int(t["id"]) for t in items))

    def test_argenta_consent_is_clamped_to_its_90_days(self):
        session = self.connect_session("argenta_sandbox_be", period_days=180)
        connection_id = query_of(complete_connect(session["connect_url"]))["connection_id"]
        # The consent exists as soon as the user confirms, before the fetch ends.
        consent = self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})["data"]
        consent = consent[0]
        self.assertEqual(consent["period_days"], 90)
        self.assertEqual(consent["expires_at"], "2025-06-08T08:00:00Z")


class LifecycleTest(SandboxCase):
    def test_connections_a_month_apart_tell_one_continuous_history(self):
        # A bank's balance does not jump between two consents: the later connection's
        # balance is the earlier one's plus the days between (a reconnect after expiry).
        first = self.connect()
        early = self.assert_call_ok("GET", "/accounts", {"connection_id": first})["data"][0]
        self.advance(advance_days=30)
        second = self.connect(customer_id=self.customer("company-2"))
        late = self.assert_call_ok("GET", "/accounts", {"connection_id": second})["data"][0]
        self.assertEqual(early["extra"]["iban"], late["extra"]["iban"])
        provider = PROVIDERS_BY_CODE["kbc_sandbox_be"]
        template = next(a for a in provider.accounts if a.iban == late["extra"]["iban"])
        # This bank books a day's transactions the next day: the first connection's
        # balance lacked that Monday's, the second one's lacks its own today's.
        monday = datetime.date(2025, 3, 10)
        between = drafts_for_period(
            provider,
            template,
            late["extra"]["holder_name"],
            monday,
            monday + datetime.timedelta(days=29),
        )
        self.assertTrue(between)
        self.assertAlmostEqual(
            late["balance"], early["balance"] + sum(d["amount"] for d in between), places=2
        )
        # And the same day's transactions are the same under the new ids.
        day = "2025-03-05"
        old = self.all_transactions(first)[0]
        new = self.all_transactions(second)[0]
        same_day = sorted((t["amount"], t["description"]) for t in old if t["made_on"] == day)
        self.assertTrue(same_day)
        self.assertEqual(
            same_day, sorted((t["amount"], t["description"]) for t in new if t["made_on"] == day)
        )

    def test_refresh_too_soon_is_refused_with_the_next_possible_time(self):
        connection_id = self.connect()
        error = self.refresh_refused(connection_id, 406, "ConnectionCannotBeRefreshed")
        self.assertEqual(error["next_refresh_possible_at"], "2025-03-10T08:05:00Z")
        self.advance(advance_seconds=301)
        refreshed = self.background_refresh(connection_id)
        self.assertEqual(refreshed["next_refresh_possible_at"], "2025-03-10T08:10:01Z")

    def test_four_background_refreshes_a_day_then_the_limit(self):
        connection_id = self.connect()
        for _refresh in range(4):
            self.advance(advance_seconds=301)
            self.background_refresh(connection_id)
        self.advance(advance_seconds=301)
        error = self.refresh_refused(connection_id, 406, "BackgroundFetchLimitExceeded")
        self.assertEqual(error["next_refresh_possible_at"], "2025-03-11T00:00:00Z")
        self.advance(advance_days=1)
        self.background_refresh(connection_id)

    def test_background_refresh_answers_the_connection_at_once_and_fetches_after(self):
        connection_id = self.connect()
        self.advance(advance_seconds=301)
        answer = self.background_refresh(connection_id, wait=False)
        self.assertEqual(answer["id"], connection_id)
        self.assertEqual(answer["status"], "active")
        attempt = answer["last_attempt"]
        self.assertFalse(attempt["finished"])
        self.assertFalse(attempt["user_present"])
        self.assertEqual([stage["name"] for stage in attempt["stages"]], ["start", "connect"])
        self.wait_fetches()
        attempt = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        attempt = attempt["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertEqual(attempt["success_at"], "2025-03-10T08:05:01Z")
        # PUT is accepted too, with the same meaning.
        self.advance(advance_seconds=301)
        body = {"data": {"attempt": {"fetch_scopes": ["accounts", "transactions"]}}}
        path = f"/connections/{connection_id}/background_refresh"
        self.assert_call_ok("PUT", path, body=body)
        self.wait_fetches()

    def test_consent_expiry_blocks_refresh_accounts_and_transactions(self):
        connection_id = self.connect()
        self.advance(advance_days=181)
        self.refresh_refused(connection_id, 406, "AispConsentExpired")
        for method, path, params in (
            ("GET", "/accounts", {"connection_id": connection_id}),
            ("GET", "/transactions", {"connection_id": connection_id}),
        ):
            self.assert_error(self.client.call(method, path, params), 406, "AispConsentExpired")
        body = {"data": {"attempt": {"return_to": RETURN_TO}}}
        interactive = self.client.call("POST", f"/connections/{connection_id}/refresh", body=body)
        self.assert_error(interactive, 406, "AispConsentExpired")
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "inactive")
        self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})

    def test_reconnect_keeps_the_connection_and_makes_a_new_consent(self):
        connection_id = self.connect()
        old = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.advance(advance_days=170)
        body = {
            "data": {
                "consent": {"scopes": ["accounts", "transactions"]},
                "attempt": {"return_to": RETURN_TO},
                "return_connection_id": True,
            }
        }
        answer = self.assert_call_ok("POST", f"/connections/{connection_id}/reconnect", body=body)
        final = complete_connect(answer["data"]["connect_url"])
        self.assertEqual(query_of(final)["connection_id"], connection_id)
        new = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertNotEqual(new["last_consent_id"], old["last_consent_id"])
        consents = self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})["data"]
        self.assertEqual(len(consents), 2)
        latest = next(c for c in consents if c["id"] == new["last_consent_id"])
        self.assertEqual(latest["expires_at"], "2026-02-23T08:00:00Z")
        self.wait_fetches()
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertTrue(connection["last_attempt"]["finished"])
        self.advance(advance_days=20)  # past the first consent's end, within the new one
        self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})

    def test_delete_revokes_the_consent(self):
        connection_id = self.connect()
        removed = self.assert_call_ok("DELETE", f"/connections/{connection_id}")["data"]
        self.assertTrue(removed["removed"])
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "disabled")
        consent = self.assert_call_ok("GET", "/consents", {"connection_id": connection_id})["data"]
        consent = consent[0]
        self.assertIsNotNone(consent["revoked_at"])
        accounts = self.client.call("GET", "/accounts", {"connection_id": connection_id})
        self.assert_error(accounts, 406, "AispConsentRevoked")
        self.advance(advance_seconds=400)
        self.refresh_refused(connection_id, 406, "AispConsentRevoked")

    def test_pending_transactions_are_replaced_by_posted_ones_with_new_ids(self):
        connection_id = self.connect("fakebank_oauth_with_pending_xf")
        query = {"connection_id": connection_id, "pending": "true"}
        pending = self.assert_call_ok("GET", "/transactions", query)["data"]
        self.assertTrue(pending)
        self.advance(advance_days=3)
        self.background_refresh(connection_id)
        still_pending = {
            t["id"] for t in self.assert_call_ok("GET", "/transactions", query)["data"]
        }
        self.assertFalse({t["id"] for t in pending} & still_pending)
        posted, _pages = self.all_transactions(connection_id)
        posted_ids = {t["id"] for t in posted}
        self.assertFalse({t["id"] for t in pending} & posted_ids)
        for old in pending:
            match = [
                t
                for t in posted
                if (t["description"], t["amount"], t["made_on"])
                == (old["description"], old["amount"], old["made_on"])
            ]
            self.assertEqual(len(match), 1, old)
            self.assertEqual(match[0]["extra"]["posting_date"], "2025-03-13")
            self.assertGreater(int(match[0]["id"]), int(old["id"]))

    def test_bank_with_updates_adds_transactions_on_every_refresh(self):
        connection_id = self.connect("fakebank_with_updates_xf")
        before, _pages = self.all_transactions(connection_id)
        self.advance(advance_seconds=301)
        self.background_refresh(connection_id)
        after, _pages = self.all_transactions(connection_id)
        self.assertEqual(len(after) - len(before), 6)  # three on each of the two accounts

    def test_the_same_history_however_often_it_is_fetched(self):
        connection_id = self.connect()
        before, _pages = self.all_transactions(connection_id)
        balances = self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})["data"]
        for _refresh in range(2):
            self.advance(advance_seconds=301)
            self.background_refresh(connection_id)
        after, _pages = self.all_transactions(connection_id)
        self.assertEqual(after, before)
        again = self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})["data"]
        self.assertEqual([a["balance"] for a in again], [a["balance"] for a in balances])

    def test_a_refresh_failing_at_the_bank_is_recorded_on_the_last_attempt(self):
        connection_id = self.connect()
        failure = {"error_class": "ProviderError", "error_message": "Bank down"}
        self.control("POST", f"/connections/{connection_id}/fail_next", failure)
        self.advance(advance_seconds=301)
        self.background_refresh(connection_id)
        connection = self.assert_call_ok("GET", f"/connections/{connection_id}")["data"]
        attempt = connection["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertEqual(attempt["fail_error_class"], "ProviderError")
        self.assertEqual(attempt["fail_message"], "Bank down")
        # A bank that fails once does not break the connection or its consent.
        self.assertEqual(connection["status"], "active")
        self.assert_call_ok("GET", "/accounts", {"connection_id": connection_id})


class FaultTest(SandboxCase):
    def fault(self, **fault):
        self.control("POST", "/faults", fault)

    def test_429_with_retry_after(self):
        self.fault(kind="429", count=2, retry_after=7)
        for _try in range(2):
            response = self.client.call("GET", "/providers")
            self.assert_error(response, 429, "TooManyRequests")
            self.assertEqual(response.headers["Retry-After"], "7")
        self.assert_call_ok("GET", "/providers")

    def test_500_with_an_error_body(self):
        self.fault(kind="500")
        self.assert_error(self.client.call("GET", "/providers"), 500, "InternalServerError")
        self.assert_call_ok("GET", "/providers")

    def test_timeout_delays_the_answer(self):
        self.fault(kind="timeout", delay=1.0)
        with self.assertRaises(requests.exceptions.ReadTimeout):
            requests.get(self.server.api_url + "/providers", timeout=0.3)
        self.assert_call_ok("GET", "/providers")

    def test_garbage_and_truncated_bodies(self):
        self.fault(kind="garbage")
        garbage = self.client.call("GET", "/providers")
        self.assertEqual(garbage.status_code, 200)
        with self.assertRaises(ValueError):
            garbage.json()
        self.fault(kind="truncated")
        truncated = self.client.call("GET", "/providers", {"country_code": "BE"})
        self.assertEqual(truncated.status_code, 200)
        with self.assertRaises(ValueError):
            json.loads(truncated.text)
        whole = self.client.call("GET", "/providers", {"country_code": "BE"})
        self.assertTrue(whole.text.startswith(truncated.text))
        self.assertGreater(len(whole.text), len(truncated.text))

    def test_a_fault_only_hits_its_path_prefix(self):
        self.fault(kind="500", path_prefix="/transactions")
        self.assert_call_ok("GET", "/providers")
        response = self.client.call("GET", "/transactions", {"connection_id": "1"})
        self.assert_error(response, 500, "InternalServerError")
        log = self.control("GET", "/requests")["data"]
        self.assertEqual([entry["fault"] for entry in log[-2:]], [None, "500"])

    def test_page_cycle_points_a_pages_next_id_back_to_the_page_before(self):
        connection_id = self.connect("fakebank_oauth_with_n_transactions_xf")
        query = {"connection_id": connection_id}
        pages = [self.assert_call_ok("GET", "/transactions", query)]
        while pages[-1]["meta"]["next_id"]:
            from_id = pages[-1]["meta"]["next_id"]
            pages.append(self.assert_call_ok("GET", "/transactions", {**query, "from_id": from_id}))
        starts = [page["data"][0]["id"] for page in pages]
        self.assertEqual(len(starts), 3)

        # Page one goes through; page three, the last, points back to page two; then the
        # fault is spent and page three is the last again.
        self.fault(kind="page_cycle", path_prefix="/transactions", after=1)
        self.assertEqual(self.assert_call_ok("GET", "/transactions", query), pages[0])
        third = {**query, "from_id": starts[2]}
        cycled = self.assert_call_ok("GET", "/transactions", third)
        self.assertEqual(cycled["data"], pages[2]["data"])
        self.assertEqual(cycled["meta"]["next_id"], starts[1])
        self.assertIn(f"from_id={starts[1]}", cycled["meta"]["next_page"])
        self.assertEqual(self.assert_call_ok("GET", "/transactions", third), pages[2])
        log = self.control("GET", "/requests?limit=3")["data"]
        self.assertEqual([entry["fault"] for entry in log], [None, "page_cycle", None])

        # On the first page it points to the first page itself.
        self.fault(kind="page_cycle", path_prefix="/transactions")
        first = self.assert_call_ok("GET", "/transactions", query)
        self.assertEqual(first["meta"]["next_id"], starts[0])

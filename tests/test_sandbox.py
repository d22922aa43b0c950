"""The Salt Edge sandbox over real sockets: signatures, endpoints, widget, limits, faults.

Plain unittest classes (no Odoo): every test starts from a reset sandbox whose clock shows
Monday 10 March 2025, 08:00 UTC, and talks to it with ``requests`` like a client would.
"""

import base64
import datetime
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..sandbox import BE_DEMO_IBANS, SandboxServer, complete_connect

APP_ID = "test-app"
SECRET = "test-secret"
MONDAY_MORNING = "2025-03-10T08:00:00Z"
RETURN_TO = "https://odoo.example.com/account_bank_connection/return?state=xyz&db=demo"
SANDBOX_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sandbox")


def new_key():
    return rsa.generate_private_key(65537, 2048, default_backend())


def private_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign_with_cryptography(key, message):
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def mod97_ok(iban):
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def structured_ok(text):
    digits = text.strip("+").replace("/", "")
    base, check = int(digits[:10]), int(digits[10:])
    return len(digits) == 12 and (base % 97 or 97) == check


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


class Client:
    """A minimal signed Salt Edge client, written from the signature guide for these tests."""

    def __init__(self, server, key=None, app_id=APP_ID, secret=SECRET, signer=None):
        self.server, self.key, self.app_id, self.secret = server, key, app_id, secret
        self.signer = signer or sign_with_cryptography

    def call(self, method, path, params=None, body=None, expires_at=None, headers=None):
        url = self.server.api_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        raw = json.dumps(body).encode() if body is not None else b""
        sent = {
            "App-id": self.app_id,
            "Secret": self.secret,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if self.key is not None:
            expires = expires_at if expires_at is not None else int(time.time()) + 60
            message = f"{expires}|{method.upper()}|{url}|".encode() + raw
            sent.update({"Expires-at": str(expires), "Signature": self.signer(self.key, message)})
        sent.update(headers or {})
        return requests.request(method, url, data=raw or None, headers=sent, timeout=30)

    def ok(self, method, path, params=None, body=None):
        response = self.call(method, path, params, body)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def error(self, response, status, error_class):
        assert response.status_code == status, (response.status_code, response.text)
        error = response.json()["error"]
        assert error["class"] == error_class, error
        assert error["message"] and error["documentation_url"], error
        return error


class CallbackReceiver:
    """A tiny HTTP server that keeps every POST it receives."""

    def __init__(self):
        self.received = []
        self.event = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((self.path, dict(self.headers), body))
                receiver.event.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate(self.received):
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SandboxCase(unittest.TestCase):
    """A sandbox like a live Salt Edge app: every request must be signed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client_key = new_key()
        cls.server = SandboxServer(
            app_id=APP_ID,
            secret=SECRET,
            client_public_key_pem=public_pem(cls.client_key),
            page_size=100,
            n_transactions=250,
        ).start()
        cls.client = Client(cls.server, cls.client_key)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.server.callback_url = None
        self.control("POST", "/reset")
        self.control("POST", "/clock", {"now": MONDAY_MORNING, "freeze": True})

    def control(self, method, path, body=None):
        response = requests.request(
            method, f"{self.server.url}/sandbox{path}", json=body, timeout=30
        )
        self.assertLess(response.status_code, 300, response.text)
        return response.json()

    def advance(self, **kwargs):
        return self.control("POST", "/clock", kwargs)["data"]

    def customer(self, identifier="company-1"):
        data = self.client.ok("POST", "/customers", body={"data": {"identifier": identifier}})
        return data["data"]["id"]

    def connect_session(self, provider="kbc_sandbox_be", customer_id=None, **consent):
        body = {
            "data": {
                "customer_id": customer_id or self.customer(),
                "consent": {"scopes": ["accounts", "transactions"], **consent},
                "attempt": {"return_to": RETURN_TO, "locale": "en"},
                "provider": {"code": provider, "include_sandboxes": True},
            }
        }
        return self.client.ok("POST", "/connections/connect", body=body)["data"]

    def connect(self, provider="kbc_sandbox_be", **kwargs):
        """A connection made through the widget; returns its id."""
        session = self.connect_session(provider)
        final = complete_connect(session["connect_url"], **kwargs)
        self.assertTrue(final.startswith(RETURN_TO.split("?")[0]), final)
        return query_of(final)["connection_id"]

    def all_transactions(self, connection_id, **params):
        items, from_id, pages = [], None, 0
        while True:
            query = {"connection_id": connection_id, **params}
            if from_id:
                query["from_id"] = from_id
            document = self.client.ok("GET", "/transactions", query)
            items += document["data"]
            pages += 1
            from_id = document["meta"]["next_id"]
            if from_id is None:
                return items, pages


class SignatureTest(SandboxCase):
    def test_signed_request_is_accepted_and_logged_without_the_secret(self):
        document = self.client.ok("GET", "/providers", {"country_code": "BE"})
        self.assertEqual(len(document["data"]), 5)
        log = self.control("GET", "/requests?limit=1")["data"]
        self.assertEqual(log[-1]["signature"], "valid")
        self.assertTrue(log[-1]["signed"])
        self.assertNotIn(SECRET, json.dumps(log))

    @unittest.skipUnless(shutil.which("openssl"), "no openssl CLI")
    def test_signature_made_by_the_openssl_cli_is_accepted(self):
        with tempfile.TemporaryDirectory() as folder:
            key_file = os.path.join(folder, "key.pem")
            with open(key_file, "wb") as handle:
                handle.write(private_pem(self.client_key))

            def openssl_signer(_key, message):
                output = subprocess.run(
                    ["openssl", "dgst", "-sha256", "-sign", key_file],
                    input=message,
                    capture_output=True,
                    check=True,
                ).stdout
                return base64.b64encode(output).decode()

            client = Client(self.server, self.client_key, signer=openssl_signer)
            created = client.call("POST", "/customers", body={"data": {"identifier": "cli"}})
            self.assertEqual(created.status_code, 200, created.text)
            listed = client.call(
                "GET", "/providers", {"country_code": "BE", "include_sandboxes": "true"}
            )
            self.assertEqual(listed.status_code, 200, listed.text)

    def test_wrong_signature_is_refused(self):
        other = Client(self.server, new_key())
        self.client.error(other.call("GET", "/providers"), 401, "SignatureNotMatch")
        # A signature of another URL (the query in another order) does not match either.
        url = self.server.api_url + "/providers?include_sandboxes=true&country_code=BE"
        expires = int(time.time()) + 60
        signature = sign_with_cryptography(self.client_key, f"{expires}|GET|{url}|".encode())
        headers = {"App-id": APP_ID, "Secret": SECRET, "Expires-at": str(expires)}
        headers["Signature"] = signature
        reordered = self.server.api_url + "/providers?country_code=BE&include_sandboxes=true"
        response = requests.get(reordered, headers=headers, timeout=10)
        self.client.error(response, 401, "SignatureNotMatch")
        self.assertEqual(requests.get(url, headers=headers, timeout=10).status_code, 200)

    def test_expired_or_far_future_expires_at_is_refused(self):
        past = self.client.call("GET", "/providers", expires_at=int(time.time()) - 10)
        self.client.error(past, 400, "RequestExpired")
        ahead = self.client.call("GET", "/providers", expires_at=int(time.time()) + 7200)
        self.client.error(ahead, 400, "ExpiresAtInvalid")
        garbled = self.client.call("GET", "/providers", headers={"Expires-at": "soon"})
        self.client.error(garbled, 400, "ExpiresAtInvalid")

    def test_a_float_expires_at_as_salt_edges_own_example_sends(self):
        expires = f"{time.time() + 60:.2f}"  # like "1764442800.25"
        self.assertIn(".", expires)
        created = self.client.call(
            "POST", "/customers", body={"data": {"identifier": "f"}}, expires_at=expires
        )
        self.assertEqual(created.status_code, 200, created.text)
        self.assertEqual(self.control("GET", "/requests?limit=1")["data"][0]["signature"], "valid")
        precise = self.client.call("GET", "/providers", expires_at=time.time() + 60)
        self.assertEqual(precise.status_code, 200, precise.text)
        # The float is checked like an integer would be.
        past = self.client.call("GET", "/providers", expires_at=time.time() - 1.5)
        self.client.error(past, 400, "RequestExpired")
        ahead = self.client.call("GET", "/providers", expires_at=time.time() + 3700.5)
        self.client.error(ahead, 400, "ExpiresAtInvalid")
        for garbled in ("nan", "inf"):
            response = self.client.call("GET", "/providers", expires_at=garbled)
            self.client.error(response, 400, "ExpiresAtInvalid")
        # The signed string holds the header as sent: the same time written otherwise fails.
        url = self.server.api_url + "/providers"
        whole = int(time.time()) + 60
        signature = sign_with_cryptography(self.client_key, f"{whole}|GET|{url}|".encode())
        headers = {"App-id": APP_ID, "Secret": SECRET, "Signature": signature}
        headers["Expires-at"] = f"{whole}.0"
        response = requests.get(url, headers=headers, timeout=10)
        self.client.error(response, 401, "SignatureNotMatch")

    def test_a_trailing_slash_is_the_same_path_and_is_signed_as_sent(self):
        created = self.client.call("POST", "/customers/", body={"data": {"identifier": "slash"}})
        self.assertEqual(created.status_code, 200, created.text)
        customer_id = created.json()["data"]["id"]
        shown = self.client.ok("GET", f"/customers/{customer_id}/")["data"]
        self.assertEqual(shown["identifier"], "slash")
        listed = self.client.ok("GET", "/providers/", {"country_code": "BE"})["data"]
        self.assertEqual(len(listed), 5)
        # A signature over the URL without the slash does not sign the URL with it.
        url = self.server.api_url + "/customers"
        expires = int(time.time()) + 60
        signature = sign_with_cryptography(self.client_key, f"{expires}|GET|{url}|".encode())
        headers = {"App-id": APP_ID, "Secret": SECRET, "Expires-at": str(expires)}
        headers["Signature"] = signature
        response = requests.get(url + "/", headers=headers, timeout=10)
        self.client.error(response, 401, "SignatureNotMatch")
        self.assertEqual(requests.get(url, headers=headers, timeout=10).status_code, 200)

    def test_missing_signature_or_expires_at_is_refused_for_a_live_app(self):
        unsigned = Client(self.server)
        self.client.error(unsigned.call("GET", "/providers"), 400, "MissingSignature")
        response = unsigned.call("GET", "/providers", headers={"Signature": "abc"})
        self.client.error(response, 400, "MissingExpiresAt")

    def test_wrong_credentials_are_refused(self):
        wrong_secret = Client(self.server, self.client_key, secret="nope")
        self.client.error(wrong_secret.call("GET", "/providers"), 401, "WrongSecret")
        wrong_app = Client(self.server, self.client_key, app_id="someone-else")
        self.client.error(wrong_app.call("GET", "/providers"), 401, "ApiKeyNotFound")


class TestAppModeTest(unittest.TestCase):
    """Without a client key the sandbox is a test app: signatures only checked if sent."""

    def test_unsigned_requests_pass_and_a_sent_expires_at_is_still_checked(self):
        with SandboxServer(app_id=APP_ID, secret=SECRET) as server:
            client = Client(server)
            self.assertEqual(client.call("GET", "/providers").status_code, 200)
            headers = {"Signature": "c2ln", "Expires-at": str(int(time.time()) - 5)}
            client.error(client.call("GET", "/providers", headers=headers), 400, "RequestExpired")


class EndpointTest(SandboxCase):
    def test_providers_list_belgian_banks_and_fake_ones_on_request(self):
        banks = self.client.ok("GET", "/providers", {"country_code": "BE"})["data"]
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
        belgian = self.client.ok("GET", "/providers", params)["data"]
        self.assertEqual({bank["code"] for bank in belgian}, set(BE_DEMO_IBANS))
        params = {"country_code": "XF", "include_sandboxes": "true"}
        fake = {bank["code"] for bank in self.client.ok("GET", "/providers", params)["data"]}
        self.assertIn("fakebank_with_error_xf", fake)
        self.assertIn("fakebank_oauth_with_n_transactions_xf", fake)
        self.assertTrue(all(code.endswith("_xf") for code in fake), fake)
        hidden = self.client.ok("GET", "/providers", {"country_code": "XF"})["data"]
        self.assertEqual(hidden, [])
        everything = self.client.ok("GET", "/providers", {"include_sandboxes": "true"})["data"]
        self.assertEqual({bank["code"] for bank in everything}, fake | set(BE_DEMO_IBANS))

    def test_customers_are_unique_by_identifier(self):
        document = self.client.ok("POST", "/customers", body={"data": {"identifier": "acme"}})
        data = document["data"]
        self.assertEqual(data["id"], data["customer_id"])
        self.assertTrue(data["id"].isdigit())
        self.assertEqual(data["identifier"], "acme")
        again = self.client.call("POST", "/customers", body={"data": {"identifier": "acme"}})
        self.client.error(again, 409, "DuplicatedCustomer")
        empty = self.client.call("POST", "/customers", body={"data": {}})
        self.client.error(empty, 400, "WrongRequestFormat")

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
        self.client.error(response, 400, "JsonParseError")

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
            self.client.error(response, status, error_class)
        session = self.client.ok("POST", "/connections/connect", body={"data": base})["data"]
        self.assertTrue(session["connect_url"].startswith(self.server.url + "/connect/"))
        self.assertEqual(session["expires_at"], "2025-03-10T09:00:00Z")

    def test_connection_consent_accounts_and_transactions_after_the_widget(self):
        connection_id = self.connect()
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "active")
        self.assertEqual(connection["provider_code"], "kbc_sandbox_be")
        self.assertEqual(connection["country_code"], "BE")
        self.assertTrue(connection["last_attempt"]["finished"])
        self.assertIsNone(connection["last_attempt"]["fail_error_class"])
        consents = self.client.ok("GET", "/consents", {"connection_id": connection_id})["data"]
        self.assertEqual(len(consents), 1)
        self.assertEqual(consents[0]["id"], connection["last_consent_id"])
        self.assertEqual(consents[0]["period_days"], 180)
        self.assertEqual(consents[0]["expires_at"], "2025-09-06T08:00:00Z")
        accounts = self.client.ok("GET", "/accounts", {"connection_id": connection_id})["data"]
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
        pending = self.client.ok(
            "GET", "/transactions", {"connection_id": connection_id, "pending": "true"}
        )["data"]
        self.assertTrue(all(t["status"] == "pending" for t in pending))
        self.assertTrue(all("posting_date" not in t["extra"] for t in pending))
        only_savings = self.client.ok(
            "GET",
            "/transactions",
            {"connection_id": connection_id, "account_id": accounts[1]["id"]},
        )["data"]
        self.assertTrue(only_savings)
        self.assertTrue(all(t["account_id"] == accounts[1]["id"] for t in only_savings))

    def test_balance_moves_by_exactly_the_new_posted_transactions(self):
        connection_id = self.connect()
        before = self.client.ok("GET", "/accounts", {"connection_id": connection_id})["data"][0]
        added = self.control(
            "POST", f"/connections/{connection_id}/add_transactions", {"count": 4}
        )["data"]
        self.assertEqual(len(added), 4)
        after = self.client.ok("GET", "/accounts", {"connection_id": connection_id})["data"][0]
        delta = round(after["balance"] - before["balance"], 2)
        self.assertAlmostEqual(delta, round(sum(t["amount"] for t in added), 2), places=2)

    def test_unknown_ids_and_missing_parameters(self):
        self.client.error(self.client.call("GET", "/connections/12345"), 404, "ConnectionNotFound")
        self.client.error(self.client.call("GET", "/transactions"), 400, "WrongRequestFormat")
        connection_id = self.connect()
        bad_account = self.client.call(
            "GET", "/transactions", {"connection_id": connection_id, "account_id": "1"}
        )
        self.client.error(bad_account, 404, "AccountNotFound")
        self.client.error(self.client.call("GET", "/nothing/here"), 404, "RouteNotFound")

    def test_pagination_over_three_pages_with_an_inclusive_from_id(self):
        connection_id = self.connect("fakebank_oauth_with_n_transactions_xf")
        first = self.client.ok("GET", "/transactions", {"connection_id": connection_id})
        self.assertEqual(len(first["data"]), 100)
        next_id = first["meta"]["next_id"]
        self.assertIn(f"from_id={next_id}", first["meta"]["next_page"])
        second = self.client.ok(
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
        consent = self.client.ok("GET", "/consents", {"connection_id": connection_id})["data"][0]
        self.assertEqual(consent["period_days"], 90)
        self.assertEqual(consent["expires_at"], "2025-06-08T08:00:00Z")


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
        accounts = self.client.ok(
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
        listed = self.client.ok("GET", "/connections", {"customer_id": customer_id})
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
        listed = self.client.ok("GET", "/connections", {"customer_id": customer_id})["data"]
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
        url = self.client.ok("POST", "/connections/connect", body=body)["data"]["connect_url"]
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
        connection = self.client.ok("GET", f"/connections/{params['connection_id']}")["data"]
        self.assertEqual(connection["status"], "inactive")
        self.assertEqual(connection["last_attempt"]["fail_error_class"], "ProviderUnavailable")

    def test_expired_connect_session_is_not_usable(self):
        session = self.connect_session()
        self.advance(advance_seconds=3601)
        page = requests.get(session["connect_url"], timeout=10)
        self.assertEqual(page.status_code, 410)
        self.assertIn('content="expired"', page.text)


class LifecycleTest(SandboxCase):
    def test_refresh_too_soon_is_refused_with_the_next_possible_time(self):
        connection_id = self.connect()
        response = self.client.call("POST", f"/connections/{connection_id}/refresh")
        error = self.client.error(response, 406, "ConnectionCannotBeRefreshed")
        self.assertEqual(error["next_refresh_possible_at"], "2025-03-10T08:05:00Z")
        self.advance(advance_seconds=301)
        refreshed = self.client.ok("POST", f"/connections/{connection_id}/refresh")["data"]
        self.assertEqual(refreshed["next_refresh_possible_at"], "2025-03-10T08:10:01Z")

    def test_four_background_refreshes_a_day_then_the_limit(self):
        connection_id = self.connect()
        for _refresh in range(4):
            self.advance(advance_seconds=301)
            self.client.ok("POST", f"/connections/{connection_id}/refresh")
        self.advance(advance_seconds=301)
        response = self.client.call("POST", f"/connections/{connection_id}/refresh")
        self.client.error(response, 406, "BackgroundFetchLimitExceeded")
        self.advance(advance_days=1)
        self.client.ok("POST", f"/connections/{connection_id}/refresh")

    def test_consent_expiry_blocks_refresh_accounts_and_transactions(self):
        connection_id = self.connect()
        self.advance(advance_days=181)
        for method, path, params in (
            ("POST", f"/connections/{connection_id}/refresh", None),
            ("GET", "/accounts", {"connection_id": connection_id}),
            ("GET", "/transactions", {"connection_id": connection_id}),
        ):
            self.client.error(self.client.call(method, path, params), 406, "AispConsentExpired")
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "inactive")
        self.client.ok("GET", "/consents", {"connection_id": connection_id})

    def test_reconnect_keeps_the_connection_and_makes_a_new_consent(self):
        connection_id = self.connect()
        old = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.advance(advance_days=170)
        body = {
            "data": {
                "consent": {"scopes": ["accounts", "transactions"]},
                "attempt": {"return_to": RETURN_TO},
            }
        }
        answer = self.client.ok("POST", f"/connections/{connection_id}/reconnect", body=body)
        final = complete_connect(answer["data"]["connect_url"])
        self.assertEqual(query_of(final)["connection_id"], connection_id)
        new = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.assertNotEqual(new["last_consent_id"], old["last_consent_id"])
        consents = self.client.ok("GET", "/consents", {"connection_id": connection_id})["data"]
        self.assertEqual(len(consents), 2)
        latest = next(c for c in consents if c["id"] == new["last_consent_id"])
        self.assertEqual(latest["expires_at"], "2026-02-23T08:00:00Z")
        self.advance(advance_days=20)  # past the first consent's end, within the new one
        self.client.ok("GET", "/accounts", {"connection_id": connection_id})

    def test_delete_revokes_the_consent(self):
        connection_id = self.connect()
        removed = self.client.ok("DELETE", f"/connections/{connection_id}")["data"]
        self.assertTrue(removed["removed"])
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "disabled")
        consent = self.client.ok("GET", "/consents", {"connection_id": connection_id})["data"][0]
        self.assertIsNotNone(consent["revoked_at"])
        accounts = self.client.call("GET", "/accounts", {"connection_id": connection_id})
        self.client.error(accounts, 406, "AispConsentRevoked")
        self.advance(advance_seconds=400)
        refresh = self.client.call("POST", f"/connections/{connection_id}/refresh")
        self.client.error(refresh, 406, "AispConsentRevoked")

    def test_pending_transactions_are_replaced_by_posted_ones_with_new_ids(self):
        connection_id = self.connect("fakebank_oauth_with_pending_xf")
        query = {"connection_id": connection_id, "pending": "true"}
        pending = self.client.ok("GET", "/transactions", query)["data"]
        self.assertTrue(pending)
        self.advance(advance_days=3)
        self.client.ok("POST", f"/connections/{connection_id}/refresh")
        still_pending = {t["id"] for t in self.client.ok("GET", "/transactions", query)["data"]}
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
        self.client.ok("POST", f"/connections/{connection_id}/refresh")
        after, _pages = self.all_transactions(connection_id)
        self.assertEqual(len(after) - len(before), 6)  # three on each of the two accounts

    def test_a_refresh_failing_at_the_bank_is_recorded_on_the_last_attempt(self):
        connection_id = self.connect()
        failure = {"error_class": "ProviderError", "error_message": "Bank down"}
        self.control("POST", f"/connections/{connection_id}/fail_next", failure)
        self.advance(advance_seconds=301)
        self.client.ok("POST", f"/connections/{connection_id}/refresh")
        attempt = self.client.ok("GET", f"/connections/{connection_id}")["data"]["last_attempt"]
        self.assertEqual(attempt["fail_error_class"], "ProviderError")
        self.assertEqual(attempt["fail_message"], "Bank down")


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

    def test_connect_sends_signed_notify_and_success_callbacks(self):
        connection_id = self.connect()
        self.assertTrue(
            self.receiver.wait_for(lambda got: any(p.endswith("/success") for p, _h, _b in got))
        )
        kinds, stages = [], []
        for path, headers, body in self.receiver.received:
            self.assert_signed(path, headers, body)
            document = json.loads(body)
            kinds.append(path.rsplit("/", 1)[1])
            self.assertEqual(document["meta"]["version"], "6")
            self.assertEqual(document["data"]["connection_id"], connection_id)
            if kinds[-1] == "notify":
                stages.append(document["data"]["stage"])
        self.assertEqual(kinds[-1], "success")
        self.assertEqual(stages, ["start", "connect", "fetch_accounts", "fetch_recent", "finish"])
        success = json.loads(self.receiver.received[-1][2])["data"]
        self.assertEqual(success["stage"], "finish")
        self.assertIn("customer_id", success)
        self.assertEqual(success["custom_fields"], {})

    def test_delete_sends_destroy_and_a_failing_bank_sends_fail(self):
        connection_id = self.connect()
        self.receiver.wait_for(lambda got: any(p.endswith("/success") for p, _h, _b in got))
        self.client.ok("DELETE", f"/connections/{connection_id}")
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
        self.client.ok("GET", f"/connections/{connection_id}")


class FaultTest(SandboxCase):
    def fault(self, **fault):
        self.control("POST", "/faults", fault)

    def test_429_with_retry_after(self):
        self.fault(kind="429", count=2, retry_after=7)
        for _try in range(2):
            response = self.client.call("GET", "/providers")
            self.client.error(response, 429, "TooManyRequests")
            self.assertEqual(response.headers["Retry-After"], "7")
        self.client.ok("GET", "/providers")

    def test_500_with_an_error_body(self):
        self.fault(kind="500")
        self.client.error(self.client.call("GET", "/providers"), 500, "InternalServerError")
        self.client.ok("GET", "/providers")

    def test_timeout_delays_the_answer(self):
        self.fault(kind="timeout", delay=1.0)
        with self.assertRaises(requests.exceptions.ReadTimeout):
            requests.get(self.server.api_url + "/providers", timeout=0.3)
        self.client.ok("GET", "/providers")

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
        self.client.ok("GET", "/providers")
        response = self.client.call("GET", "/transactions", {"connection_id": "1"})
        self.client.error(response, 500, "InternalServerError")
        log = self.control("GET", "/requests")["data"]
        self.assertEqual([entry["fault"] for entry in log[-2:]], [None, "500"])


class PersistenceTest(unittest.TestCase):
    def test_a_restart_with_the_same_state_file_loses_nothing(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        state = os.path.join(folder, "state.json")
        with SandboxServer(app_id=APP_ID, secret=SECRET, state_path=state) as server:
            client = Client(server)
            requests.post(server.url + "/sandbox/clock", json={"now": MONDAY_MORNING}, timeout=10)
            customer_id = client.ok("POST", "/customers", body={"data": {"identifier": "p"}})[
                "data"
            ]["id"]
            body = {
                "data": {
                    "customer_id": customer_id,
                    "consent": {"scopes": ["accounts", "transactions"]},
                    "attempt": {"return_to": RETURN_TO},
                    "provider": {"code": "ing_sandbox_be"},
                }
            }
            session = client.ok("POST", "/connections/connect", body=body)["data"]
            connection_id = query_of(complete_connect(session["connect_url"]))["connection_id"]
            before = client.ok("GET", "/transactions", {"connection_id": connection_id})
        with SandboxServer(app_id=APP_ID, secret=SECRET, state_path=state) as server:
            client = Client(server)
            after = client.ok("GET", "/transactions", {"connection_id": connection_id})
            self.assertEqual(after, before)
            connection = client.ok("GET", f"/connections/{connection_id}")["data"]
            self.assertEqual(connection["status"], "active")
            again = client.call("POST", "/customers", body={"data": {"identifier": "p"}})
            client.error(again, 409, "DuplicatedCustomer")
            clock = requests.get(server.url + "/sandbox/clock", timeout=10).json()["data"]
            self.assertEqual(clock["today"], "2025-03-10")


class StandaloneTest(unittest.TestCase):
    def test_python_m_sandbox_serves_with_settings_from_the_environment(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "SANDBOX_PORT": str(port),
            "SANDBOX_APP_ID": "env-app",
            "SANDBOX_SECRET": "env-secret",
            "SANDBOX_PAGE_SIZE": "2",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox"],
            cwd=os.path.dirname(SANDBOX_DIR),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(process.wait, 10)
        self.addCleanup(process.terminate)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                requests.get(url + "/sandbox/clock", timeout=1)
                break
            except requests.exceptions.ConnectionError:
                time.sleep(0.1)
        headers = {"App-id": "env-app", "Secret": "env-secret"}
        document = requests.get(url + "/api/v6/providers", headers=headers, timeout=10).json()
        self.assertEqual(len(document["data"]), 2)
        self.assertIsNotNone(document["meta"]["next_id"])
        key = requests.get(url + "/sandbox/public_key.pem", timeout=10).text
        self.assertIn("BEGIN PUBLIC KEY", key)


class DemoDataTest(unittest.TestCase):
    def test_demo_ibans_are_valid_belgian_ibans(self):
        ibans = [iban for group in BE_DEMO_IBANS.values() for iban in group]
        self.assertEqual(len(ibans), 8)
        for iban in ibans:
            self.assertTrue(iban.startswith("BE") and len(iban) == 16 and mod97_ok(iban), iban)
            bban = iban[4:]
            self.assertEqual(int(bban[:10]) % 97 or 97, int(bban[10:]), iban)

    def test_clock_moves_on_request(self):
        with SandboxServer() as server:
            clock = server.url + "/sandbox/clock"
            requests.post(clock, json={"now": MONDAY_MORNING}, timeout=10)
            moved = requests.post(clock, json={"advance_days": 2}, timeout=10).json()["data"]
            self.assertEqual(moved["today"], "2025-03-12")
            now = datetime.datetime.fromisoformat(moved["now"].replace("Z", "+00:00"))
            self.assertLess(
                abs(
                    (
                        now - datetime.datetime(2025, 3, 12, 8, tzinfo=datetime.timezone.utc)
                    ).total_seconds()
                ),
                60,
            )

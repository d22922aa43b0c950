"""The Salt Edge sandbox over real sockets: signatures, endpoints, widget, limits, faults.

Plain unittest classes (no Odoo): every test starts from a reset sandbox whose clock shows
Monday 10 March 2025, 08:00 UTC, and talks to it with ``requests`` like a client would.
The fetch after a connect or refresh runs in the background as at Salt Edge; most classes
make it short (``FAST_FETCH`` seconds) and wait for it with ``/sandbox/fetches/wait``.
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

from ..sandbox import BE_DEMO_IBANS, SandboxConfig, SandboxServer, complete_connect
from ..sandbox.ledger import balance_before, drafts_for_period
from ..sandbox.providers import PROVIDERS_BY_CODE

APP_ID = "test-app"
SECRET = "test-secret"
MONDAY_MORNING = "2025-03-10T08:00:00Z"
RETURN_TO = "https://odoo.example.com/account_bank_connection/return?state=xyz&db=demo"
FAST_FETCH = 0.2  # seconds: a background fetch, short enough for many tests
FIRST_ID = 100000000001
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

    fetch_seconds = FAST_FETCH

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
            fetch_seconds=cls.fetch_seconds,
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

    def wait_fetches(self, timeout=20):
        """Wait until the sandbox has no fetch under way."""
        answer = self.control("POST", "/fetches/wait", {"timeout": timeout})
        self.assertEqual(answer["data"]["running"], 0)

    def connect_session(
        self, provider="kbc_sandbox_be", customer_id=None, hints=True, data=None, **consent
    ):
        """A connect session; ``hints``: ask for connection_id and error_class in the
        redirect back, as the addon does."""
        body = {
            "data": {
                "customer_id": customer_id or self.customer(),
                "consent": {"scopes": ["accounts", "transactions"], **consent},
                "attempt": {"return_to": RETURN_TO, "locale": "en"},
                "provider": {"code": provider, "include_sandboxes": True},
                **(data or {}),
            }
        }
        if hints:
            body["data"].update(return_connection_id=True, return_error_class=True)
        return self.client.ok("POST", "/connections/connect", body=body)["data"]

    def connect(self, provider="kbc_sandbox_be", wait=True, data=None, customer_id=None, **kwargs):
        """A connection made through the widget; returns its id once fetched (``wait``)."""
        session = self.connect_session(provider, customer_id, data=data)
        final = complete_connect(session["connect_url"], **kwargs)
        self.assertTrue(final.startswith(RETURN_TO.split("?")[0]), final)
        if wait:
            self.wait_fetches()
        return query_of(final)["connection_id"]

    def background_refresh(self, connection_id, wait=True):
        """A background refresh that must be accepted; its answer (``data``)."""
        body = {"data": {"attempt": {"fetch_scopes": ["accounts", "transactions"]}}}
        path = f"/connections/{connection_id}/background_refresh"
        answer = self.client.ok("POST", path, body=body)["data"]
        if wait:
            self.wait_fetches()
        return answer

    def refresh_refused(self, connection_id, status, error_class):
        body = {"data": {"attempt": {"fetch_scopes": ["accounts", "transactions"]}}}
        path = f"/connections/{connection_id}/background_refresh"
        return self.client.error(self.client.call("POST", path, body=body), status, error_class)

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
        # The consent exists as soon as the user confirms, before the fetch ends.
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
        self.wait_fetches()
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
    def test_connections_a_month_apart_tell_one_continuous_history(self):
        # A bank's balance does not jump between two consents: the later connection's
        # balance is the earlier one's plus the days between (a reconnect after expiry).
        first = self.connect()
        early = self.client.ok("GET", "/accounts", {"connection_id": first})["data"][0]
        self.advance(advance_days=30)
        second = self.connect(customer_id=self.customer("company-2"))
        late = self.client.ok("GET", "/accounts", {"connection_id": second})["data"][0]
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
        attempt = self.client.ok("GET", f"/connections/{connection_id}")["data"]["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertEqual(attempt["success_at"], "2025-03-10T08:05:01Z")
        # PUT is accepted too, with the same meaning.
        self.advance(advance_seconds=301)
        body = {"data": {"attempt": {"fetch_scopes": ["accounts", "transactions"]}}}
        path = f"/connections/{connection_id}/background_refresh"
        self.client.ok("PUT", path, body=body)
        self.wait_fetches()

    def test_consent_expiry_blocks_refresh_accounts_and_transactions(self):
        connection_id = self.connect()
        self.advance(advance_days=181)
        self.refresh_refused(connection_id, 406, "AispConsentExpired")
        for method, path, params in (
            ("GET", "/accounts", {"connection_id": connection_id}),
            ("GET", "/transactions", {"connection_id": connection_id}),
        ):
            self.client.error(self.client.call(method, path, params), 406, "AispConsentExpired")
        body = {"data": {"attempt": {"return_to": RETURN_TO}}}
        interactive = self.client.call("POST", f"/connections/{connection_id}/refresh", body=body)
        self.client.error(interactive, 406, "AispConsentExpired")
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
                "return_connection_id": True,
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
        self.wait_fetches()
        self.assertTrue(
            self.client.ok("GET", f"/connections/{connection_id}")["data"]["last_attempt"][
                "finished"
            ]
        )
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
        self.refresh_refused(connection_id, 406, "AispConsentRevoked")

    def test_pending_transactions_are_replaced_by_posted_ones_with_new_ids(self):
        connection_id = self.connect("fakebank_oauth_with_pending_xf")
        query = {"connection_id": connection_id, "pending": "true"}
        pending = self.client.ok("GET", "/transactions", query)["data"]
        self.assertTrue(pending)
        self.advance(advance_days=3)
        self.background_refresh(connection_id)
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
        self.background_refresh(connection_id)
        after, _pages = self.all_transactions(connection_id)
        self.assertEqual(len(after) - len(before), 6)  # three on each of the two accounts

    def test_the_same_history_however_often_it_is_fetched(self):
        connection_id = self.connect()
        before, _pages = self.all_transactions(connection_id)
        balances = self.client.ok("GET", "/accounts", {"connection_id": connection_id})["data"]
        for _refresh in range(2):
            self.advance(advance_seconds=301)
            self.background_refresh(connection_id)
        after, _pages = self.all_transactions(connection_id)
        self.assertEqual(after, before)
        again = self.client.ok("GET", "/accounts", {"connection_id": connection_id})["data"]
        self.assertEqual([a["balance"] for a in again], [a["balance"] for a in balances])

    def test_a_refresh_failing_at_the_bank_is_recorded_on_the_last_attempt(self):
        connection_id = self.connect()
        failure = {"error_class": "ProviderError", "error_message": "Bank down"}
        self.control("POST", f"/connections/{connection_id}/fail_next", failure)
        self.advance(advance_seconds=301)
        self.background_refresh(connection_id)
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        attempt = connection["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertEqual(attempt["fail_error_class"], "ProviderError")
        self.assertEqual(attempt["fail_message"], "Bank down")
        # A bank that fails once does not break the connection or its consent.
        self.assertEqual(connection["status"], "active")
        self.client.ok("GET", "/accounts", {"connection_id": connection_id})


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
            customer_id = client.ok("POST", "/customers", body={"data": {"identifier": "i"}})[
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
            final = complete_connect(session["connect_url"])
            self.assertEqual(final, RETURN_TO)  # no hints asked
            listed = client.ok("GET", "/connections", {"customer_id": customer_id})["data"]
            connection_id = listed[0]["id"]
            self.assertTrue(listed[0]["last_attempt"]["finished"])
            self.assertTrue(client.ok("GET", "/accounts", {"connection_id": connection_id})["data"])
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
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
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
        self.assertTrue(self.client.ok("GET", f"/connections/{asked}")["data"]["automatic_refresh"])
        not_asked = self.connect(customer_id=self.customer("other"))
        connection = self.client.ok("GET", f"/connections/{not_asked}")["data"]
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
        self.client.error(bad, 400, "WrongRequestFormat")

    def test_the_connection_is_found_from_the_customer_alone(self):
        customer_id = self.customer()
        ids = []
        for number in range(3):
            fields = {"odoo_state": f"s{number}"}
            data = {"attempt": {"return_to": RETURN_TO, "custom_fields": fields}}
            session = self.connect_session(customer_id=customer_id, hints=False, data=data)
            self.assertEqual(complete_connect(session["connect_url"]), RETURN_TO)
            listed = self.client.ok("GET", "/connections", {"customer_id": customer_id})["data"]
            ids.append(listed[-1]["id"])
            attempt = listed[-1]["last_attempt"]
            self.assertEqual(attempt["custom_fields"], fields)
            self.assertEqual(attempt["created_at"], "2025-03-10T08:00:00Z")
            self.assertEqual(listed[-1]["created_at"], "2025-03-10T08:00:00Z")
        self.wait_fetches()
        first = self.client.ok("GET", "/connections", {"customer_id": customer_id, "per_page": 2})
        self.assertEqual([c["id"] for c in first["data"]], ids[:2])
        self.assertEqual(first["meta"]["next_id"], ids[2])
        rest = self.client.ok(
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
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
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
        self.client.ok("GET", "/consents", {"connection_id": connection_id})
        query = {"connection_id": connection_id}
        self.assertEqual(self.client.ok("GET", "/accounts", query)["data"], [])
        # fetch_accounts: every account, already with its true balance.
        self.wait_for_stage(connection_id, "fetch_accounts")
        accounts = self.client.ok("GET", "/accounts", query)["data"]
        self.assertEqual(
            [account["extra"]["iban"] for account in accounts],
            list(BE_DEMO_IBANS["kbc_sandbox_be"]),
        )
        self.assertEqual(self.client.ok("GET", "/transactions", query)["data"], [])
        # fetch_recent: the last 30 days only.
        self.wait_for_stage(connection_id, "fetch_recent")
        recent, _pages = self.all_transactions(connection_id)
        self.assertTrue(recent)
        self.assertGreaterEqual(min(t["made_on"] for t in recent), "2025-02-09")
        attempt = self.client.ok("GET", f"/connections/{connection_id}")["data"]["last_attempt"]
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
        after = self.client.ok("GET", "/accounts", query)["data"]
        for early, late, template in zip(accounts, after, provider.accounts, strict=True):
            self.assertEqual(early["balance"], late["balance"])
            own = [t for t in everything if t["account_id"] == late["id"]]
            first_day = datetime.date.fromisoformat(min(t["made_on"] for t in own))
            holder = late["extra"]["holder_name"]
            before = balance_before(provider, template, holder, first_day)
            expected = round(before + sum(t["amount"] for t in own), 2)
            self.assertAlmostEqual(late["balance"], expected, places=2)
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
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
        self.client.error(interactive, 409, "ConnectionAlreadyProcessing")
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
            self.client.ok("GET", "/accounts", {"customer_id": customer_id})["data"], []
        )


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
        return self.client.ok("POST", path, body=body)["data"]

    def test_the_user_logs_in_at_the_bank_and_the_fetch_follows(self):
        connection_id = self.connect("fakebank_with_updates_xf")
        before, _pages = self.all_transactions(connection_id)
        consent_id = self.client.ok("GET", f"/connections/{connection_id}")["data"][
            "last_consent_id"
        ]
        answer = self.refresh_session(connection_id, return_connection_id=True)
        self.assertEqual(answer["expires_at"], "2025-03-10T09:00:00Z")
        self.assertTrue(answer["connect_url"].startswith(self.server.url + "/connect/"))
        http = requests.Session()
        # The bank's screens only: no customer type, no terms, no accounts to pick.
        self.assertIn('content="login"', http.get(answer["connect_url"], timeout=10).text)
        final = complete_connect(answer["connect_url"], session=http)
        self.assertEqual(query_of(final)["connection_id"], connection_id)
        self.wait_fetches()
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["last_consent_id"], consent_id)
        consents = self.client.ok("GET", "/consents", {"connection_id": connection_id})["data"]
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
        answer = self.client.ok("PUT", path, body=body)["data"]
        final = complete_connect(answer["connect_url"], login_method="card_reader")
        self.assertEqual(final, RETURN_TO)
        self.wait_fetches()
        attempt = self.client.ok("GET", f"/connections/{connection_id}")["data"]["last_attempt"]
        self.assertTrue(attempt["finished"])
        self.assertIsNone(attempt["fail_error_class"])

    def test_leaving_the_bank_records_a_failed_attempt(self):
        connection_id = self.connect()
        answer = self.refresh_session(connection_id, return_error_class=True)
        params = query_of(complete_connect(answer["connect_url"], cancel_at="login"))
        self.assertEqual(params["error_class"], "ProviderAccessNotGranted")
        self.assertNotIn("connection_id", params)
        connection = self.client.ok("GET", f"/connections/{connection_id}")["data"]
        self.assertEqual(connection["status"], "active")
        self.assertEqual(connection["last_attempt"]["fail_error_class"], "ProviderAccessNotGranted")

    def test_a_refresh_needs_a_return_url(self):
        connection_id = self.connect()
        path = f"/connections/{connection_id}/refresh"
        missing = self.client.call("POST", path, body={"data": {"attempt": {}}})
        self.client.error(missing, 400, "ReturnURLInvalid")


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
        url = self.client.ok("POST", "/connections/connect", body=body)["data"]["connect_url"]
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


class ConfigTest(unittest.TestCase):
    def test_defaults_are_salt_edges_harder_behaviour(self):
        config = SandboxConfig()
        self.assertEqual(
            (config.fetch_seconds, config.success_callbacks, config.recent_days), (3.0, 2, 30)
        )
        env = {
            "SANDBOX_FETCH_SECONDS": "0.5",
            "SANDBOX_SUCCESS_CALLBACKS": "3",
            "SANDBOX_RECENT_DAYS": "7",
        }
        config = SandboxConfig.from_env(env)
        self.assertEqual(
            (config.fetch_seconds, config.success_callbacks, config.recent_days), (0.5, 3, 7)
        )
        self.assertEqual(SandboxConfig(success_callbacks=9).success_callbacks, 3)
        self.assertEqual(SandboxConfig(success_callbacks=0).success_callbacks, 1)


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

    def test_page_cycle_points_a_pages_next_id_back_to_the_page_before(self):
        connection_id = self.connect("fakebank_oauth_with_n_transactions_xf")
        query = {"connection_id": connection_id}
        pages = [self.client.ok("GET", "/transactions", query)]
        while pages[-1]["meta"]["next_id"]:
            from_id = pages[-1]["meta"]["next_id"]
            pages.append(self.client.ok("GET", "/transactions", {**query, "from_id": from_id}))
        starts = [page["data"][0]["id"] for page in pages]
        self.assertEqual(len(starts), 3)

        # Page one goes through; page three, the last, points back to page two; then the
        # fault is spent and page three is the last again.
        self.fault(kind="page_cycle", path_prefix="/transactions", after=1)
        self.assertEqual(self.client.ok("GET", "/transactions", query), pages[0])
        third = {**query, "from_id": starts[2]}
        cycled = self.client.ok("GET", "/transactions", third)
        self.assertEqual(cycled["data"], pages[2]["data"])
        self.assertEqual(cycled["meta"]["next_id"], starts[1])
        self.assertIn(f"from_id={starts[1]}", cycled["meta"]["next_page"])
        self.assertEqual(self.client.ok("GET", "/transactions", third), pages[2])
        log = self.control("GET", "/requests?limit=3")["data"]
        self.assertEqual([entry["fault"] for entry in log], [None, "page_cycle", None])

        # On the first page it points to the first page itself.
        self.fault(kind="page_cycle", path_prefix="/transactions")
        first = self.client.ok("GET", "/transactions", query)
        self.assertEqual(first["meta"]["next_id"], starts[0])


class PersistenceTest(unittest.TestCase):
    def test_a_restart_with_the_same_state_file_loses_nothing(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        state = os.path.join(folder, "state.json")
        # fetch_seconds=0: the fetch must be over before the first server stops (a stop
        # ends the fetches under way), and the state file then holds all of it.
        with SandboxServer(
            app_id=APP_ID, secret=SECRET, state_path=state, fetch_seconds=0
        ) as server:
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
                    "return_connection_id": True,
                }
            }
            session = client.ok("POST", "/connections/connect", body=body)["data"]
            connection_id = query_of(complete_connect(session["connect_url"]))["connection_id"]
            before = client.ok("GET", "/transactions", {"connection_id": connection_id})
        with SandboxServer(
            app_id=APP_ID, secret=SECRET, state_path=state, fetch_seconds=0
        ) as server:
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

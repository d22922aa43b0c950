"""What the sandbox's own tests share: a minimal signed client written from Salt Edge's
signature guide, a receiver for callbacks, and ``SandboxCase``, a sandbox per test class.

Plain unittest classes (no Odoo; ``make test`` runs them with pytest from the repository
root, where ``sandbox`` is a top-level package): every test starts from a reset sandbox
whose clock shows Monday 10 March 2025, 08:00 UTC, and talks to it with ``requests`` like
a client would. The fetch after a connect or refresh runs in the background as at Salt
Edge; most classes make it short (``FAST_FETCH`` seconds) and wait for it with
``/sandbox/fetches/wait``. The client only sends and returns the response: the tests
assert on it (``assert_ok``, ``assert_error``).
"""

import base64
import http.server
import json
import os
import threading
import time
import unittest
import urllib.parse

import requests
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox import SandboxServer, complete_connect

APP_ID = "test-app"
SECRET = "test-secret"
MONDAY_MORNING = "2025-03-10T08:00:00Z"
RETURN_TO = "https://odoo.example.com/account_bank_connection/return?state=xyz&db=demo"
FAST_FETCH = 0.2  # seconds: a background fetch, short enough for many tests
FIRST_ID = 100000000001
# The sandbox package; ``python -m sandbox`` runs from the folder that holds it.
SANDBOX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    """A minimal signed Salt Edge client, written from the signature guide for these tests.
    It asserts nothing: ``call`` returns the response."""

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


class ApiCase(unittest.TestCase):
    """Assertions on the answers of the sandbox's API."""

    def assert_ok(self, response):
        """``response`` is a success (HTTP 200); returns its JSON document."""
        self.assertEqual(response.status_code, 200, response.text)
        return response.json()

    def assert_error(self, response, status, error_class):
        """``response`` is Salt Edge's error ``error_class`` with HTTP ``status``, with a
        message and a link to the documentation, as Salt Edge sends them; returns it."""
        self.assertEqual(response.status_code, status, response.text)
        error = response.json()["error"]
        self.assertEqual(error["class"], error_class, error)
        self.assertTrue(error["message"], error)
        self.assertTrue(error["documentation_url"], error)
        return error


class SandboxCase(ApiCase):
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

    def assert_call_ok(self, method, path, params=None, body=None):
        """The class's signed client sends the request and it succeeds (HTTP 200);
        returns the answer's JSON document."""
        return self.assert_ok(self.client.call(method, path, params, body))

    def advance(self, **kwargs):
        return self.control("POST", "/clock", kwargs)["data"]

    def customer(self, identifier="company-1"):
        data = self.assert_call_ok("POST", "/customers", body={"data": {"identifier": identifier}})
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
        return self.assert_call_ok("POST", "/connections/connect", body=body)["data"]

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
        answer = self.assert_call_ok("POST", path, body=body)["data"]
        if wait:
            self.wait_fetches()
        return answer

    def refresh_refused(self, connection_id, status, error_class):
        body = {"data": {"attempt": {"fetch_scopes": ["accounts", "transactions"]}}}
        path = f"/connections/{connection_id}/background_refresh"
        return self.assert_error(self.client.call("POST", path, body=body), status, error_class)

    def all_transactions(self, connection_id, **params):
        items, from_id, pages = [], None, 0
        while True:
            query = {"connection_id": connection_id, **params}
            if from_id:
                query["from_id"] = from_id
            document = self.assert_call_ok("GET", "/transactions", query)
            items += document["data"]
            pages += 1
            from_id = document["meta"]["next_id"]
            if from_id is None:
                return items, pages

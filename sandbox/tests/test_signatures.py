"""Salt Edge's request signatures at the sandbox: signed, unsigned, expired, forged, made
by another tool (the OpenSSL command line), and the test-app mode that checks them only
when sent."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import requests

from sandbox import SandboxServer
from sandbox.tests.common import (
    APP_ID,
    SECRET,
    ApiCase,
    Client,
    SandboxCase,
    new_key,
    private_pem,
    sign_with_cryptography,
)


class SignatureTest(SandboxCase):
    def test_signed_request_is_accepted_and_logged_without_the_secret(self):
        document = self.assert_call_ok("GET", "/providers", {"country_code": "BE"})
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
        self.assert_error(other.call("GET", "/providers"), 401, "SignatureNotMatch")
        # A signature of another URL (the query in another order) does not match either.
        url = self.server.api_url + "/providers?include_sandboxes=true&country_code=BE"
        expires = int(time.time()) + 60
        signature = sign_with_cryptography(self.client_key, f"{expires}|GET|{url}|".encode())
        headers = {"App-id": APP_ID, "Secret": SECRET, "Expires-at": str(expires)}
        headers["Signature"] = signature
        reordered = self.server.api_url + "/providers?country_code=BE&include_sandboxes=true"
        response = requests.get(reordered, headers=headers, timeout=10)
        self.assert_error(response, 401, "SignatureNotMatch")
        self.assertEqual(requests.get(url, headers=headers, timeout=10).status_code, 200)

    def test_expired_or_far_future_expires_at_is_refused(self):
        past = self.client.call("GET", "/providers", expires_at=int(time.time()) - 10)
        self.assert_error(past, 400, "RequestExpired")
        ahead = self.client.call("GET", "/providers", expires_at=int(time.time()) + 7200)
        self.assert_error(ahead, 400, "ExpiresAtInvalid")
        garbled = self.client.call("GET", "/providers", headers={"Expires-at": "soon"})
        self.assert_error(garbled, 400, "ExpiresAtInvalid")

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
        self.assert_error(past, 400, "RequestExpired")
        ahead = self.client.call("GET", "/providers", expires_at=time.time() + 3700.5)
        self.assert_error(ahead, 400, "ExpiresAtInvalid")
        for garbled in ("nan", "inf"):
            response = self.client.call("GET", "/providers", expires_at=garbled)
            self.assert_error(response, 400, "ExpiresAtInvalid")
        # The signed string holds the header as sent: the same time written otherwise fails.
        url = self.server.api_url + "/providers"
        whole = int(time.time()) + 60
        signature = sign_with_cryptography(self.client_key, f"{whole}|GET|{url}|".encode())
        headers = {"App-id": APP_ID, "Secret": SECRET, "Signature": signature}
        headers["Expires-at"] = f"{whole}.0"
        response = requests.get(url, headers=headers, timeout=10)
        self.assert_error(response, 401, "SignatureNotMatch")

    def test_a_trailing_slash_is_the_same_path_and_is_signed_as_sent(self):
        created = self.client.call("POST", "/customers/", body={"data": {"identifier": "slash"}})
        self.assertEqual(created.status_code, 200, created.text)
        customer_id = created.json()["data"]["id"]
        shown = self.assert_call_ok("GET", f"/customers/{customer_id}/")["data"]
        self.assertEqual(shown["identifier"], "slash")
        listed = self.assert_call_ok("GET", "/providers/", {"country_code": "BE"})["data"]
        self.assertEqual(len(listed), 5)
        # A signature over the URL without the slash does not sign the URL with it.
        url = self.server.api_url + "/customers"
        expires = int(time.time()) + 60
        signature = sign_with_cryptography(self.client_key, f"{expires}|GET|{url}|".encode())
        headers = {"App-id": APP_ID, "Secret": SECRET, "Expires-at": str(expires)}
        headers["Signature"] = signature
        response = requests.get(url + "/", headers=headers, timeout=10)
        self.assert_error(response, 401, "SignatureNotMatch")
        self.assertEqual(requests.get(url, headers=headers, timeout=10).status_code, 200)

    def test_missing_signature_or_expires_at_is_refused_for_a_live_app(self):
        unsigned = Client(self.server)
        self.assert_error(unsigned.call("GET", "/providers"), 400, "MissingSignature")
        response = unsigned.call("GET", "/providers", headers={"Signature": "abc"})
        self.assert_error(response, 400, "MissingExpiresAt")

    def test_wrong_credentials_are_refused(self):
        wrong_secret = Client(self.server, self.client_key, secret="nope")
        self.assert_error(wrong_secret.call("GET", "/providers"), 401, "WrongSecret")
        wrong_app = Client(self.server, self.client_key, app_id="someone-else")
        self.assert_error(wrong_app.call("GET", "/providers"), 401, "ApiKeyNotFound")


class TestAppModeTest(ApiCase):
    """Without a client key the sandbox is a test app: signatures only checked if sent."""

    def test_unsigned_requests_pass_and_a_sent_expires_at_is_still_checked(self):
        with SandboxServer(app_id=APP_ID, secret=SECRET) as server:
            client = Client(server)
            self.assertEqual(client.call("GET", "/providers").status_code, 200)
            headers = {"Signature": "c2ln", "Expires-at": str(int(time.time()) - 5)}
            self.assert_error(
                client.call("GET", "/providers", headers=headers), 400, "RequestExpired"
            )

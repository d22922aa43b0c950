"""The Salt Edge client, outside Odoo: signatures, errors, retries, pagination, logging.

Plain ``unittest`` classes collected by pytest. Most tests talk over real sockets to the
local Salt Edge sandbox (configured with our public key, so it checks every signature);
a few use a tiny local HTTP server to serve answers the sandbox never gives.
"""

import base64
import datetime
import email.utils
import gzip
import http.server
import io
import itertools
import json
import logging
import threading
import time
import unittest
import urllib.parse
import uuid

import requests
import urllib3
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ..saltedge_client import (
    SaltEdgeClient,
    SaltEdgeError,
    generate_key_pair,
    sign,
    verify_callback_signature,
)
from ..saltedge_errors import (
    ERRORS,
    IN_PROGRESS,
    RETRY_LATER,
    SETUP,
    UNKNOWN,
    USER_MUST_ACT,
)
from ..sandbox import BE_DEMO_IBANS, SandboxServer, complete_connect
from .common import SECRET

# A fixed 2048-bit key made once with `openssl genpkey`, and signatures made with
# `openssl dgst -sha256 -sign` over the exact strings below (PKCS#1 v1.5 is deterministic).
FIXTURE_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDz285SpMwBCzFf
GyJsdKc+BmAPfDF5IXtT6ScQ1HBdNFmPcXLZoq1AWOHMBgXOFhFAmF7x7Kqw4AXR
6eU5UylkicOa9GdIyzwynL39BVDf4o6yBMqG5gDlDsidwm/ZK+0JhlONBnT7TerD
5+zK/3ZdIlquzZSz+Fh+3Xy9RVvpIfp/cK9uhmoHIrrR6iqUiwI/bQez0rWcvmjE
SuFrPSHzY1wI4sVSnQjsgF2Y3KR9dyFgD2DlNAonymKok+C2ZM99BmvXuE9WhvvT
m4xxmEHD2l+XPDj0gFAwFcWPU3i3y6IoIIZwM8297f6Dm3GCXoWclnG/YUK+eWfA
Pfx4zgPtAgMBAAECggEACegvqSbdzNsODe2Vx+8zTi9HHsnuXpvwHTgXKLVgvUCf
tNaoklPsEvWpcrb57GX0HHo0PULeqmHniqAkemA5CccZBcYRHiF3mBzLESjyoK3d
GzlbmwBkH+oqV1JrZdjFgAIPieatwPno5D2bXqHjRqRbJ8fdVzRrL/hClZPoSH/P
Fo6DjdKUGpwbEzRTXamkWJMTZSE7qkog2NN1+jwSU5DDiKk54WrN1v3CH2KpMSKe
aRuLA9ghtHSfpiNgbwPuf/XqU2/7/H/SoERV7Uu5SdF6C4MTkLPlmn19uzq6Wn/4
SQ14qce0a5Nuoax3eyl+oMBRo8P6fKKRRlAvpdorJwKBgQD8KCFt1bESFBUuXgqN
q9FcroPYWqOgfsB4gKGKetfphjz+bgWAf1JvqcMz6WTQGaTIlq94QgTajR1CDLqW
Hn+kv6RgDEXLjXh8/LlYconniQjJwvFZMEHA1BCGZ08rKfP29fpBl4jdgVzOIPWG
eFxtBdeN4HMnOYZhck1FKzKZKwKBgQD3k0wrNbCSuijvBl4wHcBUDtO/Er3WVDFF
Bm6opd/OXAbFT2jTsNoUBCK8D3JjxP/q6cgfsbyqkmyBHlJ7WhVihGwQ8/Hfg6eN
+XQLXDYN7jWkipTm/8PXxXz7Az5GCE6H9GV3ips/JiFYqYBbSDg/ssdQUfZmdSCb
yA4Lq9obRwKBgQC3wE7MCWMl93iP93vdTY4d6hauPS7sMDH2HlaZ4Xch9+7OwkJE
J4RdVuqnE7ehZm6MtjJcgk+jLB5cGYaHCuadmgIg9BCQiyF4g3pVl/Iixdufm+3g
vqfL6z23k+U/YS0llI6v6cuVD0Yf+Cizu1YvJIi2HRANT4A71t20QAx5TQKBgGlE
jkyJJa0dzq3jjUT0QYT8UPibpXBumAx7ca3v6bu60X4wB6iLOA7uuz4vazoU16Qx
B1DCqC/21oAIPpYIdbNQDwseTqf1ONdbTAZQjQNbWB/AdRPLiKBEbqHkfSQWAB46
wrITk3NEaUVjvRoTGSesgqcaUqS6BMV4SNCZn8GdAoGBAKupWaiOZkcIfpD5A8kI
7qCZWwuEvbViRZMMWjC9gYHFXMN3K6OerxdZ2SnlVMVR1lbYPWoyCH8yQXaZf2xF
2EkCKESSTLxPCijE5Ra4m36Qqei/CUMs3IFIeVHPM5slbeJ4FhJLj2ENbuIV4tFF
/ShLvsFHYXF3mFo/+m9LN3ZP
-----END PRIVATE KEY-----
"""
FIXTURE_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA89vOUqTMAQsxXxsibHSn
PgZgD3wxeSF7U+knENRwXTRZj3Fy2aKtQFjhzAYFzhYRQJhe8eyqsOAF0enlOVMp
ZInDmvRnSMs8Mpy9/QVQ3+KOsgTKhuYA5Q7IncJv2SvtCYZTjQZ0+03qw+fsyv92
XSJars2Us/hYft18vUVb6SH6f3CvboZqByK60eoqlIsCP20Hs9K1nL5oxErhaz0h
82NcCOLFUp0I7IBdmNykfXchYA9g5TQKJ8piqJPgtmTPfQZr17hPVob705uMcZhB
w9pflzw49IBQMBXFj1N4t8uiKCCGcDPNve3+g5txgl6FnJZxv2FCvnlnwD38eM4D
7QIDAQAB
-----END PUBLIC KEY-----
"""
GOLDEN_EXPIRES_AT = 1700000060
GOLDEN_POST_URL = "https://www.saltedge.com/api/v6/connections/connect?locale=fr&q=a%2Bb+c"
GOLDEN_POST_BODY = (
    b'{"data":{"customer_id":"222222222222222222",'
    b'"attempt":{"return_to":"https://odoo.example.com/ok"}}}'
)
GOLDEN_POST_SIGNATURE = (
    "d2KDsbEGCnjIWp8AJebTqRFe3DdaXBq5V43FW9sN+Fxr1dKv4HTEIR1/eCjymORKD6OMHj49b3MGFMTwVWLDJf1o"
    "KIheGos4W1F60L9uK7WiymUn/4w5JVe3nqEBCLpeyFBdRKO38AWvE/piCYDvQyJZdAaFankdvtBk+Sueq9cjlfvV"
    "4owyu0oyyscyKd+eaKdRFzTPI/WieZL9JOTGAP5YA+UArkKb6D1TdPXCBTNd6bmDv+WtsO1pk2A9hz/dH4xOikQG"
    "O330k6iUIFYqZ6SgdfchepyMrIqJry/Lugn4fhizbkOvKA8Oj9GLgzYibK8+iu/ShVMl2gQe9TE1Gg=="
)
GOLDEN_GET_URL = "https://www.saltedge.com/api/v6/accounts?connection_id=111111111111111111"
GOLDEN_GET_SIGNATURE = (
    "jEcrJ0F7AaohL2miL4Lt03Q9zP8bl4Zq3zI069dqJlG7vGuGrtG/PshcphvdwUgrpmm4lvrfloa0Kq8e4oELZ4hB"
    "3eQ5I/cxjqG+EM2b5aN711LyQyyfxnPCUOKygesgiUyGXcGkJ98TXFOnT6CSeqCAp3+WKDxExvUOcw3krm4NOpbo"
    "rzGxcdKc4/pGbbfod6k/S4E4wJv3uvL/mMrI5SWq9wSjDunSAteiJ7rnFSOy6y96aaQLybMxmSb9hagJ49YjlyyC"
    "Dy/EVaXstYTwB5aaH3ilEV6fRkWWI1luzM0UKpuaOvyUTPW0Vn0Dl98963mQw32iwhvExemGDFGkbA=="
)
GOLDEN_CALLBACK_URL = "https://odoo.example.com/saltedge/callback/success"
GOLDEN_CALLBACK_BODY = (
    b'{"data":{"connection_id":"111","customer_id":"222","custom_fields":{},"stage":"finish"},'
    b'"meta":{"version":"6","time":"2024-01-01T00:00:00Z"}}'
)
GOLDEN_CALLBACK_SIGNATURE = (
    "y/YB+T2USEFt3kIJZl+XKbXBWyMj3UvBzQ8WGs2srXsM2Q4emprJZQGx8ijxBtl1JlemmTXOts3Uep1aTDRwPok/"
    "IMPCOKpk2x2qdsDv8ygFqNGz3Fe7/r+h6H3vhdqni+dtRwzaS6h7Hb3fV/H/e0c4rMztK0EMceyYEbc9mKh+LHnA"
    "VB/vMGsPMMsLoR7CUJabwmAIsXqutook1ujfvYfY10Pery+eYlHF2Ku9pbfCpe1Y1QYHltGGHrAWoXUxYs8WCebI"
    "5GRIEZxhERzl9qbn/pQbNpEwYkQozduCbVAGmL8osjyQOMbtwINrt3dXXGaXq2H+jDDXf5b7BxivqA=="
)

APP_ID = "test-app-id"


class RecordingSleep:
    """Stands in for time.sleep: records the delays and lets the clock run on."""

    def __init__(self):
        self.delays = []
        self.offset = 0.0

    def __call__(self, seconds):
        self.delays.append(seconds)
        self.offset += seconds

    def clock(self):
        return time.time() + self.offset


class RecordingSession(requests.Session):
    """A real session that remembers every request it sent."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        return super().send(request, **kwargs)


# ---------------------------------------------------------------- a tiny scripted server


class Streamed:
    """A body ScriptedServer sends as it comes: with its Content-Length, or without one in
    chunks of ``chunk_size`` bytes (``Transfer-Encoding: chunked``). With ``stall_after``
    only that many bytes are sent, then the server keeps the connection open and silent
    until the test ends: a client that wants one byte more waits for its read timeout."""

    def __init__(self, body, chunk_size=None, stall_after=None):
        self.body = body
        self.chunk_size = chunk_size
        self.stall_after = stall_after


class ScriptedServer:
    """An HTTP server answering from a script of ``(status, headers, body)`` tuples (the last
    one repeats) and recording each request's method, path, headers and body. An answer may
    also be a function of the request's path (and query) returning such a tuple; a body is
    bytes, a JSON document or a ``Streamed``."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []
        self.closing = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, dict(self.headers), body))
                index = min(len(server.requests), len(server.answers)) - 1
                answer = server.answers[index]
                status, headers, payload = answer(self.path) if callable(answer) else answer
                streamed = payload if isinstance(payload, Streamed) else Streamed(payload)
                payload = streamed.body
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                sent = len(payload) if streamed.stall_after is None else streamed.stall_after
                if streamed.chunk_size:
                    # Chunked needs HTTP/1.1; one answer per connection keeps it simple.
                    self.protocol_version = "HTTP/1.1"
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                if streamed.chunk_size:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if streamed.chunk_size:
                    for start in range(0, sent, streamed.chunk_size):
                        piece = payload[start : min(start + streamed.chunk_size, sent)]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    if streamed.stall_after is None:
                        self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(payload[:sent])
                if streamed.stall_after is not None:
                    server.closing.wait(30)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v6"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def from_ids(self):
        """The ``from_id`` of each request, None when it had none."""
        return [query_value(path, "from_id") for _method, path, _headers, _body in self.requests]


def query_value(path, name):
    """One parameter of a request path's query string, or None."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get(name, [None])[0]


def listing(next_ids):
    """An answer for ScriptedServer: a page of one item per ``from_id``, whose
    ``meta.next_id`` is ``next_ids(from_id)`` (from_id None on the first page)."""

    def answer(path):
        from_id = query_value(path, "from_id")
        page = {"data": [{"id": from_id}], "meta": {"next_id": next_ids(from_id)}}
        return 200, {}, page

    return answer


def json_of_size(size):
    """A JSON object of exactly ``size`` bytes."""
    empty = json.dumps({"data": {"id": "1", "pad": ""}}).encode()
    document = json.dumps({"data": {"id": "1", "pad": "x" * (size - len(empty))}}).encode()
    assert len(document) == size
    return document


def _canned(status, document):
    """A response as requests' adapter builds it when streaming: the body still to read."""
    body = json.dumps(document).encode()
    response = requests.Response()
    response.status_code = status
    response.raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False)
    response.headers["Content-Type"] = "application/json"
    return response


def transactions_of(client, connection_id, account_id, **kwargs):
    """The account's transactions one by one, read page by page as the import reads them
    (``iter_transaction_pages``), each page only when the one before is used up."""
    for items, _next_id in client.iter_transaction_pages(connection_id, account_id, **kwargs):
        yield from items


def scripted_client(server, **kwargs):
    kwargs.setdefault("sleep", RecordingSleep())
    kwargs.setdefault("timeout", (2, 5))
    return SaltEdgeClient(server.url, APP_ID, SECRET, **kwargs)


# --------------------------------------------------------------------------- signatures


class TestRequestSignature(unittest.TestCase):
    def test_sign_matches_the_openssl_golden_vector_for_a_post_with_query_and_body(self):
        signature = sign(
            FIXTURE_PRIVATE_KEY_PEM, GOLDEN_EXPIRES_AT, "post", GOLDEN_POST_URL, GOLDEN_POST_BODY
        )
        self.assertEqual(signature, GOLDEN_POST_SIGNATURE)

    def test_sign_matches_the_openssl_golden_vector_for_a_get_ending_with_a_bar(self):
        for body in (b"", None, ""):
            signature = sign(
                FIXTURE_PRIVATE_KEY_PEM, GOLDEN_EXPIRES_AT, "GET", GOLDEN_GET_URL, body
            )
            self.assertEqual(signature, GOLDEN_GET_SIGNATURE)

    def test_the_client_sends_byte_for_byte_what_it_signed(self):
        session = RecordingSession()
        session.send = lambda request, **kwargs: session.sent.append(request) or _canned(200, {})
        client = SaltEdgeClient(
            "https://www.saltedge.com/api/v6/",
            APP_ID,
            SECRET,
            private_key_pem=FIXTURE_PRIVATE_KEY_PEM,
            session=session,
            clock=lambda: GOLDEN_EXPIRES_AT - 60,
        )
        payload = {
            "data": {
                "customer_id": "222222222222222222",
                "attempt": {"return_to": "https://odoo.example.com/ok"},
            }
        }
        client._request(
            "POST",
            "/connections/connect",
            params=[("locale", "fr"), ("q", "a+b c")],
            payload=payload,
        )
        (sent,) = session.sent
        self.assertEqual(sent.url, GOLDEN_POST_URL)
        self.assertEqual(sent.body, GOLDEN_POST_BODY)
        self.assertEqual(sent.headers["Expires-at"], str(GOLDEN_EXPIRES_AT))
        self.assertEqual(sent.headers["Signature"], GOLDEN_POST_SIGNATURE)
        self.assertEqual(sent.headers["App-id"], APP_ID)
        self.assertEqual(sent.headers["Secret"], SECRET)
        self.assertEqual(sent.headers["Accept"], "application/json")
        self.assertEqual(sent.headers["Content-Type"], "application/json")

    def test_without_a_private_key_no_signature_headers_are_sent(self):
        with ScriptedServer((200, {}, {"data": {"id": "1"}})) as server:
            scripted_client(server).get_connection("1")
        headers = server.requests[0][2]
        self.assertNotIn("Signature", headers)
        self.assertNotIn("Expires-at", headers)
        self.assertEqual(headers["Secret"], SECRET)

    def test_a_broken_private_key_is_refused_without_echoing_it(self):
        with self.assertRaises(ValueError) as caught:
            SaltEdgeClient("http://x", APP_ID, SECRET, private_key_pem="-----BEGIN nonsense")
        self.assertNotIn("nonsense", str(caught.exception))


class TestCallbackSignature(unittest.TestCase):
    def test_a_signature_made_by_openssl_is_accepted(self):
        self.assertTrue(
            verify_callback_signature(
                FIXTURE_PUBLIC_KEY_PEM,
                GOLDEN_CALLBACK_URL,
                GOLDEN_CALLBACK_BODY,
                GOLDEN_CALLBACK_SIGNATURE,
            )
        )
        # str body and bytes key are the same thing
        self.assertTrue(
            verify_callback_signature(
                FIXTURE_PUBLIC_KEY_PEM.encode(),
                GOLDEN_CALLBACK_URL,
                GOLDEN_CALLBACK_BODY.decode(),
                GOLDEN_CALLBACK_SIGNATURE,
            )
        )

    def test_a_tampered_body_or_another_url_is_refused(self):
        tampered = GOLDEN_CALLBACK_BODY.replace(b'"111"', b'"112"')
        verify = verify_callback_signature
        sig = GOLDEN_CALLBACK_SIGNATURE
        self.assertFalse(verify(FIXTURE_PUBLIC_KEY_PEM, GOLDEN_CALLBACK_URL, tampered, sig))
        self.assertFalse(
            verify(FIXTURE_PUBLIC_KEY_PEM, GOLDEN_CALLBACK_URL + "/", GOLDEN_CALLBACK_BODY, sig)
        )

    def test_a_signature_checked_with_another_key_is_refused(self):
        _private, other_public = generate_key_pair()
        self.assertFalse(
            verify_callback_signature(
                other_public, GOLDEN_CALLBACK_URL, GOLDEN_CALLBACK_BODY, GOLDEN_CALLBACK_SIGNATURE
            )
        )

    def test_garbage_never_raises_and_is_refused(self):
        url, body, sig = GOLDEN_CALLBACK_URL, GOLDEN_CALLBACK_BODY, GOLDEN_CALLBACK_SIGNATURE
        for key, signature in [
            (FIXTURE_PUBLIC_KEY_PEM, None),
            (FIXTURE_PUBLIC_KEY_PEM, ""),
            (FIXTURE_PUBLIC_KEY_PEM, "not base64 at all!!"),
            (FIXTURE_PUBLIC_KEY_PEM, "QUJD"),  # valid base64, wrong length
            (FIXTURE_PUBLIC_KEY_PEM, sig[:-8]),
            (FIXTURE_PUBLIC_KEY_PEM, 12345),
            (None, sig),
            ("", sig),
            ("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", sig),
            (FIXTURE_PRIVATE_KEY_PEM, sig),  # a private key is not a public key
        ]:
            with self.subTest(key=str(key)[:30], signature=str(signature)[:30]):
                self.assertFalse(verify_callback_signature(key, url, body, signature))
        self.assertFalse(verify_callback_signature(FIXTURE_PUBLIC_KEY_PEM, None, body, sig))
        self.assertFalse(verify_callback_signature(FIXTURE_PUBLIC_KEY_PEM, url, None, sig))

    def test_a_generated_key_pair_signs_and_verifies(self):
        private_pem, public_pem = generate_key_pair()
        self.assertIn("BEGIN PRIVATE KEY", private_pem)
        self.assertIn("BEGIN PUBLIC KEY", public_pem)
        # A callback signature is the request scheme over "<url>|<body>": load the private
        # key independently and sign that string.
        key = serialization.load_pem_private_key(
            private_pem.encode(), password=None, backend=default_backend()
        )
        raw = key.sign(b"https://a.example/cb|{}", padding.PKCS1v15(), hashes.SHA256())
        signature = base64.b64encode(raw).decode()
        self.assertTrue(
            verify_callback_signature(public_pem, "https://a.example/cb", b"{}", signature)
        )
        self.assertFalse(
            verify_callback_signature(public_pem, "https://a.example/cb", b"{ }", signature)
        )


# ------------------------------------------------------------- errors from a scripted server


class TestErrorParsing(unittest.TestCase):
    def test_the_nested_error_shape_is_parsed(self):
        error_body = {
            "error": {
                "class": "ConnectionCannotBeRefreshed",
                "message": "Too soon.",
                "documentation_url": "https://docs.saltedge.com/x",
                "next_refresh_possible_at": "2024-05-01T10:00:00Z",
            },
            "request": {"connection_id": "5"},
        }
        with ScriptedServer((406, {"X-Request-Id": "req-1"}, error_body)) as server:
            with self.assertRaises(SaltEdgeError) as caught:
                scripted_client(server).background_refresh("5")
        error = caught.exception
        self.assertEqual(error.status, 406)
        self.assertEqual(error.error_class, "ConnectionCannotBeRefreshed")
        self.assertEqual(error.message, "Too soon.")
        self.assertEqual(error.next_refresh_possible_at, "2024-05-01T10:00:00Z")
        self.assertEqual(error.request_id, "req-1")
        self.assertEqual(error.documentation_url, "https://docs.saltedge.com/x")
        self.assertTrue(error.is_refresh_not_now)
        self.assertFalse(error.is_retryable)
        self.assertEqual(len(server.requests), 1)
        self.assertIn("ConnectionCannotBeRefreshed", str(error))
        self.assertIn("Too soon.", str(error))
        self.assertIn("POST /connections/5/background_refresh", str(error))

    def test_the_flat_error_shape_is_parsed(self):
        flat = {"error_class": "AispConsentExpired", "error_message": "Consent expired."}
        with ScriptedServer((406, {}, flat)) as server:
            with self.assertRaises(SaltEdgeError) as caught:
                list(scripted_client(server).list_accounts("7"))
        error = caught.exception
        self.assertEqual((error.status, error.error_class), (406, "AispConsentExpired"))
        self.assertEqual(error.message, "Consent expired.")
        self.assertTrue(error.is_consent_expired)
        self.assertTrue(error.needs_reconnect)
        self.assertFalse(error.is_connection_not_found)

    def test_a_client_error_is_not_retried_and_an_unparsable_one_keeps_its_status(self):
        with ScriptedServer((404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>")) as server:
            client = scripted_client(server)
            with self.assertRaises(SaltEdgeError) as caught:
                client.get_connection("9")
        self.assertEqual(caught.exception.status, 404)
        self.assertIsNone(caught.exception.error_class)
        self.assertEqual(len(server.requests), 1)
        self.assertEqual(client._sleep.delays, [])

    def test_a_disabled_connection_needs_a_reconnect_but_is_no_expired_consent(self):
        body = {"error": {"class": "ConnectionDisabled", "message": "Disabled."}}
        with ScriptedServer((406, {}, body)) as server:
            with self.assertRaises(SaltEdgeError) as caught:
                scripted_client(server).background_refresh("3")
        self.assertTrue(caught.exception.needs_reconnect)
        self.assertFalse(caught.exception.is_consent_expired)

    def test_the_predicates_follow_the_error_classes(self):
        def error(error_class, status=400):
            return SaltEdgeError("x", status=status, error_class=error_class)

        self.assertTrue(error("ConnectionNotFound", 404).is_connection_not_found)
        for name in ("AispConsentExpired", "AispConsentRevoked", "AispConsentNotFound"):
            self.assertTrue(error(name).is_consent_expired, name)
        # Limits and a bank or Salt Edge that is down: the next scheduled run tries again.
        for name in (
            "RateLimitExceeded",
            "TooManyRequests",
            "BackgroundFetchLimitExceeded",
            "ProviderUnavailable",
            "ProviderError",
            "ProviderDisabled",
        ):
            self.assertEqual(error(name).meaning, RETRY_LATER, name)
        self.assertEqual(error(None, 429).meaning, RETRY_LATER)
        self.assertEqual(error(None, 503).meaning, RETRY_LATER)
        self.assertEqual(error("ConnectionNotFound", 404).meaning, USER_MUST_ACT)
        self.assertTrue(error("WrongSecret", 401).is_configuration_error)
        self.assertFalse(error("BackgroundFetchLimitExceeded", 429).is_retryable)
        self.assertTrue(error("TooManyRequests", 429).is_retryable)

    def test_every_known_error_class_has_one_meaning_and_a_sentence(self):
        meanings = {IN_PROGRESS, RETRY_LATER, USER_MUST_ACT, SETUP}
        for error_class, (meaning, sentence) in ERRORS.items():
            self.assertIn(meaning, meanings, error_class)
            self.assertTrue(sentence.endswith((".", "”.")), error_class)
        in_progress = SaltEdgeError("x", status=409, error_class="ConnectionAlreadyProcessing")
        self.assertTrue(in_progress.is_in_progress)
        self.assertFalse(in_progress.is_retryable)
        self.assertEqual(SaltEdgeError("x", status=502).meaning, RETRY_LATER)
        self.assertEqual(SaltEdgeError("x", status=418, error_class="Teapot").meaning, UNKNOWN)
        self.assertTrue(SaltEdgeError("x", status=406, error_class="AispConsentRevoked").needs_user)
        self.assertTrue(
            SaltEdgeError("x", status=406, error_class="AispConsentRevoked").is_consent_revoked
        )

    def test_a_customer_id_given_as_customer_id_is_returned_as_id(self):
        body = {"data": {"customer_id": "333", "identifier": "company-1"}}
        with ScriptedServer((200, {}, body)) as server:
            customer = scripted_client(server).create_customer("company-1")
        self.assertEqual(customer["id"], "333")
        self.assertEqual(json.loads(server.requests[0][3]), {"data": {"identifier": "company-1"}})

    def test_retry_after_as_an_http_date_is_honoured_and_capped(self):
        later = email.utils.format_datetime(
            datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
            usegmt=True,
        )
        with ScriptedServer(
            (429, {"Retry-After": later}, {}), (200, {}, {"data": {"id": "1"}})
        ) as server:
            client = scripted_client(server, backoff_max=12)
            self.assertEqual(client.get_connection("1"), {"id": "1"})
        self.assertEqual(client._sleep.delays, [12])

    def test_backoff_grows_exponentially_with_jitter_within_bounds(self):
        with ScriptedServer((502, {}, b"bad gateway")) as server:
            client = scripted_client(server, max_retries=4, backoff_base=0.5, backoff_max=3)
            with self.assertRaises(SaltEdgeError) as caught:
                client.get_connection("1")
        self.assertEqual(caught.exception.status, 502)
        self.assertEqual(len(server.requests), 5)
        for delay, ceiling in zip(client._sleep.delays, (0.5, 1, 2, 3), strict=True):
            self.assertGreaterEqual(delay, ceiling / 2)
            self.assertLessEqual(delay, ceiling)

    def test_a_json_list_where_an_object_is_expected_is_an_invalid_response(self):
        with ScriptedServer((200, {}, [1, 2])) as server:
            client = scripted_client(server, max_retries=1)
            with self.assertRaises(SaltEdgeError) as caught:
                client.get_connection("1")
        self.assertEqual(caught.exception.error_class, "InvalidResponse")
        self.assertEqual(len(server.requests), 2)

    def test_connect_options_are_sent_in_the_contract_shape(self):
        answer = {"data": {"expires_at": "2030-01-01T00:00:00Z", "connect_url": "https://w/x"}}
        with ScriptedServer((200, {}, answer)) as server:
            session = scripted_client(server).create_connect_session(
                "cust-1",
                "https://odoo.example.com/back",
                provider_code="kbc_sandbox_be",
                period_days=90,
                from_date=datetime.date(2024, 1, 31),
                locale="nl",
                include_sandboxes=True,
                custom_fields={"journal_id": 4},
            )
        self.assertEqual(session["connect_url"], "https://w/x")
        method, path, _headers, body = server.requests[0]
        self.assertEqual((method, path), ("POST", "/api/v6/connections/connect"))
        self.assertEqual(
            json.loads(body),
            {
                "data": {
                    "return_connection_id": True,
                    "return_error_class": True,
                    "customer_id": "cust-1",
                    "consent": {
                        "scopes": ["accounts", "transactions"],
                        "period_days": 90,
                        "from_date": "2024-01-31",
                    },
                    "attempt": {
                        "return_to": "https://odoo.example.com/back",
                        "fetch_scopes": ["accounts", "transactions"],
                        "from_date": "2024-01-31",
                        "locale": "nl",
                        "custom_fields": {"journal_id": 4},
                    },
                    "provider": {"code": "kbc_sandbox_be", "include_sandboxes": True},
                }
            },
        )

    def test_a_refused_connection_is_a_network_error_without_request_details(self):
        with ScriptedServer((200, {}, {})) as server:
            url = server.url
        client = SaltEdgeClient(url, APP_ID, SECRET, max_retries=2, sleep=RecordingSleep())
        with self.assertRaises(SaltEdgeError) as caught:
            client.get_connection("1")
        error = caught.exception
        self.assertEqual(error.error_class, "NetworkError")
        self.assertIsNone(error.status)
        self.assertEqual(len(client._sleep.delays), 2)
        self.assertIsNone(error.__cause__)
        self.assertTrue(error.__suppress_context__)
        self.assertNotIn(SECRET, str(error))

    def test_a_redirect_is_not_followed_so_the_secret_stays_home(self):
        with ScriptedServer((200, {}, {"data": {"id": "1"}})) as elsewhere:
            moved = (302, {"Location": f"{elsewhere.url}/connections/1"}, b"")
            with ScriptedServer(moved) as server:
                with self.assertRaises(SaltEdgeError) as caught:
                    scripted_client(server).get_connection("1")
        self.assertEqual(
            (caught.exception.status, caught.exception.error_class), (302, "UnexpectedRedirect")
        )
        self.assertEqual(len(server.requests), 1)
        self.assertEqual(elsewhere.requests, [])

    def test_an_error_message_echoing_the_secret_is_scrubbed(self):
        body = {"error": {"class": "WrongSecret", "message": f"Secret {SECRET} is wrong."}}
        with ScriptedServer((401, {}, body)) as server:
            with self.assertRaises(SaltEdgeError) as caught:
                scripted_client(server).get_connection("1")
        self.assertTrue(caught.exception.is_configuration_error)
        self.assertNotIn(SECRET, str(caught.exception))
        self.assertNotIn(SECRET, caught.exception.message)


# ---------------------------------------------------- bounds on pages and on answers' sizes

# More pages than any listing here could want: a client stuck in a loop yields this many
# before the test gives up on it, instead of looping for ever.
ENOUGH_PAGES = 50
SMALL_ANSWER = 1000
EXACTLY_THE_CAP = json.loads(json_of_size(SMALL_ANSWER))


class TestBoundedPagesAndAnswers(unittest.TestCase):
    def test_pages_going_round_in_a_circle_stop_once_the_circle_closes(self):
        # None -> A -> B -> A -> B ...: each list of the client meets the same circle.
        circle = {None: "A", "A": "B", "B": "A"}
        with ScriptedServer(listing(circle.get)) as server:
            client = scripted_client(server)
            # One item a page: as many items as pages.
            for name, items in (
                ("transactions", transactions_of(client, "c", "a")),
                ("accounts", client.list_accounts("c")),
                ("consents", client.list_consents("c")),
                ("connections", client.list_connections("c")),
            ):
                with self.subTest(name):
                    server.requests.clear()
                    read = []
                    with self.assertRaises(SaltEdgeError) as caught:
                        for item in itertools.islice(items, ENOUGH_PAGES):
                            read.append(item["id"])
                    error = caught.exception
                    self.assertEqual(error.error_class, "PageCycle")
                    self.assertIn(
                        "Salt Edge's pages went round in a circle (next_id A was already read)",
                        str(error),
                    )
                    self.assertFalse(error.is_retryable)
                    # A and B were read once each; B's page, which points back, is not given.
                    self.assertEqual(server.from_ids(), [None, "A", "B"])
                    self.assertEqual(read, [None, "A"])

    def test_a_cursor_that_does_not_move_is_a_circle_of_one_page(self):
        with ScriptedServer(listing(lambda from_id: "1")) as server:
            pages = scripted_client(server).iter_transaction_pages("c", "a", from_id="1")
            with self.assertRaises(SaltEdgeError) as caught:
                list(itertools.islice(pages, ENOUGH_PAGES))
        self.assertEqual(caught.exception.error_class, "PageCycle")
        self.assertEqual(len(server.requests), 1)

    def test_a_list_longer_than_max_pages_stops_there(self):
        def endless(from_id):
            return str(int(from_id or 0) + 1)

        with ScriptedServer(listing(endless)) as server:
            client = scripted_client(server, max_pages=3)
            pages = client.iter_transaction_pages("c", "a")
            read = []
            with self.assertRaises(SaltEdgeError) as caught:
                for items, _next_id in itertools.islice(pages, ENOUGH_PAGES):
                    read += [item["id"] for item in items]
        error = caught.exception
        self.assertEqual(error.error_class, "TooManyPages")
        self.assertIn("Salt Edge's list has more than 3 pages", str(error))
        self.assertFalse(error.is_retryable)
        # Three pages read and given, the fourth never asked for.
        self.assertEqual(read, [None, "1", "2"])
        self.assertEqual(server.from_ids(), [None, "1", "2"])

        # A list of exactly max_pages pages is whole.
        with ScriptedServer(
            listing(lambda from_id: None if from_id == "2" else endless(from_id))
        ) as server:
            client = scripted_client(server, max_pages=3)
            self.assertEqual([t["id"] for t in transactions_of(client, "c", "a")], [None, "1", "2"])

    def assert_too_large(self, server, client):
        with self.assertRaises(SaltEdgeError) as caught:
            client.get_connection("1")
        error = caught.exception
        self.assertEqual((error.error_class, error.status), ("ResponseTooLarge", 200))
        self.assertIn("Salt Edge's answer is larger than 1,000 bytes", str(error))
        self.assertFalse(error.is_retryable)
        self.assertEqual(len(server.requests), 1)

    def test_an_answer_larger_than_the_cap_is_refused_after_one_byte_more_than_the_cap(self):
        # The server sends one byte more than the cap, then nothing: a client that reads
        # further waits for its read timeout instead of refusing the answer.
        big = json_of_size(100 * SMALL_ANSWER)
        for name, streamed in (
            ("with its Content-Length", Streamed(big, stall_after=SMALL_ANSWER + 1)),
            (
                "chunked, without a length",
                Streamed(big, chunk_size=300, stall_after=SMALL_ANSWER + 1),
            ),
        ):
            with self.subTest(name), ScriptedServer((200, {}, streamed)) as server:
                client = scripted_client(
                    server, max_response_bytes=SMALL_ANSWER, max_retries=1, timeout=(2, 2)
                )
                self.assert_too_large(server, client)
        # An answer of exactly the cap is read whole, with or without its length.
        for streamed in (
            Streamed(json_of_size(SMALL_ANSWER)),
            Streamed(json_of_size(SMALL_ANSWER), chunk_size=300),
        ):
            with ScriptedServer((200, {}, streamed)) as server:
                client = scripted_client(server, max_response_bytes=SMALL_ANSWER)
                self.assertEqual(client.get_connection("1"), EXACTLY_THE_CAP["data"])

    def test_a_compressed_answer_counts_as_decoded_and_a_small_one_is_read_whole(self):
        gzipped = {"Content-Encoding": "gzip"}
        small = gzip.compress(json_of_size(SMALL_ANSWER))
        with ScriptedServer((200, gzipped, small)) as server:
            client = scripted_client(server, max_response_bytes=SMALL_ANSWER)
            self.assertEqual(client.get_connection("1"), EXACTLY_THE_CAP["data"])
        # A megabyte that travels as about a kilobyte.
        bomb = gzip.compress(json_of_size(1000 * SMALL_ANSWER))
        self.assertLess(len(bomb), 2 * SMALL_ANSWER)
        with ScriptedServer((200, gzipped, bomb)) as server:
            client = scripted_client(server, max_response_bytes=SMALL_ANSWER, max_retries=1)
            self.assert_too_large(server, client)


# ------------------------------------------------------------------------- the sandbox

RETURN_TO = "https://odoo.example.com/saltedge/return"
KBC = "kbc_sandbox_be"
N_BANK = "fakebank_oauth_with_n_transactions_xf"
PAGE_SIZE = 10
N_TRANSACTIONS = 25


def control(server, path, payload=None):
    """Call the sandbox's control API (not Salt Edge's)."""
    if payload is None:
        response = requests.get(f"{server.url}/sandbox/{path}", timeout=5)
    else:
        response = requests.post(f"{server.url}/sandbox/{path}", json=payload, timeout=5)
    response.raise_for_status()
    return response.json()["data"]


class SandboxCase(unittest.TestCase):
    """A sandbox that checks our signatures against the fixture public key."""

    # The client's tests are about the HTTP contract, not about when Salt Edge's fetch
    # ends: the data is there when the widget sends the user back (test_realistic_sandbox
    # covers the fetch that ends later).
    server_options = {"fetch_seconds": 0}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = SandboxServer(
            app_id=APP_ID,
            secret=SECRET,
            client_public_key_pem=FIXTURE_PUBLIC_KEY_PEM,
            page_size=PAGE_SIZE,
            n_transactions=N_TRANSACTIONS,
            **cls.server_options,
        ).start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        super().setUp()
        self.addCleanup(requests.delete, f"{self.server.url}/sandbox/faults", timeout=5)

    def client(self, **kwargs):
        kwargs.setdefault("private_key_pem", FIXTURE_PRIVATE_KEY_PEM)
        kwargs.setdefault("sleep", RecordingSleep())
        kwargs.setdefault("session", RecordingSession())
        kwargs.setdefault("timeout", (2, 10))
        return SaltEdgeClient(self.server.api_url, APP_ID, kwargs.pop("secret", SECRET), **kwargs)

    def connect(self, client, provider_code=KBC, **options):
        """A new customer connected to ``provider_code`` through the widget; its ids."""
        customer = client.create_customer(f"company-{uuid.uuid4().hex}")
        session = client.create_connect_session(
            customer["id"],
            RETURN_TO,
            provider_code=provider_code,
            include_sandboxes=True,
            **options,
        )
        back = complete_connect(session["connect_url"])
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)
        self.assertTrue(back.startswith(RETURN_TO), back)
        return customer["id"], query["connection_id"][0]

    def fault(self, kind, count, **options):
        control(self.server, "faults", {"kind": kind, "count": count, **options})


class TestEndpointsAgainstTheSandbox(SandboxCase):
    def test_every_endpoint_works_with_signed_requests(self):
        client = self.client()
        be_codes = {provider["code"] for provider in client.list_providers(country_code="BE")}
        self.assertIn(KBC, be_codes)
        self.assertNotIn(N_BANK, be_codes)
        # Salt Edge lists its fake banks under the fake country XF, never under BE.
        be_and_fake = {p["code"] for p in client.list_providers("BE", include_sandboxes=True)}
        self.assertNotIn(N_BANK, be_and_fake)
        fake_codes = {p["code"] for p in client.list_providers("XF", include_sandboxes=True)}
        self.assertIn(N_BANK, fake_codes)

        customer = client.create_customer(f"company-{uuid.uuid4().hex}")
        self.assertTrue(customer["id"])
        session = client.create_connect_session(
            customer["id"],
            RETURN_TO,
            provider_code=KBC,
            period_days=90,
            from_date=datetime.date.today() - datetime.timedelta(days=30),
            locale="nl",
            custom_fields={"journal_id": 7},
        )
        self.assertTrue(session["expires_at"])
        back = complete_connect(session["connect_url"])
        connection_id = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)["connection_id"][0]

        connection = client.get_connection(connection_id)
        self.assertEqual(connection["status"], "active")
        self.assertEqual(connection["provider_code"], KBC)
        self.assertEqual(connection["last_attempt"]["custom_fields"], {"journal_id": 7})
        self.assertEqual(connection["last_attempt"]["locale"], "nl")

        (consent,) = client.list_consents(connection_id)
        self.assertEqual(consent["connection_id"], connection_id)
        self.assertEqual(consent["period_days"], 90)
        self.assertTrue(consent["expires_at"])

        accounts = list(client.list_accounts(connection_id))
        self.assertEqual({a["extra"]["iban"] for a in accounts}, set(BE_DEMO_IBANS[KBC]))
        account_id = accounts[0]["id"]
        posted = list(transactions_of(client, connection_id, account_id))
        self.assertTrue(posted)
        self.assertEqual({t["account_id"] for t in posted}, {account_id})
        self.assertEqual({t["status"] for t in posted}, {"posted"})
        pending = list(transactions_of(client, connection_id, account_id, pending=True))
        self.assertEqual({t["status"] for t in pending} - {"pending"}, set())

        with self.assertRaises(SaltEdgeError) as caught:
            client.background_refresh(connection_id)
        self.assertTrue(caught.exception.is_refresh_not_now)
        self.assertEqual(
            caught.exception.next_refresh_possible_at, connection["next_refresh_possible_at"]
        )
        control(self.server, "clock", {"advance_seconds": 3600})
        refreshed = client.background_refresh(connection_id)
        self.assertEqual(refreshed["id"], connection_id)
        self.assertIn(connection_id, {c["id"] for c in client.list_connections(customer["id"])})

        interactive = client.refresh(connection_id, RETURN_TO, locale="nl")
        back = complete_connect(interactive["connect_url"])
        self.assertIn(f"connection_id={connection_id}", back)

        again = client.reconnect(connection_id, RETURN_TO, period_days=60)
        back = complete_connect(again["connect_url"])
        self.assertIn(f"connection_id={connection_id}", back)
        consents = list(client.list_consents(connection_id))
        self.assertEqual(len(consents), 2)

        removed = client.delete_connection(connection_id)
        self.assertTrue(removed["removed"])
        self.assertEqual(client.get_connection(connection_id)["status"], "disabled")
        with self.assertRaises(SaltEdgeError) as caught:
            list(client.list_accounts(connection_id))
        self.assertTrue(caught.exception.needs_reconnect)

        # Every one of those API calls was signed, and the sandbox checked each signature.
        sent = client.session.sent
        self.assertGreater(len(sent), 10)
        self.assertTrue(all(request.headers.get("Signature") for request in sent))

    def test_connect_and_reconnect_ask_for_the_return_hints_and_automatic_refresh(self):
        client = self.client()
        customer = client.create_customer(f"company-{uuid.uuid4().hex}")
        client.create_connect_session(
            customer["id"],
            RETURN_TO,
            provider_code=KBC,
            custom_fields={"odoo": "ref-1"},
            automatic_refresh=True,
        )
        back = complete_connect(
            client.create_connect_session(customer["id"], RETURN_TO)["connect_url"],
            provider_code=KBC,
        )
        connection_id = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)["connection_id"][0]
        client.reconnect(connection_id, RETURN_TO, automatic_refresh=False)
        bodies = [
            json.loads(request.body)["data"]
            for request in client.session.sent
            if request.method == "POST" and request.path_url.endswith(("/connect", "/reconnect"))
        ]
        self.assertEqual(len(bodies), 3)
        for data in bodies:
            self.assertIs(data["return_connection_id"], True)
            self.assertIs(data["return_error_class"], True)
        self.assertEqual(bodies[0]["attempt"]["custom_fields"], {"odoo": "ref-1"})
        self.assertEqual([data.get("automatic_refresh") for data in bodies], [True, None, False])

    def test_a_query_string_with_characters_to_escape_is_signed_as_sent(self):
        client = self.client()
        # Spaces, "+", "/", "&" and non-ASCII: what requests would re-quote if we let it.
        self.assertEqual(list(client.list_providers(country_code="b é+/&=~x")), [])
        (sent,) = client.session.sent
        self.assertEqual(
            urllib.parse.urlsplit(sent.url).query, "country_code=b+%C3%A9%2B%2F%26%3D~x"
        )

    def test_a_request_signed_with_another_key_is_refused(self):
        other_private, _other_public = generate_key_pair()
        client = self.client(private_key_pem=other_private)
        with self.assertRaises(SaltEdgeError) as caught:
            client.get_connection("1")
        error = caught.exception
        self.assertEqual((error.status, error.error_class), (401, "SignatureNotMatch"))
        self.assertTrue(error.is_configuration_error)
        self.assertEqual(len(client.session.sent), 1)

    def test_an_unsigned_request_is_refused_when_the_app_has_a_key(self):
        with self.assertRaises(SaltEdgeError) as caught:
            self.client(private_key_pem=None).get_connection("1")
        self.assertEqual(caught.exception.error_class, "MissingSignature")

    def test_a_wrong_secret_is_refused(self):
        with self.assertRaises(SaltEdgeError) as caught:
            list(self.client(secret="not-the-secret").list_providers())
        self.assertEqual(
            (caught.exception.status, caught.exception.error_class), (401, "WrongSecret")
        )
        self.assertNotIn("not-the-secret", str(caught.exception))

    def test_an_unknown_connection_is_connection_not_found(self):
        with self.assertRaises(SaltEdgeError) as caught:
            self.client().get_connection("999999999")
        self.assertEqual(caught.exception.status, 404)
        self.assertTrue(caught.exception.is_connection_not_found)
        self.assertFalse(caught.exception.is_retryable)

    def test_an_identifier_used_twice_is_a_duplicated_customer(self):
        client = self.client()
        identifier = f"company-{uuid.uuid4().hex}"
        client.create_customer(identifier)
        with self.assertRaises(SaltEdgeError) as caught:
            client.create_customer(identifier)
        self.assertEqual(
            (caught.exception.status, caught.exception.error_class), (409, "DuplicatedCustomer")
        )
        self.assertEqual(len(client.session.sent), 2)

    def test_transactions_come_page_by_page_in_order_without_duplicates(self):
        client = self.client()
        _customer_id, connection_id = self.connect(client, N_BANK)
        (account,) = client.list_accounts(connection_id)
        pages = list(client.iter_transaction_pages(connection_id, account["id"]))
        self.assertEqual([len(items) for items, _ in pages], [10, 10, 5])
        self.assertIsNone(pages[-1][1])
        self.assertEqual(pages[0][1], pages[1][0][0]["id"])
        ids = [int(t["id"]) for items, _next_id in pages for t in items]
        self.assertEqual(len(ids), N_TRANSACTIONS)
        self.assertEqual(ids, sorted(set(ids)))

        # A stored cursor resumes from there.
        resumed = transactions_of(client, connection_id, account["id"], from_id=pages[0][1])
        self.assertEqual([int(t["id"]) for t in resumed], ids[PAGE_SIZE:])

    def test_a_list_is_a_generator_that_fetches_one_page_at_a_time(self):
        client = self.client()
        _customer_id, connection_id = self.connect(client, N_BANK)
        (account,) = client.list_accounts(connection_id)
        before = len(client.session.sent)
        pages = client.iter_transaction_pages(connection_id, account["id"])
        self.assertEqual(len(client.session.sent), before)
        self.assertEqual(len(next(pages)[0]), PAGE_SIZE)
        self.assertEqual(len(client.session.sent), before + 1)
        next(pages)
        self.assertEqual(len(client.session.sent), before + 2)


class TestConsentExpiry(SandboxCase):
    """Its own sandbox: moving the clock by months must not disturb the other tests."""

    def test_after_the_consent_ends_reading_and_refreshing_say_consent_expired(self):
        client = self.client()
        _customer_id, connection_id = self.connect(client, period_days=90)
        (consent,) = client.list_consents(connection_id)
        control(self.server, "clock", {"advance_days": 91})
        self.assertEqual(client.get_connection(connection_id)["status"], "inactive")
        for call in (
            lambda: client.background_refresh(connection_id),
            lambda: list(client.list_accounts(connection_id)),
        ):
            with self.assertRaises(SaltEdgeError) as caught:
                call()
            self.assertEqual(caught.exception.error_class, "AispConsentExpired")
            self.assertTrue(caught.exception.is_consent_expired)
            self.assertTrue(caught.exception.needs_reconnect)
            self.assertFalse(caught.exception.is_retryable)
            self.assertIn(consent["expires_at"], caught.exception.message)


class TestRetries(SandboxCase):
    def test_a_429_is_retried_after_the_retry_after_delay(self):
        client = self.client()
        self.fault("429", 1, retry_after=7)
        providers = list(client.list_providers("BE"))
        self.assertTrue(providers)
        self.assertEqual(client._sleep.delays[0], 7)
        self.assertEqual(len(client.session.sent), 2)

    def test_a_retry_after_longer_than_backoff_max_is_capped(self):
        client = self.client(backoff_max=3)
        self.fault("429", 1, retry_after=120)
        self.assertTrue(list(client.list_providers("BE")))
        self.assertEqual(client._sleep.delays[0], 3)

    def test_each_retry_is_signed_again_with_a_fresh_expires_at(self):
        sleep = RecordingSleep()
        client = self.client(sleep=sleep, clock=sleep.clock)
        self.fault("429", 2, retry_after=20)
        customer = client.create_customer(f"company-{uuid.uuid4().hex}")
        self.assertTrue(customer["id"])
        sent = client.session.sent
        self.assertEqual(len(sent), 3)
        expires = [int(request.headers["Expires-at"]) for request in sent]
        self.assertGreaterEqual(expires[1] - expires[0], 19)
        self.assertGreaterEqual(expires[2] - expires[1], 19)
        self.assertEqual(len({request.headers["Signature"] for request in sent}), 3)
        self.assertEqual(len({request.body for request in sent}), 1)

    def test_five_500s_raise_after_the_bounded_number_of_tries(self):
        client = self.client(max_retries=4)
        self.fault("500", 5)
        with self.assertRaises(SaltEdgeError) as caught:
            client.get_connection("1")
        error = caught.exception
        self.assertEqual((error.status, error.error_class), (500, "InternalServerError"))
        self.assertEqual(error.meaning, RETRY_LATER)
        self.assertEqual(len(client.session.sent), 5)
        self.assertEqual(len(client._sleep.delays), 4)
        log = control(self.server, "requests?limit=5")
        self.assertEqual([entry["fault"] for entry in log], ["500"] * 5)

    def test_four_500s_then_an_answer_succeed(self):
        client = self.client(max_retries=4)
        self.fault("500", 4)
        self.assertTrue(list(client.list_providers("BE")))
        self.assertEqual(len(client._sleep.delays), 4)

    def test_a_slow_answer_times_out_in_bounded_time(self):
        client = self.client(timeout=(2, 0.3), max_retries=1)
        self.fault("timeout", 2, delay=2)
        started = time.monotonic()
        with self.assertRaises(SaltEdgeError) as caught:
            client.get_connection("1")
        elapsed = time.monotonic() - started
        self.assertEqual(caught.exception.error_class, "Timeout")
        self.assertIsNone(caught.exception.status)
        self.assertEqual(len(client.session.sent), 2)
        self.assertLess(elapsed, 1.5)

    def test_a_garbage_body_raises_invalid_response_after_the_retries(self):
        client = self.client(max_retries=2)
        self.fault("garbage", 3)
        with self.assertRaises(SaltEdgeError) as caught:
            client.get_connection("1")
        self.assertEqual(caught.exception.error_class, "InvalidResponse")
        self.assertEqual(caught.exception.status, 200)
        self.assertEqual(len(client.session.sent), 3)

    def test_a_truncated_body_is_retried(self):
        client = self.client()
        self.fault("truncated", 1)
        self.assertTrue(list(client.list_providers("BE")))
        self.assertEqual(len(client.session.sent), 2)

    def test_a_client_error_is_not_retried(self):
        client = self.client()
        with self.assertRaises(SaltEdgeError):
            client.get_connection("999999999")
        self.assertEqual((len(client.session.sent), client._sleep.delays), (1, []))


class ListHandler(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self, level):
        super().__init__(level)
        self.records = []

    def emit(self, record):
        self.records.append(record)


class TestNothingSecretLeaks(SandboxCase):
    def test_secret_and_signatures_stay_out_of_logs_and_error_messages(self):
        root = logging.getLogger()
        handler = ListHandler(logging.DEBUG)
        records = handler.records
        handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        self.addCleanup(root.setLevel, old_level)
        self.addCleanup(root.removeHandler, handler)

        client = self.client()
        # pytest-odoo puts the "odoo" logger at CRITICAL; our module logs under it there.
        old_client_level = client.logger.level
        client.logger.setLevel(logging.DEBUG)
        self.addCleanup(client.logger.setLevel, old_client_level)
        errors = []
        list(client.list_providers("BE"))
        self.fault("429", 1, retry_after=1)
        self.fault("500", 4)
        for call in (
            lambda: client.get_connection("1"),  # a 429, then four 500s: five tries
            lambda: client.get_connection("999999999"),
            lambda: self.client(private_key_pem=generate_key_pair()[0]).get_connection("1"),
            lambda: self.client(timeout=(2, 0.2), max_retries=0).get_connection("1"),
        ):
            if len(errors) == 3:
                self.fault("timeout", 1, delay=1)
            with self.assertRaises(SaltEdgeError) as caught:
                call()
            errors.append(caught.exception)

        texts = [handler.format(r) for r in records if ".sandbox" not in r.name]
        self.assertTrue(any("GET /providers" in text for text in texts), texts)
        self.assertTrue(any("try 2 of 5" in text for text in texts), texts)
        signatures = {r.headers["Signature"] for r in client.session.sent}
        self.assertGreaterEqual(len(signatures), 3)
        for text in texts + [str(error) for error in errors] + [repr(client)]:
            self.assertNotIn(SECRET, text)
            self.assertNotIn("PRIVATE KEY", text)
            for signature in signatures:
                self.assertNotIn(signature, text)
        self.assertEqual(
            [error.error_class for error in errors],
            ["InternalServerError", "ConnectionNotFound", "SignatureNotMatch", "Timeout"],
        )

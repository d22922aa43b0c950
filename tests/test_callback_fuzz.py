"""Hostile POSTs to Salt Edge's callback route, generated from a seed.

Well over a thousand requests that Salt Edge never sent (missing, forged, cut or misplaced
signatures, cut or oversized bodies, bodies that are no JSON or JSON of every wrong shape,
unknown kinds, methods and content types) and callbacks Salt Edge did sign that must still
change nothing (replays of callbacks already handled, real callbacks signed with a time
Odoo does not accept, unknown connection ids, another customer's or another company's
ids). Each must get a 4xx or a harmless 200 without a traceback, and afterwards the
database is as it was, row for row.

A failure names the seed and the request's number: ``FUZZ_SEED`` reruns the same set.
"""

import base64
import datetime
import hashlib
import json
import logging
import os
import random
import re
import time

import requests

from odoo.tests import tagged

from ..models import const
from ..saltedge_client import generate_key_pair
from ..sandbox import signing
from .common import CALLBACKS_PER_SUCCESS, INSTANT_FETCH, BankConnectionHttpCase

_logger = logging.getLogger(__name__)

SEED = int(os.environ.get("FUZZ_SEED", "20261125"))
MAX_CALLBACK_BYTES = 64 * 1024

# The tables a callback could touch, each row as an md5 of its whole content: a changed
# value shows even where no write_date moves.
SNAPSHOT_QUERIES = {
    "account.bank.connection": "SELECT id, md5(t::text) FROM account_bank_connection t",
    "account.bank.connection.account": (
        "SELECT id, md5(t::text) FROM account_bank_connection_account t"
    ),
    "account.bank.callback": "SELECT id, md5(t::text) FROM account_bank_callback t",
    "account.bank.statement.line": "SELECT id, md5(t::text) FROM account_bank_statement_line t",
    "account.bank.import.run": "SELECT id, md5(t::text) FROM account_bank_import_run t",
    "mail.message on connections": (
        "SELECT id, md5(t::text) FROM mail_message t WHERE model = 'account.bank.connection'"
    ),
    "mail.activity on connections": (
        "SELECT id, md5(t::text) FROM mail_activity t WHERE res_model = 'account.bank.connection'"
    ),
    "ir.cron.trigger": "SELECT id, md5(t::text) FROM ir_cron_trigger t",
}


# What a correctly signed callback sent outside the time Odoo accepts answers, and its
# result in the ledger.
REFUSED = ("too old", "too new", "no time")


def parsed_or_400(body):
    """What a signed body should get: 400 when it is no JSON (a UTF-8 BOM before it is
    JSON to Python, a raw lone surrogate too), else a harmless 200."""
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return {400}
    return {200}


@tagged("post_install", "-at_install")
class TestCallbackFuzzing(BankConnectionHttpCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py
    """One real connection per company, then the hostile requests against them."""

    def setUp(self):
        super().setUp()
        self.reset_sandbox()
        self.rng = random.Random(SEED)
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.http = requests.Session()
        self.other_key = signing.load_private_key(generate_key_pair()[0])
        self.other_company = self.env["res.company"].create(
            {"name": "Andere Firma BV", "country_id": self.env.ref("base.be").id}
        )
        self.env.user.company_ids |= self.other_company
        self.connection = self.connected("kbc_sandbox_be")
        self.other_connection = self.connected("belfius_sandbox_be", company=self.other_company)
        self.assertNotEqual(
            self.connection.saltedge_customer_id, self.other_connection.saltedge_customer_id
        )
        self.delivered = self.sandbox_get("callbacks")
        self.assertEqual(len(self.delivered), 2 * CALLBACKS_PER_SUCCESS)
        self.assertEqual({record["status"] for record in self.delivered}, {200})

    # --- helpers ---------------------------------------------------------------------

    def url(self, kind):
        return f"{self.base_url()}{const.CALLBACK_ROUTE}/{kind}"

    def salt_edge_signature(self, url, body):
        return signing.sign(self.sandbox.app.private_key, signing.callback_message(url, body))

    def fresh_meta(self):
        """Salt Edge's meta of a callback sent now: Odoo refuses older than a day."""
        return {"version": "6", "time": self.started.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def document(self, data, meta=None):
        meta = self.fresh_meta() if meta is None else meta
        return json.dumps({"data": data, "meta": meta}, separators=(",", ":")).encode()

    def snapshot(self):
        self.env.flush_all()
        state = {}
        for name, query in SNAPSHOT_QUERIES.items():
            self.env.cr.execute(query + " ORDER BY id")
            state[name] = dict(self.env.cr.fetchall())
        return state

    def delivered_bodies(self):
        """The callbacks the sandbox delivered, byte for byte as it sent them (its clock is
        frozen, so the meta time is the clock's)."""
        now = self.sandbox_control("clock")["data"]["now"]
        for record in self.delivered:
            body = json.dumps(
                {"data": record["data"], "meta": {"version": "6", "time": now}},
                separators=(",", ":"),
            ).encode()
            yield record["kind"], body

    # --- what a hostile request looks like -------------------------------------------

    def random_text(self, low=0, high=40):
        alphabet = "abcdefXYZ0123456789 {}[]\":,\\/'é€\u202e\t"
        return "".join(self.rng.choice(alphabet) for _i in range(self.rng.randint(low, high)))

    def wrong_values(self):
        """Values of every wrong type and shape for an id."""
        rng = self.rng
        return [
            None,
            True,
            False,
            0,
            -1,
            rng.randint(10**12, 10**18),
            int("9" * rng.randint(30, 4000)),
            rng.random() * 10 ** rng.randint(0, 300),
            float("1e308"),
            "",
            " ",
            "\u0000",
            f"1\u0000{rng.randint(1, 99)}",
            "\ud800",
            "é" * rng.randint(1, 200),
            "x" * rng.randint(65, 5000),
            "' OR 1=1 --",
            "%" + self.random_text(1, 10),
            self.random_text(),
            [],
            [self.connection.saltedge_connection_id],
            {},
            {"id": self.connection.saltedge_connection_id},
            {"$ne": None},
            [[[[[[{"a": [1, {"b": None}]}]]]]]],
        ]

    def payload_of_wrong_shape(self):
        """A JSON document Salt Edge would never send, as bytes; it may name the real
        connection but never with its own customer."""
        rng = self.rng
        real_id = self.connection.saltedge_connection_id
        wrong = rng.choice(self.wrong_values())
        shapes = [
            lambda: [],
            lambda: [self.connection.saltedge_connection_id],
            lambda: "success",
            lambda: None,
            lambda: rng.randint(-(10**9), 10**9),
            lambda: rng.random(),
            lambda: {},
            lambda: {"data": wrong},
            lambda: {"data": [{"connection_id": real_id}]},
            lambda: {"meta": {"version": "6"}},
            lambda: {"data": {"connection_id": wrong}},
            lambda: {"data": {"connection_id": real_id, "customer_id": wrong}},
            lambda: {"data": {"connection_id": wrong, "customer_id": wrong}},
            lambda: {
                "data": {
                    "connection_id": wrong,
                    "customer_id": self.connection.saltedge_customer_id,
                    "stage": wrong,
                    "error_class": wrong,
                    "error_message": wrong,
                }
            },
            lambda: {"data": {"connection_id": {"nested": [wrong] * rng.randint(1, 50)}}},
            lambda: {"data": {"connection_id": real_id, "customer_id": wrong}, "meta": wrong},
            lambda: {
                "data": {"connection_id": real_id, "customer_id": wrong},
                "meta": {"version": "6", "time": wrong},
            },
        ]
        while True:
            document = rng.choice(shapes)()
            # Most with a fresh time, so they reach the handler's own checks; the others
            # are refused for their time first.
            if isinstance(document, dict) and "meta" not in document and rng.random() < 0.8:
                document["meta"] = self.fresh_meta()
            text = json.dumps(document, ensure_ascii=rng.random() < 0.5, allow_nan=True)
            body = text.encode("utf-8", "surrogatepass")
            if len(body) <= MAX_CALLBACK_BYTES:
                return body

    def invalid_json(self):
        rng = self.rng
        valid = self.document({"connection_id": "1", "customer_id": "2"})
        # Deep enough to exhaust Python's recursion, small enough for the size cap.
        depth = rng.randint(2000, 10000)
        choices = [
            b"",
            b"{",
            b"nul",
            b"{'data': 1}",
            b'{"data": {"connection_id": 1,}}',
            b"\xff\xfe\x00{",
            b"\xef\xbb\xbf" + valid,
            bytes(rng.getrandbits(8) for _i in range(rng.randint(1, 300))),
            valid[: rng.randint(1, len(valid) - 1)],
            valid + b"garbage",
            b"[" * depth,
            b"[" * depth + b"]" * depth,
            b'{"a":' * depth + b"1" + b"}" * depth,
            b'"' + b"\\ud800" * 10 + b'"\x00',
        ]
        return rng.choice(choices)

    def requests_to_send(self):
        """Yield ``(category, method, kind, headers, body, expected_statuses)``."""
        rng = self.rng
        real = self.connection
        other = self.other_connection
        kinds = list(const.CALLBACK_KINDS)
        json_type = {"Content-Type": "application/json"}

        def sane_body():
            data = {
                "connection_id": str(rng.randint(1, 10**9)),
                "customer_id": str(rng.randint(1, 10**9)),
                "stage": rng.choice(["start", "fetch_recent", "finish"]),
            }
            return self.document(data)

        def signed(kind, body, url=None):
            return dict(json_type, Signature=self.salt_edge_signature(url or self.url(kind), body))

        for _i in range(80):
            yield "missing signature", "POST", rng.choice(kinds), json_type, sane_body(), {403}
        for _i in range(80):
            kind, body = rng.choice(kinds), sane_body()
            bad = rng.choice(
                [
                    "",
                    "not base64 at all",
                    "=" * rng.randint(1, 10),
                    base64.b64encode(rng.randbytes(256)).decode(),
                    base64.b64encode(rng.randbytes(rng.randint(1, 600))).decode(),
                    "A" * rng.randint(1, 4000),
                    base64.b64encode(hashlib.sha256(body).digest()).decode(),
                    "é€".encode() * 10,
                ]
            )
            yield "bad signature", "POST", kind, dict(json_type, Signature=bad), body, {403}
        for _i in range(60):
            kind, body = rng.choice(kinds), sane_body()
            full = self.salt_edge_signature(self.url(kind), body)
            cut = full[: rng.randint(0, len(full) - 1)]
            yield "truncated signature", "POST", kind, dict(json_type, Signature=cut), body, {403}
        for _i in range(60):
            kind, body = rng.choice(kinds), sane_body()
            forged = signing.sign(self.other_key, signing.callback_message(self.url(kind), body))
            yield "other key", "POST", kind, dict(json_type, Signature=forged), body, {403}
        for _i in range(80):
            kind, body = rng.choice(kinds), sane_body()
            other_url = rng.choice(
                [
                    self.url(rng.choice([k for k in kinds if k != kind])),
                    self.url(kind) + "/",
                    self.url(kind) + "?x=1",
                    self.url(kind).replace("http://", "https://"),
                    self.url(kind).replace("127.0.0.1", "localhost"),
                    f"https://evil.example{const.CALLBACK_ROUTE}/{kind}",
                    self.url(kind.upper()),
                ]
            )
            headers = signed(kind, body, url=other_url)
            yield "signed for another URL", "POST", kind, headers, body, {403}
        for _i in range(60):
            kind, body = rng.choice(kinds), sane_body()
            headers = signed(kind, body)
            cut = body[: rng.randint(0, len(body) - 1)]
            yield "truncated body", "POST", kind, headers, cut, {403}
        for _i in range(20):
            kind = rng.choice(kinds)
            padding = "x" * rng.randint(MAX_CALLBACK_BYTES, 3 * MAX_CALLBACK_BYTES)
            body = self.document({"connection_id": real.saltedge_connection_id, "padding": padding})
            headers = signed(kind, body) if rng.random() < 0.5 else json_type
            yield "huge body", "POST", kind, headers, body, {413}
        for _i in range(100):
            kind, body = rng.choice(kinds), self.invalid_json()
            headers = signed(kind, body)
            yield "invalid JSON (signed)", "POST", kind, headers, body, parsed_or_400(body)
        for _i in range(150):
            kind, body = rng.choice(kinds), self.payload_of_wrong_shape()
            headers = signed(kind, body)
            yield "JSON of wrong types (signed)", "POST", kind, headers, body, parsed_or_400(body)
        for _i in range(80):
            kind = rng.choice(kinds)
            unknown = rng.choice(
                [
                    str(rng.randint(1, 10**12)),
                    rng.randint(1, 10**12),
                    str(int(real.saltedge_connection_id) + rng.randint(1, 1000)),
                    real.saltedge_connection_id + "0",
                    " " + real.saltedge_connection_id,
                    real.saltedge_connection_id + "\n",
                ]
            )
            customer = rng.choice([real.saltedge_customer_id, int(real.saltedge_customer_id)])
            body = self.document(
                {"connection_id": unknown, "customer_id": customer, "stage": "finish"}
            )
            yield "unknown connection id (signed)", "POST", kind, signed(kind, body), body, {200}
        for _i in range(60):
            kind = rng.choice(kinds)
            connection_id, customer_id = rng.choice(
                [
                    (real.saltedge_connection_id, other.saltedge_customer_id),
                    (other.saltedge_connection_id, real.saltedge_customer_id),
                    (real.saltedge_connection_id, str(rng.randint(1, 10**9))),
                    (int(other.saltedge_connection_id), int(real.saltedge_customer_id)),
                ]
            )
            body = self.document(
                {
                    "connection_id": connection_id,
                    "customer_id": customer_id,
                    "stage": "finish",
                    "error_class": "ProviderError",
                    "error_message": "Somebody else's connection.",
                }
            )
            yield "another customer's ids (signed)", "POST", kind, signed(kind, body), body, {200}
        delivered = list(self.delivered_bodies())
        for _i in range(80):
            kind, body = rng.choice(delivered)
            yield "replay (signed)", "POST", kind, signed(kind, body), body, {200}
        for _i in range(60):
            # A real callback of the real connection, as Salt Edge signed it at another
            # time: captured days ago, from a clock far ahead, or without a time.
            kind, body = rng.choice(delivered)
            document = json.loads(body)
            age = rng.choice(
                [
                    datetime.timedelta(seconds=const.CALLBACK_MAX_AGE_SECONDS + 60),
                    datetime.timedelta(days=rng.randint(2, 29)),
                    -datetime.timedelta(seconds=const.CALLBACK_CLOCK_SKEW_SECONDS + 60),
                    -datetime.timedelta(days=rng.randint(1, 400)),
                    None,
                ]
            )
            if age is None:
                document["meta"].pop("time")
            else:
                moment = self.started - age
                document["meta"]["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            body = json.dumps(document, separators=(",", ":")).encode()
            yield "out of its time (signed)", "POST", kind, signed(kind, body), body, {200}
        for _i in range(60):
            kind = rng.choice(
                [
                    "Success",
                    "SUCCESS",
                    "success ",
                    "succes",
                    "interactive",
                    "..",
                    "%2e%2e",
                    "%00",
                    "succ%00ess",
                    "notify%20",
                    "é",
                    "x" * rng.randint(1, 300),
                    self.random_text(1, 20).replace("/", "").replace("?", "") or "x",
                ]
            )
            body = sane_body()
            # A kind name we do not use but Salt Edge might send (v5's interactive) is
            # acknowledged once signed and recorded as ignored; anything else is no route.
            expected = {200} if re.match(const.CALLBACK_KIND_PATTERN, kind) else {404}
            yield "unknown kind", "POST", kind, signed(kind, body), body, expected
        for _i in range(40):
            method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
            kind, body = rng.choice(delivered)
            headers = signed(kind, body)
            yield "wrong method", method, kind, headers, body, {405}
        for _i in range(60):
            kind, body = rng.choice(delivered)
            content_type = rng.choice(
                [
                    None,
                    "text/plain",
                    "application/xml",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=xyz",
                    "application/json; charset=latin-1",
                    "application/octet-stream",
                ]
            )
            headers = {"Signature": self.salt_edge_signature(self.url(kind), body)}
            if content_type:
                headers["Content-Type"] = content_type
            # A real callback under another content type is still a replay, or not read.
            yield "wrong content type", "POST", kind, headers, body, {200, 400, 403, 415}

    # --- the test --------------------------------------------------------------------

    def test_a_thousand_hostile_callbacks_get_4xx_or_a_harmless_200_and_change_nothing(self):
        # The replays are genuine: every delivered callback is in the ledger already.
        ledger = self.env["account.bank.callback"]
        for kind, body in self.delivered_bodies():
            fingerprint = hashlib.sha256(kind.encode() + b"|" + body).hexdigest()
            self.assertTrue(ledger.search_count([("fingerprint", "=", fingerprint)]), kind)
        before = self.snapshot()
        self.env.cr.execute("SELECT max(id) FROM account_bank_callback")
        last_ledger_id = self.env.cr.fetchone()[0]
        failures, counts, accepted = [], {}, {}
        started = time.monotonic()
        for number, (category, method, kind, headers, body, expected) in enumerate(
            self.requests_to_send()
        ):
            counts[category] = counts.get(category, 0) + 1
            response = self.http.request(
                method,
                f"{self.base_url()}{const.CALLBACK_ROUTE}/{kind}",
                data=body,
                headers=headers,
                timeout=30,
                allow_redirects=False,
            )
            text = response.text
            problem = None
            if response.status_code not in expected:
                problem = f"status {response.status_code}, expected {sorted(expected)}"
            elif "Traceback" in text or 'File "' in text:
                problem = "a traceback in the answer"
            elif response.status_code == 200:
                status = response.json().get("status") if method == "POST" else text
                if category.startswith("replay") and status != "duplicate":
                    problem = f"a replay answered {status!r}"
                elif category.startswith("out of its time") and status not in (
                    *REFUSED,
                    "duplicate",
                ):
                    problem = f"a callback out of its time answered {status!r}"
                elif status == "ok" or status in REFUSED:
                    fingerprint = hashlib.sha256(kind.encode() + b"|" + body).hexdigest()
                    accepted[fingerprint] = category
                elif status != "duplicate":
                    problem = f"answer {status!r}"
            if problem:
                failures.append(f"#{number} {category} {method} /{kind[:40]}: {problem}")
        elapsed = time.monotonic() - started
        total = sum(counts.values())
        self.assertGreaterEqual(total, 1000)
        self.assertFalse(
            failures, f"seed {SEED}, {len(failures)} of {total}:\n" + "\n".join(failures[:15])
        )
        self.env.invalidate_all()
        after = self.snapshot()
        # Callbacks Salt Edge did sign are in the ledger once each (so a retry acts once),
        # and acted on nothing: no connection of theirs.
        new_ledger = ledger.search([("id", ">", last_ledger_id)])
        self.assertEqual(set(new_ledger.mapped("fingerprint")), set(accepted))
        self.assertEqual(len(new_ledger), len(accepted))
        self.assertLessEqual(set(new_ledger.mapped("result")), {"ignored", "unknown", *REFUSED})
        self.assertLessEqual(set(REFUSED), set(new_ledger.mapped("result")))
        self.assertTrue(accepted)
        after["account.bank.callback"] = {
            key: value
            for key, value in after["account.bank.callback"].items()
            if key not in new_ledger.ids
        }
        for name in SNAPSHOT_QUERIES:
            self.assertEqual(after[name], before[name], f"{name} changed")
        self.assertEqual(self.connection.state, "connected")
        self.assertEqual(self.other_connection.state, "connected")
        _logger.info(
            "Callback fuzzing, seed %s: %s requests in %.1f s: %s", SEED, total, elapsed, counts
        )

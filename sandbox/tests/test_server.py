"""The sandbox as a program: its settings, its state file across a restart, ``python -m
sandbox``, its demo IBANs and its clock."""

import datetime
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import requests

from sandbox import BE_DEMO_IBANS, SandboxConfig, SandboxServer, complete_connect
from sandbox.tests.common import (
    APP_ID,
    MONDAY_MORNING,
    RETURN_TO,
    SANDBOX_DIR,
    SECRET,
    ApiCase,
    Client,
    mod97_ok,
    query_of,
)


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


class PersistenceTest(ApiCase):
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
            customer_id = self.assert_ok(
                client.call("POST", "/customers", body={"data": {"identifier": "p"}})
            )["data"]["id"]
            body = {
                "data": {
                    "customer_id": customer_id,
                    "consent": {"scopes": ["accounts", "transactions"]},
                    "attempt": {"return_to": RETURN_TO},
                    "provider": {"code": "ing_sandbox_be"},
                    "return_connection_id": True,
                }
            }
            session = self.assert_ok(client.call("POST", "/connections/connect", body=body))["data"]
            connection_id = query_of(complete_connect(session["connect_url"]))["connection_id"]
            before = self.assert_ok(
                client.call("GET", "/transactions", {"connection_id": connection_id})
            )
        with SandboxServer(
            app_id=APP_ID, secret=SECRET, state_path=state, fetch_seconds=0
        ) as server:
            client = Client(server)
            after = self.assert_ok(
                client.call("GET", "/transactions", {"connection_id": connection_id})
            )
            self.assertEqual(after, before)
            connection = self.assert_ok(client.call("GET", f"/connections/{connection_id}"))["data"]
            self.assertEqual(connection["status"], "active")
            again = client.call("POST", "/customers", body={"data": {"identifier": "p"}})
            self.assert_error(again, 409, "DuplicatedCustomer")
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

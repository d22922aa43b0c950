"""Shared fixtures: a real Salt Edge sandbox on a free port, Odoo pointed at it, and the
company's bank journals with the sandbox banks' IBANs; the one connect helper
(``connected``), the imports as a server runs them, the balances on both sides and the
roles of the access tables. Test modules import from here, never from each other."""

import contextlib
import datetime
import os
import time
import unittest
import uuid
from unittest.mock import patch
from urllib.parse import parse_qs, urlparse

import requests

from odoo import SUPERUSER_ID, api
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, TransactionCase, new_test_user

from ..models import const
from ..odoo_series import serve_http_requests_throughout
from ..saltedge_client import SaltEdgeClient, generate_key_pair
from ..sandbox import SandboxServer, complete_connect, witness

SECRET = "test-secret-never-logged"
# A successful connect or refresh: a notify callback for each of six stages, then two
# identical successes (the sandbox imitates Salt Edge's repeats).
CALLBACKS_PER_SUCCESS = 8

KBC_CURRENT = "BE73735012345660"
KBC_SAVINGS = "BE55735065432144"
BELFIUS_CURRENT = "BE56363123456788"
BELFIUS_SAVINGS = "BE23363765432191"
# The sandbox bank whose one account has SANDBOX_N_TRANSACTIONS (``n_transactions``).
N_BANK = "fakebank_oauth_with_n_transactions_xf"


# The tests next to Odoo's Enterprise accounting need these installed with the addon.
ENTERPRISE_MODULES = (
    "account_accountant",
    "account_online_synchronization",
    "account_bank_statement_import_camt",
)


def skip_without_enterprise(env):
    """Skip the calling test class, saying why, unless Odoo's Enterprise accounting is
    installed (the Enterprise pass of make test)."""
    installed = env["ir.module.module"].search(
        [("name", "in", ENTERPRISE_MODULES), ("state", "=", "installed")]
    )
    missing = set(ENTERPRISE_MODULES) - set(installed.mapped("name"))
    if missing:
        raise unittest.SkipTest(
            "Odoo's Enterprise accounting is not installed here (missing: "
            f"{', '.join(sorted(missing))}): these tests run in the Enterprise pass, "
            "ODOO_EDITION=enterprise ODOO_VERSION=19.0 make test."
        )


def first_import(connection):
    """The first import of ``connection`` right after the return from the bank, without
    committing (``_saltedge_first_import_run``); returns the number of statement lines
    it created. A failure is recorded on the connection and its run, not raised."""
    return connection._saltedge_first_import_run().created_count


def import_transactions(connection):
    """One import run of ``connection`` now, as Fetch transactions starts it but without
    committing (``_run_import``); returns the number of statement lines it created.
    Failures are recorded on the connection and its run."""
    connection.ensure_one()
    run, _error = connection.sudo()._run_import("manual")
    return run.created_count


def journal_balance(journal):
    """What ``journal``'s statement lines add up to, rounded to the cent like
    ``remote_balance``."""
    lines = journal.env["account.bank.statement.line"].search([("journal_id", "=", journal.id)])
    return round(sum(lines.mapped("amount")), 2)


def opening_line(accounts):
    """The opening lines the first imports gave ``accounts`` (empty when they gave none):
    the lines whose Salt Edge id is an account's opening key, which no transaction has."""
    keys = [f"opening:{account.saltedge_account_id}" for account in accounts]
    return accounts.env["account.bank.statement.line"].search(
        [("saltedge_transaction_id", "in", keys)]
    )


# The sandbox fetches the way Salt Edge does by default: seconds after the user is back.
# Test classes about something else (access, tokens, callbacks' signatures, the import's
# paging and faults) take this instead, so the data is there when the widget sends the user
# back; test_realistic_sandbox.py and the browser tour test the fetch that ends later.
INSTANT_FETCH = {"fetch_seconds": 0}


class SandboxMixin:
    """Start one sandbox per test class and point Odoo's settings at it."""

    sandbox_kwargs = {}

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        # Odoo's guard on outgoing requests in tests compares the timeout with a number;
        # the Salt Edge client gives requests a (connect, read) pair.
        timeout = kw.get("timeout")
        if isinstance(timeout, tuple):
            kw["timeout"] = max(timeout)
        return super()._request_handler(s, r, **kw)

    @classmethod
    def record_secrets(cls, kind, *values):
        """Tell make test's log scan about secrets (ABC_SECRETS_FILE, when it is set)."""
        witness.record(os.environ.get("ABC_SECRETS_FILE"), kind, *values)

    @classmethod
    def start_sandbox(cls):
        cls.app_private_key, cls.app_public_key = generate_key_pair()
        cls.record_secrets("secret", SECRET)
        cls.record_secrets("private key", *witness.pem_body_lines(cls.app_private_key))
        # The sandbox records its own signing key and every Signature it sends or sees.
        cls.sandbox = SandboxServer(
            app_id="test-app-id",
            secret=SECRET,
            client_public_key_pem=cls.app_public_key,
            **cls.sandbox_kwargs,
        )
        cls.sandbox.start()
        cls.addClassCleanup(cls.sandbox.stop)

    @classmethod
    def configure_odoo(cls, env):
        params = env["ir.config_parameter"].sudo()
        params.set_param(const.PARAM_BASE_URL, cls.sandbox.api_url)
        params.set_param(const.PARAM_APP_ID, "test-app-id")
        credentials = env["account.bank.credential"]
        credentials._set(const.PARAM_SECRET, SECRET)
        credentials._set(const.PARAM_PRIVATE_KEY, cls.app_private_key)
        params.set_param(const.PARAM_PUBLIC_KEY, cls.sandbox.public_key_pem.decode())
        params.set_param(const.PARAM_INCLUDE_SANDBOXES, "True")

    def sandbox_control(self, path, payload=None):
        response = requests.post(
            f"{self.sandbox.url}/sandbox/{path}", json=payload or {}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def sandbox_get(self, path):
        response = requests.get(f"{self.sandbox.url}/sandbox/{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def reset_sandbox(self):
        """Forget every customer and connection, and stop the sandbox clock at the real
        time: consents then end exactly ``period_days`` after the connect."""
        self.sandbox_control("reset")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.sandbox_control("clock", {"now": now, "freeze": True})

    def advance_sandbox_days(self, days):
        return self.sandbox_control("clock", {"advance_days": days})["data"]

    def sandbox_api_requests(self, method=None, path=None):
        """The API requests the sandbox saw, optionally only one method and path."""
        return [
            entry
            for entry in self.sandbox_get("requests")
            if (method is None or entry["method"] == method)
            and (path is None or entry["path"] == f"/api/v6{path}")
        ]

    def remote_transactions(self, connection, account, pending=False):
        """The account's transactions as Salt Edge has them now, straight from the sandbox."""
        client = connection._saltedge_client()
        pages = client.iter_transaction_pages(
            connection.saltedge_connection_id, account.saltedge_account_id, pending=pending
        )
        return [transaction for items, _next_id in pages for transaction in items]

    def remote_balance(self, connection, account):
        """The account's balance as Salt Edge has it now, rounded to the cent like
        ``journal_balance``."""
        client = connection._saltedge_client()
        for item in client.list_accounts(connection.saltedge_connection_id):
            if str(item["id"]) == account.saltedge_account_id:
                return round(item["balance"], 2)
        self.fail(f"Salt Edge does not list the account {account.saltedge_account_id}")

    def wait_for_callbacks(self, count, timeout=20):
        """Wait until the sandbox has delivered ``count`` callbacks (and had their
        answers); returns them. Bounded: fails the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            sent = self.sandbox_get("callbacks")
            if len(sent) >= count:
                return sent
            if time.monotonic() > deadline:
                self.fail(f"The sandbox delivered {len(sent)} callbacks, not {count}.")
            time.sleep(0.05)

    @staticmethod
    def return_params(return_url):
        """The query of the URL the sandbox sends the browser back to, as a flat dict."""
        return {key: values[0] for key, values in parse_qs(urlparse(return_url).query).items()}


class CommittedConnectionMixin:
    """Two database transactions at once, as two Odoo workers have them: what they share
    must be committed, so each test commits its own connection and removes it after.
    For test classes with SandboxMixin (a started sandbox)."""

    def committed_connection(self, provider_code):
        """A connection to the sandbox bank ``provider_code``, each of its accounts feeding
        a new journal, all committed; removed (with the settings and the company's Salt
        Edge customer restored) when the test ends. Returns ``(connection id,
        [(Salt Edge account id, journal id)])``, the accounts in the import's order."""
        client = SaltEdgeClient(
            self.sandbox.api_url, "test-app-id", SECRET, private_key_pem=self.app_private_key
        )
        tag = uuid.uuid4().hex[:3].upper()
        customer_id = client.create_customer(f"committed-{tag}-{uuid.uuid4().hex[:8]}")["id"]
        answer = client.create_connect_session(
            customer_id,
            "http://localhost/return",
            provider_code=provider_code,
            include_sandboxes=True,
        )
        back = self.return_params(complete_connect(answer["connect_url"]))
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            params = env["ir.config_parameter"]
            saved = {
                param.key: param.value
                for param in params.search([("key", "like", "account_bank_connection.%")])
            }
            self.configure_odoo(env)
            # The import confirms the connection is the company's Salt Edge customer's.
            company = env.company.sudo()
            saved_customer = company.saltedge_customer_id
            company.saltedge_customer_id = str(customer_id)
            connection = env["account.bank.connection"].create(
                {
                    "name": f"Committed bank {tag}",
                    "saltedge_connection_id": back["connection_id"],
                    "saltedge_customer_id": str(customer_id),
                    "provider_code": provider_code,
                    "state": "connected",
                }
            )
            connection._saltedge_update_consent(connection._saltedge_client())
            connection._saltedge_sync_accounts(connection._saltedge_client())
            linked = []
            for index, account in enumerate(connection.account_ids):
                journal = env["account.journal"].create(
                    {"name": f"Committed {tag} {index}", "code": f"C{tag}{index}", "type": "bank"}
                )
                account.journal_id = journal
                linked.append((account.saltedge_account_id, journal.id))
            connection_id = connection.id
        self.addCleanup(self.remove_committed, connection_id, linked, saved, saved_customer)
        return connection_id, linked

    def remove_committed(self, connection_id, linked, saved, saved_customer):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env.company.sudo().saltedge_customer_id = saved_customer
            journal_ids = [journal_id for _account, journal_id in linked]
            env["account.bank.statement.line"].search([("journal_id", "in", journal_ids)]).unlink()
            connection = env["account.bank.connection"].browse(connection_id)
            # Not deleted while connected (its consent would stay at Salt Edge); the
            # sandbox goes with the test, so only the record is given up here.
            connection.state = "disconnected"
            connection.unlink()
            journals = env["account.journal"].browse(journal_ids)
            accounts = journals.default_account_id
            journals.unlink()
            accounts.unlink()
            params = env["ir.config_parameter"]
            for param in params.search([("key", "like", "account_bank_connection.%")]):
                if param.key not in saved:
                    param.unlink()
            for key, value in saved.items():
                params.set_param(key, value)


class ServerShapeMixin:
    """Imports as a server runs them: each request and each scheduled run starts in a
    fresh environment with an empty ORM cache, and each step of a run (a page) ends with
    a commit, which empties the cache again. In a test the steps are savepoints, which
    keep it: records prepared a line earlier, or read by the step before, would be cached,
    and a bug that only a cold cache shows (an ORM read between a raw query and its
    fetch, found once in the match with earlier lines) would pass here and double lines
    on a server. The exactly-once tests import through these methods only."""

    @contextlib.contextmanager
    def cold_steps(self):
        """Every step of an import run begins and ends with an empty cache, as between
        the commits of a run on a server, whatever the code under test does."""
        Connection = type(self.env["account.bank.connection"])
        step = Connection._import_step

        @contextlib.contextmanager
        def cold_step(connection, commit, last=False):
            connection.env.invalidate_all(flush=True)
            with step(connection, commit, last=last):
                yield
            connection.env.invalidate_all(flush=True)

        with patch.object(Connection, "_import_step", cold_step):
            yield

    def cold_env(self, uid=SUPERUSER_ID):
        """Everything the test prepared written to the database, nothing left in the
        cache: the environment a new request or cron run has."""
        self.env.invalidate_all(flush=True)
        return api.Environment(self.env.cr, uid, {})

    def run_scheduled_action(self, name="ir_cron_import_transactions"):
        """Run the module's scheduled action ``name`` as a cron worker does (its code, as
        its user, in a cold environment); the test reads the results from the database
        afterwards. Returns the import runs it made or resumed, oldest first."""
        cron = self.env.ref(f"account_bank_connection.{name}").sudo()
        code = cron.code.strip()
        self.assertRegex(code, r"^model\.\w+\(\)$")
        model, method, uid = cron.model_id.model, code[len("model.") : -2], cron.user_id.id
        Run = self.env["account.bank.import.run"].sudo()
        last = Run.search([], order="id desc", limit=1).id or 0
        started = Run.search([("state", "=", "running")]).ids
        env = self.cold_env(uid)
        with self.cold_steps():
            getattr(env[model], method)()
        self.env.invalidate_all(flush=True)
        return Run.search(["|", ("id", ">", last), ("id", "in", started)], order="id")

    def import_now(self, connection, trigger="manual", **kwargs):
        """One import run of ``connection`` (``_run_import``) in a cold environment, as a
        request (Fetch transactions, the waiting page) runs it. Returns ``(run, error)``
        read in the test's environment."""
        env = self.cold_env()
        with self.cold_steps():
            run, error = (
                env["account.bank.connection"].browse(connection.id)._run_import(trigger, **kwargs)
            )
        self.env.invalidate_all(flush=True)
        return run.with_env(self.env), error


class ImportMixin(ServerShapeMixin):
    """Helpers of the import tests. The exactly-once tests import through
    ``run_scheduled_action`` and ``import_now``: with a cold cache, as a server does."""

    Line = None

    def run_import(self, connection, trigger="manual"):
        return connection.sudo()._run_import(trigger)

    def runs_of(self, connection):
        """The connection's import runs, the newest first."""
        return self.env["account.bank.import.run"].search([("connection_id", "=", connection.id)])

    def messages_of(self, connection, text):
        return connection.message_ids.filtered(lambda message: text in (message.body or ""))

    def refreshes(self, connection):
        return self.sandbox_api_requests(
            "POST", f"/connections/{connection.saltedge_connection_id}/background_refresh"
        )

    def add_fault(self, **fault):
        self.sandbox_control("faults", fault)

    def freeze_sandbox_at(self, day):
        self.sandbox_control("clock", {"now": f"{day.isoformat()}T12:00:00Z", "freeze": True})

    def imported(self, journal):
        """The journal's lines that are Salt Edge transactions (not the opening line)."""
        return self.Line.search(
            [
                ("journal_id", "=", journal.id),
                ("saltedge_transaction_id", "!=", False),
                ("saltedge_transaction_id", "not like", "opening:%"),
            ]
        )

    def assert_journal_is_the_banks(self, journal, connection, account):
        """``journal`` holds what the bank says ``account`` holds."""
        self.assertAlmostEqual(
            journal_balance(journal), self.remote_balance(connection, account), places=2
        )


class BankCompanyMixin(SandboxMixin):
    """A Belgian company with two bank journals, and Odoo talking to the sandbox."""

    @classmethod
    def setup_bank_company(cls):
        cls.start_sandbox()
        cls.configure_odoo(cls.env)
        cls.company = cls.env.company
        cls.company.country_id = cls.env.ref("base.be")
        cls.company.partner_id.tz = "Europe/Brussels"
        cls.kbc_journal = cls._bank_journal("KBC Zichtrekening", "KBCT", KBC_CURRENT)
        cls.belfius_journal = cls._bank_journal("Belfius", "BFST", BELFIUS_CURRENT)

    @classmethod
    def _bank_journal(cls, name, code, iban):
        return cls.env["account.journal"].create(
            {"name": name, "code": code, "type": "bank", "bank_acc_number": iban}
        )

    def connect(self, provider_code="kbc_sandbox_be", journal=None, user=None, **options):
        """Bank verbinden (as ``user``, default the test's), through the sandbox's screens,
        and back: returns the return URL's parameters as the return controller gets them.
        ``options`` as for ``connect_url``."""
        return self.return_params(self.connect_url(provider_code, journal, user, **options))

    def connect_url(
        self, provider_code="kbc_sandbox_be", journal=None, user=None, company=None, **widget
    ):
        """Like ``connect`` but returns the full URL the sandbox sends the browser back to.
        Started for ``company`` (default the test's) from ``journal`` (default the KBC
        journal when the company is the test's, else none); ``widget``: the choices on
        the bank's screens (``account_ibans``: tick only these accounts)."""
        company = company if company is not None else self.company
        if journal is None and company == self.company:
            journal = self.kbc_journal
        Connection = self.env["account.bank.connection"]
        if user is not None:
            Connection = Connection.with_user(user)
        action = Connection._saltedge_start_connect(company, provider_code, journal=journal)
        # Where the sandbox calls Odoo back, the callbacks read the connect session.
        self.env.flush_all()
        return complete_connect(action["url"], **widget)

    def connected(self, provider_code="kbc_sandbox_be", journal=None, **options):
        """A finished connect, nothing imported yet: the connection as the return
        controller leaves it. ``options`` as for ``connect_url`` (``company``,
        ``account_ibans``...).

        Where the sandbox calls Odoo back (``BankConnectionHttpCase``), Odoo has answered
        the connect's callbacks first: they run on the test's cursor, so everything is
        flushed for them before and after, and the test's cache is emptied of what they
        changed."""
        delivers_callbacks = bool(self.sandbox.callback_url)
        if delivers_callbacks:
            already = len(self.sandbox_get("callbacks"))
            self.env.flush_all()
        url = self.connect_url(provider_code, journal, **options)
        if delivers_callbacks:
            self.wait_for_callbacks(already + CALLBACKS_PER_SUCCESS)
            self.env.invalidate_all()
        connection = self.finish(self.return_params(url))
        if delivers_callbacks:
            self.env.flush_all()
        return connection

    def finish(self, params):
        """What the return controller does with the return URL's parameters."""
        session = self.env["account.bank.connect.session"]._consume(params.get("state"))
        return self.env["account.bank.connection"]._saltedge_finish_return(
            session, connection_hint=params.get("connection_id")
        )


class BankConnectionCase(BankCompanyMixin, TransactionCase):
    """A Belgian company with two bank journals, and Odoo talking to the sandbox."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_bank_company()


class BankConnectionHttpCase(BankCompanyMixin, HttpCase):
    """The same company behind Odoo's real HTTP server; the sandbox's callbacks go to
    the callback route, signed over the URL Odoo is configured with."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_bank_company()
        cls.sandbox.callback_url = f"{cls.base_url()}{const.CALLBACK_ROUTE}/{{kind}}"
        cls.env["ir.config_parameter"].sudo().set_param(
            const.PARAM_CALLBACK_URL, f"{cls.base_url()}{const.CALLBACK_ROUTE}"
        )

    def setUp(self):
        super().setUp()
        serve_http_requests_throughout(self)


# --- the roles of the access tables (test_access.py, test_access_routes.py) -------------

OK = "allowed"
DENIED = AccessError
INVALID = UserError

PUBLIC = "public"
PORTAL = "portal"
USER = "internal user"
ACCOUNTANT = "accountant"
MANAGER = "accounting manager"
ADMIN = "system administrator"
STRANGER = "manager of another company"
ROLES = (PUBLIC, PORTAL, USER, ACCOUNTANT, MANAGER, ADMIN, STRANGER)


def by_role(public, portal, user, accountant, manager, admin, stranger):
    """One expectation per role, in the order of ROLES."""
    return dict(
        zip(ROLES, (public, portal, user, accountant, manager, admin, stranger), strict=True)
    )


def outcome_name(outcome):
    """An expected or actual outcome of the access tables, for a failure message."""
    return outcome if isinstance(outcome, str) else outcome.__name__


class AccessRolesMixin:
    """The seven roles of the access tables, as real users."""

    @classmethod
    def setup_roles(cls):
        cls.other_company = cls.env["res.company"].create({"name": "Andere BV"})

        def user(login, groups, company=cls.company):
            return new_test_user(
                cls.env,
                login=login,
                groups=groups,
                company_id=company.id,
                company_ids=[(6, 0, company.ids)],
            )

        cls.users = {
            PUBLIC: cls.env.ref("base.public_user"),
            PORTAL: user("abc_acl_portal", "base.group_portal"),
            USER: user("abc_acl_user", "base.group_user"),
            ACCOUNTANT: user("abc_acl_accountant", "base.group_user,account.group_account_user"),
            MANAGER: user("abc_acl_manager", "base.group_user,account.group_account_manager"),
            ADMIN: user(
                "abc_acl_admin",
                "base.group_user,base.group_system,account.group_account_manager",
            ),
            STRANGER: user(
                "abc_acl_stranger",
                "base.group_user,account.group_account_manager",
                company=cls.other_company,
            ),
        }

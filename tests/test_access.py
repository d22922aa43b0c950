"""Who may do what: one table of (role, target, operation, expected) for every model, field
and button of the module, run against real users on real Odoo (the routes: in
test_access_routes.py).

The tables are the specification. ``OK`` means the operation goes through; an exception
class means exactly that exception is raised. Every row runs in its own savepoint, so a
row that is allowed (a write, an unlink, a disconnect) leaves nothing for the next one.
"""

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from ..models import const
from .common import (
    ADMIN,
    DENIED,
    INSTANT_FETCH,
    INVALID,
    KBC_SAVINGS,
    MANAGER,
    OK,
    ROLES,
    SECRET,
    STRANGER,
    AccessRolesMixin,
    BankConnectionCase,
    by_role,
    outcome_name,
)

D = DENIED
# Shorthands for the usual shapes of a row.
NOBODY = by_role(D, D, D, D, D, D, D)
SYSTEM_ONLY = by_role(D, D, D, D, D, OK, D)
ACCOUNTANTS = by_role(D, D, D, OK, OK, OK, D)
MANAGERS = by_role(D, D, D, D, OK, OK, D)

# (target, operation) -> expectation per role. Targets are named in setUp's fixtures.
MODEL_MATRIX = {
    ("connection", "read"): ACCOUNTANTS,
    ("connection", "create"): MANAGERS,
    ("connection", "write"): MANAGERS,
    # A live connection is not deleted (its consent would stay valid): Disconnect first.
    ("connection", "unlink"): by_role(D, D, D, D, INVALID, INVALID, D),
    ("online account", "read"): ACCOUNTANTS,
    # Online accounts come from Salt Edge; their Salt Edge id is never set by hand.
    ("online account", "create"): NOBODY,
    ("online account", "write"): MANAGERS,
    ("online account", "unlink"): MANAGERS,
    # The bank list is the same for every company: no company rule.
    ("provider", "read"): by_role(D, D, D, OK, OK, OK, OK),
    ("provider", "create"): NOBODY,
    ("provider", "write"): NOBODY,
    ("provider", "unlink"): NOBODY,
    # Connect sessions hold the state's nonce: the system reads them, nobody writes.
    ("connect session", "read"): SYSTEM_ONLY,
    ("connect session", "create"): NOBODY,
    ("connect session", "write"): NOBODY,
    ("connect session", "unlink"): NOBODY,
    ("callback", "read"): SYSTEM_ONLY,
    ("callback", "create"): NOBODY,
    ("callback", "write"): NOBODY,
    ("callback", "unlink"): NOBODY,
    # Ledgers written by the module itself: a deleted reminder would go out again, a
    # forged one would keep the real one from going out.
    ("reminder", "read"): ACCOUNTANTS,
    ("reminder", "create"): NOBODY,
    ("reminder", "write"): NOBODY,
    ("reminder", "unlink"): NOBODY,
    ("import run", "read"): ACCOUNTANTS,
    ("import run", "create"): NOBODY,
    ("import run", "write"): NOBODY,
    ("import run", "unlink"): NOBODY,
    # The fields the module adds to Odoo's models.
    ("journal bank fields", "read"): ACCOUNTANTS,
    ("journal bank fields", "write"): MANAGERS,
    ("journal of another company linked here", "write"): by_role(D, D, D, D, D, D, INVALID),
    ("company Salt Edge customer", "read"): SYSTEM_ONLY,
    ("company Salt Edge customer", "write"): SYSTEM_ONLY,
    ("settings Salt Edge fields", "read"): SYSTEM_ONLY,
    ("settings Salt Edge fields", "create"): SYSTEM_ONLY,
    ("settings reminder days", "create"): SYSTEM_ONLY,
}

# (target, button) -> expectation per role.
BUTTON_MATRIX = {
    ("journal", "action_bank_connect"): MANAGERS,
    ("journal", "action_bank_fetch"): ACCOUNTANTS,
    ("journal", "action_bank_renew"): MANAGERS,
    ("journal", "action_open_bank_connection"): ACCOUNTANTS,
    ("connection", "action_renew"): MANAGERS,
    ("connection", "action_refresh_at_bank"): MANAGERS,
    ("connection", "action_disconnect"): MANAGERS,
    ("connection", "action_fetch_transactions"): ACCOUNTANTS,
    ("online account", "action_create_journal"): MANAGERS,
    ("provider", "action_connect"): MANAGERS,
}


# What Odoo adds to every model (named after the module that declares the model).
ODOO_COLUMNS = {"id", "create_uid", "create_date", "write_uid", "write_date"}
# The fields the module declares on the connection and its online accounts that a user
# may write (with the model's access rights); every other one is the module's alone.
USER_FIELDS = {
    "connection": {
        "name",
        "user_id",
        "reminder_partner_ids",
        "statement_period",
        "account_ids",
        "journal_ids",
    },
    "online account": {"journal_id"},
}


class _Rollback(Exception):
    """Leaves a row's savepoint after an allowed operation."""


class TestAccessMatrix(AccessRolesMixin, BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_roles()
        cls.other_journal = cls.env["account.journal"].create(
            {
                "name": "Andere bank",
                "code": "ANDB",
                "type": "bank",
                "company_id": cls.other_company.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.reset_sandbox()
        self.connection = self.connected()
        self.bank_name = self.connection.name
        self.account = self.connection.account_ids.filtered(lambda a: a.iban == KBC_SAVINGS)
        self.assertFalse(self.account.journal_id, "the savings account has no journal yet")
        sudo = self.env(su=True)
        self.provider = sudo["account.bank.provider"].create(
            {
                "code": "kbc_sandbox_be",
                "name": "KBC (sandbox)",
                "country_code": "BE",
                "fetched_at": "2030-01-01 00:00:00",
            }
        )
        self.session = sudo["account.bank.connect.session"].search([], limit=1)
        self.callback = sudo["account.bank.callback"]._claim("f" * 64, "notify", "1")
        self.reminder = sudo["account.bank.reminder"].create(
            {
                "connection_id": self.connection.id,
                "consent_id": self.connection.saltedge_consent_id,
                "threshold": 15,
                "sent_on": "2030-01-01",
            }
        )
        self.run = sudo["account.bank.import.run"].create({"connection_id": self.connection.id})
        self.settings = (
            self.env["res.config.settings"].with_user(self.users[ADMIN]).create({}).sudo()
        )
        self.env.flush_all()

    # --- the operations of the tables, as a role ------------------------------------

    def model_operation(self, target, operation, user):
        """A callable doing ``operation`` on ``target`` as ``user``."""
        env = self.env(user=user, su=False)
        records = {
            "connection": self.connection,
            "online account": self.account,
            "provider": self.provider,
            "connect session": self.session,
            "callback": self.callback,
            "reminder": self.reminder,
            "import run": self.run,
            "journal bank fields": self.kbc_journal,
            "journal of another company linked here": self.other_journal,
            "company Salt Edge customer": self.company,
            "settings Salt Edge fields": self.settings,
        }
        create_vals = {
            "connection": {"name": "Belfius", "company_id": self.company.id},
            "online account": {
                "connection_id": self.connection.id,
                "saltedge_account_id": "acl-1",
                "name": "Extra",
            },
            "provider": {
                "code": "acl_bank",
                "name": "ACL",
                "country_code": "BE",
                "fetched_at": "2030-01-01 00:00:00",
            },
            "connect session": {
                "user_id": user.id,
                "company_id": self.company.id,
                "nonce": "n",
                "expires_at": "2030-01-01 00:00:00",
            },
            "callback": {"fingerprint": "acl"},
            "reminder": {
                "connection_id": self.connection.id,
                "consent_id": "acl",
                "threshold": 3,
                "sent_on": "2030-01-01",
            },
            "import run": {"connection_id": self.connection.id},
            "settings Salt Edge fields": {"saltedge_secret": "acl-new-secret"},
            "settings reminder days": {"bank_connection_reminder_days": "20"},
        }
        write_vals = {
            "connection": {"name": "Renamed"},
            # Which journal an account feeds is the manager's choice; its name, IBAN and
            # the rest come from Salt Edge.
            "online account": {"journal_id": self.belfius_journal.id},
            "provider": {"name": "Renamed"},
            "connect session": {"provider_code": "other"},
            "callback": {"result": "other"},
            "reminder": {"threshold": 2},
            "import run": {"error": "other"},
            "journal bank fields": {"bank_connection_id": False},
            "journal of another company linked here": {"bank_connection_id": self.connection.id},
            "company Salt Edge customer": {"saltedge_customer_id": "999"},
        }
        read_fields = {
            "journal bank fields": [
                "bank_connection_id",
                "bank_connection_state",
                "bank_connected_until",
                "bank_connection_last_sync",
                "bank_connected_until_label",
                "bank_connection_level",
            ],
            "company Salt Edge customer": ["saltedge_customer_id"],
            "settings Salt Edge fields": [
                "saltedge_base_url",
                "saltedge_app_id",
                "saltedge_secret",
                "saltedge_private_key",
                "saltedge_public_key",
                "saltedge_consent_days",
                "saltedge_include_sandboxes",
                "saltedge_callback_url",
            ],
        }
        if operation == "create":
            model = {
                "connection": "account.bank.connection",
                "online account": "account.bank.connection.account",
                "provider": "account.bank.provider",
                "connect session": "account.bank.connect.session",
                "callback": "account.bank.callback",
                "reminder": "account.bank.reminder",
                "import run": "account.bank.import.run",
                "settings Salt Edge fields": "res.config.settings",
                "settings reminder days": "res.config.settings",
            }[target]
            return lambda: env[model].create(create_vals[target])
        record = records[target].with_env(env)
        if operation == "read":
            return lambda: record.read(read_fields.get(target, ["display_name"]))
        if operation == "write":
            return lambda: record.write(write_vals[target])
        if operation == "unlink":
            return record.unlink
        raise ValueError(operation)

    def button(self, target, method, user):
        record = {
            "journal": self.kbc_journal,
            "connection": self.connection,
            "online account": self.account,
            "provider": self.provider.with_context(bank_connect_journal_id=self.kbc_journal.id),
        }[target]
        return getattr(record.with_user(user), method)

    def outcome(self, operation):
        """What ``operation`` did: OK or the class of the exception, always rolled back."""
        self.last_error = ""
        try:
            with self.env.cr.savepoint():
                operation()
                self.env.flush_all()
                raise _Rollback
        except _Rollback:
            result = OK
        except (AccessError, UserError) as error:
            self.last_error = str(error).splitlines()[0][:160]
            result = DENIED if isinstance(error, DENIED) else INVALID
        self.env.invalidate_all(flush=False)
        return result

    def check_matrix(self, matrix, make):
        mismatches = []
        rows = 0
        for (target, operation), expectations in matrix.items():
            for role, expected in expectations.items():
                rows += 1
                got = self.outcome(make(target, operation, self.users[role]))
                if got != expected:
                    mismatches.append(
                        f"{role} / {target} / {operation}: expected {outcome_name(expected)}, "
                        f"got {outcome_name(got)} {self.last_error}"
                    )
        self.assertFalse(mismatches, "\n" + "\n".join(mismatches))
        return rows

    # --- the tables -------------------------------------------------------------------

    def test_every_role_may_do_on_every_model_exactly_what_the_table_says(self):
        self.assertEqual(
            self.check_matrix(MODEL_MATRIX, self.model_operation), len(MODEL_MATRIX) * len(ROLES)
        )
        # The rows that were allowed really left nothing behind.
        self.assertEqual(self.connection.name, self.bank_name)
        self.assertTrue(self.kbc_journal.bank_connection_id)

    def test_every_role_may_press_every_button_exactly_as_the_table_says(self):
        self.assertEqual(
            self.check_matrix(BUTTON_MATRIX, self.button), len(BUTTON_MATRIX) * len(ROLES)
        )

    def test_the_table_names_every_button_of_the_module(self):
        # A new button without a row in the table fails here.
        buttons = {
            (target, name)
            for target, model in (
                ("journal", "account.journal"),
                ("connection", "account.bank.connection"),
                ("online account", "account.bank.connection.account"),
                ("provider", "account.bank.provider"),
            )
            for name in dir(type(self.env[model]))
            if name.startswith("action_")
            and getattr(type(self.env[model]), name).__module__.startswith(
                "odoo.addons.account_bank_connection."
            )
        }
        self.assertEqual(buttons, set(BUTTON_MATRIX))

    # --- fields only the module writes ---------------------------------------------------

    def module_only_values(self):
        """{target: {field: a value an RPC caller could send}} for every field that only
        the module writes (as superuser), from Salt Edge's answers and its own imports."""
        return {
            "connection": {
                "state": "connected",
                "company_id": self.other_company.id,
                "saltedge_connection_id": "100000000099",
                "saltedge_customer_id": "100000000098",
                "saltedge_consent_id": "100000000097",
                "provider_code": "belfius_sandbox_be",
                "provider_name": "Belfius",
                "connected_until": "2099-12-31",
                "consent_expires_at": "2099-12-31 10:00:00",
                "last_sync": "2099-12-31 10:00:00",
                "last_error": "",
                "last_stage": const.STAGE_FINISH,
                "fetch_finished": True,
                # A time in the future would make every later fail or destroy stale.
                "saltedge_seen_at": "2099-12-31 10:00:00",
                "import_requested": True,
                "refresh_needs_user": False,
                "last_refresh_request": "2099-12-31 10:00:00",
                "next_refresh_possible_at": "2000-01-01 00:00:00",
                "balance_mismatch_note": "",
                # Another run would take this connection's import into its history.
                "resume_run_id": self.run.id,
                # Would make the hourly import skip a connection with something new.
                "saltedge_idle_key": "1:6:True|x|x|active|1",
                # Would file lines imported before the setting was on into statements.
                "statements_after_line_id": 0,
                "import_run_ids": [Command.set([])],
                "reminder_ids": [Command.set([])],
            },
            "online account": {
                "connection_id": self.connection.id,
                "company_id": self.other_company.id,
                "saltedge_account_id": "100000000096",
                "name": "Renamed",
                "iban": "BE56363123456788",
                "currency_id": self.env.ref("base.USD").id,
                "balance": 1_000_000.0,
                "last_transaction_id": "999999999999",
                "first_sync_done": False,
                "journal_had_lines": False,
            },
        }

    def test_the_module_only_fields_are_every_field_a_user_may_not_write(self):
        # A new field of the module is either the user's or the module's: it fails here
        # until it is named in one of the two lists.
        values = self.module_only_values()
        for target, model in (
            ("connection", "account.bank.connection"),
            ("online account", "account.bank.connection.account"),
        ):
            Model = self.env[model]
            ours = {
                name
                for name, field in Model._fields.items()
                if field._module == "account_bank_connection"
                and (field.store or field.inverse)
                and name not in ODOO_COLUMNS
            }
            with self.subTest(target=target):
                self.assertEqual(set(values[target]), Model._saltedge_protected_fields)
                self.assertEqual(ours, set(values[target]) | USER_FIELDS[target])
                self.assertFalse(set(values[target]) & USER_FIELDS[target])

    def test_nobody_writes_a_field_only_the_module_writes(self):
        values = self.module_only_values()
        matrix = {(target, field): NOBODY for target, vals in values.items() for field in vals}

        def write_field(target, field, user):
            record = {"connection": self.connection, "online account": self.account}[target]
            return lambda: record.with_user(user).write({field: values[target][field]})

        self.assertEqual(self.check_matrix(matrix, write_field), len(matrix) * len(ROLES))

    def test_no_field_only_the_module_writes_is_given_at_create_not_even_as_a_default(self):
        manager = self.users[MANAGER]
        Connection = self.env["account.bank.connection"].with_user(manager)
        new = {"name": "Belfius", "company_id": self.company.id}
        # What a manager may create: a draft connection of their company.
        self.assertEqual(self.outcome(lambda: Connection.create(new)), OK)
        mismatches = []
        for field, value in self.module_only_values()["connection"].items():
            if field == "company_id":
                continue
            for how, create in (
                ("value", lambda f=field, v=value: Connection.create({**new, f: v})),
                (
                    "default",
                    lambda f=field, v=value: Connection.with_context(**{f"default_{f}": v}).create(
                        new
                    ),
                ),
            ):
                got = self.outcome(create)
                if got != DENIED:
                    mismatches.append(f"{field} as a {how}: {outcome_name(got)} {self.last_error}")
        self.assertFalse(mismatches, "\n" + "\n".join(mismatches))

    def test_a_manager_of_another_company_cannot_point_an_import_at_this_companys_run(self):
        theirs = self.env["account.bank.connection"].create(
            {"name": "Andere bank", "company_id": self.other_company.id}
        )
        self.assertEqual(self.run.company_id, self.company)
        with self.assertRaises(AccessError):
            theirs.with_user(self.users[STRANGER]).write({"resume_run_id": self.run.id})
        # Nor can the module's own code: the run's company must be the connection's.
        with self.assertRaises(UserError):
            theirs.write({"resume_run_id": self.run.id})
        theirs.invalidate_recordset(flush=False)
        self.assertFalse(theirs.resume_run_id)

    # --- the Salt Edge Secret and private key ------------------------------------------

    def secret_probes(self, user, settings):
        """Every way an RPC caller could try to read the Secret or the private key;
        ``settings``: the settings record a system administrator saved them with."""
        env = self.env(user=user, su=False)
        # Kept apart from the system parameters, which system administrators read.
        stored = self.env["account.bank.credential"].sudo().search([])
        self.assertEqual(len(stored), 2)
        Credential = env["account.bank.credential"]
        params = (
            self.env["ir.config_parameter"]
            .sudo()
            .search([("key", "like", "account_bank_connection.%")])
        )
        self.assertTrue(params)
        Param = env["ir.config_parameter"]
        Settings = env["res.config.settings"]
        settings = settings.with_env(env)
        secret_fields = ["saltedge_secret", "saltedge_private_key"]
        return {
            "credential read": lambda: stored.with_env(env).read(["key", "value"]),
            "credential search_read": lambda: Credential.search_read([], ["key", "value"]),
            "credential web_search_read": lambda: Credential.web_search_read(
                [], {"key": {}, "value": {}}
            ),
            "credential export_data": lambda: stored.with_env(env).export_data(["value"]),
            "get_param": lambda: [Param.get_param(p.key) for p in params]
            + [Param.get_param(const.PARAM_SECRET), Param.get_param(const.PARAM_PRIVATE_KEY)],
            "parameter read": lambda: params.with_env(env).read(["key", "value"]),
            "parameter search_read": lambda: Param.search_read(
                [("key", "in", params.mapped("key"))], ["key", "value"]
            ),
            "parameter export_data": lambda: params.with_env(env).export_data(["key", "value"]),
            "parameter search on value": lambda: Param.search([("value", "=", SECRET)]),
            "settings default_get": lambda: Settings.default_get(secret_fields),
            "settings onchange": lambda: Settings.onchange(
                {}, [], {name: {} for name in secret_fields}
            ),
            "settings read": lambda: settings.read(secret_fields),
            "settings search_read": lambda: Settings.search_read([], secret_fields),
            "settings export_data": lambda: settings.export_data(secret_fields),
            "settings web_read": lambda: settings.web_read({name: {} for name in secret_fields}),
        }

    def assert_no_secret(self, text, where):
        # Not assertNotIn: its message would print the secret it found.
        self.assertFalse(SECRET in text, f"{where}: the Secret")
        self.assertFalse("PRIVATE KEY" in text, f"{where}: a private key")
        for line in self.app_private_key.splitlines():
            if len(line) > 20:
                self.assertFalse(line in text, f"{where}: a line of the private key")

    def save_settings(self, user, **typed):
        """``user`` types ``typed`` in the settings and saves, as the settings form does:
        the record is written (one request), then ``execute`` applies it (the next)."""
        settings = self.env["res.config.settings"].with_user(user).create(typed)
        settings.execute()
        return settings

    def settings_table(self):
        """The settings' table as a copy or a backup of the database holds it:
        ``{id: (secret, private key)}``."""
        self.env.flush_all()
        rows = self.env.execute_query(
            SQL("SELECT id, saltedge_secret, saltedge_private_key FROM res_config_settings")
        )
        return {row[0]: row[1:] for row in rows}

    def test_the_secret_and_private_key_reach_no_one_not_even_a_system_administrator(self):
        # Typed and saved in the settings by a system administrator first: the settings'
        # own record and table must not keep them either.
        admin = self.users[ADMIN]
        saved = self.save_settings(
            admin, saltedge_secret=SECRET, saltedge_private_key=self.app_private_key
        )
        stored = self.env["account.bank.credential"].sudo().search([])
        self.assertEqual(stored.mapped("write_uid"), admin, "the save stored both")
        leaks = []
        table = self.settings_table()
        self.assertIn(saved.id, table)
        try:
            self.assert_no_secret(repr(table), "the res_config_settings table")
        except AssertionError as leak:
            leaks.append(str(leak))
        for role in ROLES:
            for probe, call in self.secret_probes(self.users[role], saved).items():
                where = f"{role} / {probe}"
                try:
                    with self.env.cr.savepoint():
                        result = call()
                except (AccessError, UserError) as error:
                    text = f"{error} {error.args!r}"
                else:
                    text = repr(result)
                self.env.invalidate_all(flush=False)
                try:
                    self.assert_no_secret(text, where)
                except AssertionError as leak:
                    leaks.append(str(leak))
        self.assertFalse(leaks, "\n" + "\n".join(leaks))

    def test_a_save_of_the_settings_clears_what_an_unapplied_save_left_behind(self):
        admin = self.users[ADMIN]
        Settings = self.env["res.config.settings"].with_user(admin)
        # Written by the form an hour ago, its execute never came or failed (rolled back).
        left = Settings.create(
            {"saltedge_secret": "left-behind", "saltedge_private_key": "left-behind key"}
        )
        # Another administrator's save under way: written, its execute not yet run.
        under_way = Settings.create({"saltedge_secret": "under-way"})
        self.env.flush_all()
        self.env.execute_query(
            SQL(
                "UPDATE res_config_settings SET create_date = create_date - interval '1 hour'"
                " WHERE id = %s",
                left.id,
            )
        )
        self.assertEqual(self.settings_table()[left.id], ("left-behind", "left-behind key"))
        saved = self.save_settings(admin, bank_connection_reminder_days="15,3,1")
        table = self.settings_table()
        self.assertEqual(table[left.id], (None, None))
        self.assertEqual(table[saved.id], (None, None))
        self.assertEqual(table[under_way.id], ("under-way", None))
        # What was typed an hour ago and never applied stays unapplied.
        self.assertEqual(self.env["account.bank.credential"]._get(const.PARAM_SECRET), SECRET)

    def test_the_module_uses_the_secret_and_private_key_that_nobody_reads(self):
        # The probes above can only pass for a reason: the values are there, the module
        # signs with them, and the settings say they are set.
        credentials = self.env["account.bank.credential"]
        self.assertEqual(credentials._get(const.PARAM_SECRET), SECRET)
        self.assertEqual(credentials._get(const.PARAM_PRIVATE_KEY), self.app_private_key)
        self.assertTrue(self.env["account.bank.connection"]._saltedge_client()._private_key)
        settings = self.env["res.config.settings"].with_user(self.users[ADMIN]).create({})
        self.assertTrue(settings.saltedge_secret_is_set)
        self.assertTrue(settings.saltedge_private_key_is_set)

"""A copied database stops talking to Salt Edge: Odoo's neutralization (``odoo-bin
neutralize``, and the database manager's "neutralize" of a duplicate) removes the App ID,
the Secret and the private key, and stops our scheduled actions. Uninstalling removes them
too, and a live connection is not deleted (its consent would stay valid at Salt Edge).

The queries run on the test's cursor, inside its transaction, which is rolled back after
the test: the database of the other tests keeps its settings.
"""

from odoo.exceptions import UserError
from odoo.modules.neutralize import get_installed_modules, get_neutralization_queries
from odoo.tools import SQL

from ..hooks import uninstall_hook
from ..models import const
from .common import INSTANT_FETCH, SECRET, BankConnectionCase


class TestNeutralize(BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    def our_crons(self):
        data = self.env["ir.model.data"].search(
            [("module", "=", "account_bank_connection"), ("model", "=", "ir.cron")]
        )
        return self.env["ir.cron"].with_context(active_test=False).browse(data.mapped("res_id"))

    def settings_secrets(self, settings=None):
        """The settings rows holding a Secret or a private key, as the table has them:
        ``[(id, secret set, private key set)]`` (never the values themselves)."""
        self.env.flush_all()
        return self.env.execute_query(
            SQL(
                "SELECT id, saltedge_secret IS NOT NULL, saltedge_private_key IS NOT NULL"
                "  FROM res_config_settings"
                " WHERE (saltedge_secret IS NOT NULL OR saltedge_private_key IS NOT NULL)"
                "   AND (%s IS NULL OR id = %s)"
                " ORDER BY id",
                settings and settings.id,
                settings and settings.id,
            )
        )

    def neutralize(self):
        self.env.flush_all()
        modules = get_installed_modules(self.env.cr)
        self.assertIn("account_bank_connection", modules)
        for query in get_neutralization_queries(modules):
            self.env.cr.execute(query)
        self.env.registry.clear_cache()
        self.env.invalidate_all()

    def test_neutralizing_removes_the_salt_edge_keys_and_stops_our_crons(self):
        params = self.env["ir.config_parameter"].sudo()
        crons = self.our_crons()
        self.assertGreaterEqual(len(crons), 3)
        crons.active = True
        credentials = self.env["account.bank.credential"]
        # The settings are there before: what follows can only pass for a reason.
        self.assertTrue(params.get_param(const.PARAM_APP_ID))
        for key in (const.PARAM_SECRET, const.PARAM_PRIVATE_KEY):
            self.assertTrue(credentials._get(key), key)
        # A settings row written by the form whose save was never applied (or one from
        # before the module cleared them) still holds what was typed.
        typed = self.env["res.config.settings"].create(
            {"saltedge_secret": SECRET, "saltedge_private_key": self.app_private_key}
        )
        self.assertEqual(
            self.settings_secrets(typed), [(typed.id, True, True)], "the row holds both"
        )

        self.neutralize()

        self.assertFalse(params.search([("key", "=", const.PARAM_APP_ID)]))
        for key in (const.PARAM_SECRET, const.PARAM_PRIVATE_KEY):
            self.assertFalse(credentials._get(key), key)
        self.assertFalse(credentials.sudo().search([]))
        self.assertEqual(self.settings_secrets(), [])
        self.assertEqual(crons.mapped("active"), [False] * len(crons))
        # What is not a secret stays, so an administrator sees where the copy pointed.
        self.assertEqual(params.get_param(const.PARAM_BASE_URL), self.sandbox.api_url)

    def test_a_neutralized_database_no_longer_reaches_salt_edge(self):
        self.neutralize()
        requests_before = len(self.sandbox_get("requests"))
        with self.assertRaisesRegex(UserError, "not configured"):
            self.env["account.bank.connection"]._saltedge_client()
        self.assertEqual(len(self.sandbox_get("requests")), requests_before)

    def test_uninstalling_removes_the_credentials(self):
        params = self.env["ir.config_parameter"].sudo()
        credentials = self.env["account.bank.credential"]
        self.assertTrue(params.get_param(const.PARAM_APP_ID))
        self.assertTrue(credentials._get(const.PARAM_SECRET))
        self.assertTrue(credentials._get(const.PARAM_PRIVATE_KEY))
        params.set_param("web.base.url.freeze", "True")
        uninstall_hook(self.env)
        self.assertFalse(credentials.sudo().search([]))
        self.assertFalse(params.search([("key", "=like", const.PARAM_PREFIX + "%")]))
        self.assertTrue(params.get_param("web.base.url.freeze"), "other parameters stay")

    def test_a_live_connection_cannot_be_deleted_only_disconnected(self):
        connection = self.finish(self.connect())
        self.assertEqual(connection.state, "connected")
        with self.assertRaisesRegex(UserError, "Disconnect it first"):
            connection.unlink()
        connection.state = "expired"
        with self.assertRaisesRegex(UserError, "Disconnect it first"):
            connection.unlink()
        connection.action_disconnect()
        self.assertEqual(connection.state, "disconnected")
        connection.unlink()
        self.assertFalse(connection.exists())

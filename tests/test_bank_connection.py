from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user

from ..models import const


class TestBankConnectionModels(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.journal = cls.env["account.journal"].create(
            {"name": "KBC Business", "type": "bank", "code": "KBCT"}
        )
        cls.connection = cls.env["account.bank.connection"].create(
            {"name": "KBC", "provider_code": "kbc_sandbox_be", "company_id": cls.company.id}
        )

    def test_a_new_connection_starts_as_draft_in_the_current_company(self):
        self.assertEqual(self.connection.state, "draft")
        self.assertEqual(self.connection.company_id, self.env.company)
        self.assertFalse(self.connection.connected_until)

    def test_an_online_account_shows_its_iban_and_links_one_journal(self):
        account = self.env["account.bank.connection.account"].create(
            {
                "connection_id": self.connection.id,
                "saltedge_account_id": "1001",
                "name": "Business account",
                "iban": "BE73735012345660",
                "journal_id": self.journal.id,
            }
        )
        self.assertEqual(account.company_id, self.company)
        self.assertEqual(account.display_name, "Business account (BE73735012345660)")

    def test_the_journal_shows_the_consent_date_of_its_connection(self):
        self.connection.connected_until = "2027-03-12"
        self.journal.bank_connection_id = self.connection
        self.assertEqual(str(self.journal.bank_connected_until), "2027-03-12")
        self.assertEqual(self.connection.journal_count, 1)

    def test_a_user_without_accounting_rights_cannot_read_connections(self):
        user = new_test_user(self.env, login="abc_plain_user", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.connection.with_user(user).read(["name"])

    def test_the_settings_keep_the_credentials_and_never_show_the_secret_again(self):
        pem = "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\nAQAB\n-----END PUBLIC KEY-----"
        settings = self.env["res.config.settings"].create(
            {
                "saltedge_app_id": "app-1",
                "saltedge_secret": "s3cret",
                "saltedge_public_key": pem,
                "saltedge_consent_days": 90,
            }
        )
        settings.execute()
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(params.get_param("account_bank_connection.saltedge_app_id"), "app-1")
        self.assertEqual(params.get_param("account_bank_connection.saltedge_public_key"), pem)
        self.assertEqual(params.get_param("account_bank_connection.consent_period_days"), "90")
        self.assertEqual(self.env["account.bank.credential"]._get(const.PARAM_SECRET), "s3cret")
        self.assertFalse(params.get_param(const.PARAM_SECRET), "not a system parameter")
        reopened = self.env["res.config.settings"].create({})
        # Write-only: the form says it is set, and shows nothing of it.
        self.assertFalse(reopened.saltedge_secret)
        self.assertTrue(reopened.saltedge_secret_is_set)
        # Saved with the field left empty, it stays; a new value replaces it.
        reopened.execute()
        self.assertEqual(self.env["account.bank.credential"]._get(const.PARAM_SECRET), "s3cret")
        self.env["res.config.settings"].create({"saltedge_secret": "n3w"}).execute()
        self.assertEqual(self.env["account.bank.credential"]._get(const.PARAM_SECRET), "n3w")
        self.assertTrue(reopened.saltedge_callback_url.endswith("/saltedge/callback"))

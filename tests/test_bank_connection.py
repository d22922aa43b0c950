"""The connection's own models without a bank: an online account's name, and the
settings that keep the Salt Edge credentials."""

from odoo.tests import TransactionCase

from ..models import const


class TestBankConnectionModels(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.connection = cls.env["account.bank.connection"].create(
            {"name": "KBC", "provider_code": "kbc_sandbox_be", "company_id": cls.company.id}
        )

    def test_an_online_account_is_named_with_its_iban_when_it_has_one(self):
        Account = self.env["account.bank.connection.account"]
        values = {"connection_id": self.connection.id, "name": "Business account"}
        with_iban = Account.create(
            {**values, "saltedge_account_id": "1001", "iban": "BE73735012345660"}
        )
        card = Account.create({**values, "saltedge_account_id": "1002", "name": "Card"})
        self.assertEqual(with_iban.display_name, "Business account (BE73735012345660)")
        self.assertEqual(card.display_name, "Card")

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

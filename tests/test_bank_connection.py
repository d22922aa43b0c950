from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user


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

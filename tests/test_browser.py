from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install")
class TestBankConnectionBrowser(HttpCase):
    def test_the_bank_connections_menu_opens_in_the_browser(self):
        action = self.env.ref("account_bank_connection.action_account_bank_connection")
        self.env["account.bank.connection"].create({"name": "Belfius"})
        self.start_tour(
            f"/odoo/action-{action.id}", "account_bank_connection_list_tour", login="admin"
        )

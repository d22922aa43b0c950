import json
import time

from odoo.tests import HttpCase, tagged
from odoo.tests.common import ChromeBrowser

from .common import KBC_CURRENT, SandboxMixin


class BrowserDriver:
    """Clicks through pages in headless Chromium by CSS selector, across origins.

    Odoo's tours run inside Odoo's pages only; the connect flow leaves Odoo for Salt Edge's
    screens (the sandbox, on another port) and comes back, so this drives Chromium through
    the DevTools protocol of Odoo's own ChromeBrowser instead.
    """

    def __init__(self, browser, test):
        self.browser = browser
        self.test = test

    def evaluate(self, expression):
        result = self.browser._websocket_request(
            "Runtime.evaluate",
            params={"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=30,
        )
        return result.get("result", {}).get("value")

    def wait(self, expression, timeout=60, what=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(
                    f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
                )
            except Exception:  # a page being replaced answers nothing: ask again
                value = None
            if value:
                return value
            time.sleep(0.2)
        self.browser.take_screenshot(prefix="sc_bank_connection_")
        self.test.fail(f"Timed out waiting for {what or expression}")

    @staticmethod
    def card(container, text):
        """A JS expression: the first ``container`` element whose text has ``text``."""
        return (
            f"[...document.querySelectorAll({json.dumps(container)})]"
            f".find(c => c.textContent.includes({json.dumps(text)}))"
        )

    def click_in(self, container, text, button):
        """Wait for ``button`` inside the ``container`` that shows ``text``, click it."""
        found = f"{self.card(container, text)}.querySelector({json.dumps(button)})"
        self.wait(f"!!{found}", what=f"{button} in {container} with {text}")
        self.evaluate(f"{found}.click()")


@tagged("post_install", "-at_install")
class TestBankConnectionBrowser(SandboxMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_sandbox()

    def setUp(self):
        super().setUp()
        self.configure_odoo(self.env)
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", self.base_url())
        self.env.company.country_id = self.env.ref("base.be")
        self.journal = self.env["account.journal"].create(
            {
                "name": "KBC Zichtrekening",
                "code": "KBCB",
                "type": "bank",
                "bank_acc_number": KBC_CURRENT,
            }
        )

    def test_the_bank_connections_menu_opens_in_the_browser(self):
        action = self.env.ref("account_bank_connection.action_account_bank_connection")
        self.env["account.bank.connection"].create({"name": "Belfius"})
        self.start_tour(
            f"/odoo/action-{action.id}", "account_bank_connection_list_tour", login="admin"
        )

    def test_connect_bank_from_the_dashboard_through_the_bank_screens_and_back(self):
        """The user guide, clicked: Bank verbinden on the dashboard card, pick the bank,
        Salt Edge's screens and the bank's, Return to your application, and the card says
        Connected until with a date."""
        browser = ChromeBrowser(self)
        try:
            self.authenticate("admin", "admin", browser=browser)
            self.http_request_strict_check = True
            self.cr.flush()
            self.cr.clear()
            driver = BrowserDriver(browser, self)
            browser.navigate_to(f"{self.base_url()}/odoo/accounting", wait_stop=True)
            # Bank verbinden on the KBC journal's card.
            driver.click_in(".o_kanban_record", "KBC Zichtrekening", ".o_bank_connect")
            # The bank picker lists the country's banks: pick KBC, Verbinden.
            driver.click_in(".modal .o_kanban_record", "KBC", "button[name=action_connect]")
            # Salt Edge's screens and the bank's: Business, terms, wait, itsme, accounts.
            seen = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                screen = driver.wait(
                    "document.readyState === 'complete' && ("
                    "(document.querySelector('meta[name=sandbox-screen]') || {}).content"
                    " || (document.querySelector('.o_bank_connect_message') && 'odoo-return'))",
                    what="a sandbox screen or Odoo's return page",
                )
                if screen == "odoo-return":
                    break
                if not seen or seen[-1] != screen:
                    seen.append(screen)
                driver.evaluate(
                    """(() => {
                        for (const value of ['business', 'itsme']) {
                            const radio = document.querySelector(`input[value=${value}]`);
                            if (radio) radio.checked = true;
                        }
                        document.querySelectorAll('input[type=checkbox][name=accept_terms]')
                            .forEach(box => box.checked = true);
                        const next = document.querySelector('button.primary, a.primary');
                        if (next) next.click();
                    })()"""
                )
                time.sleep(0.3)
            self.assertIn("customer_type", seen)
            self.assertIn("terms", seen)
            message = driver.evaluate(
                "document.querySelector('.o_bank_connect_message').textContent"
            )
            self.assertIn("connected until", message.lower())
            # Back on the dashboard, the card shows Connected until with a date and a year.
            browser.navigate_to(f"{self.base_url()}/odoo/accounting", wait_stop=True)
            until = driver.wait(
                driver.card(".o_kanban_record", "KBC Zichtrekening")
                + ".querySelector('.o_bank_connected_until').textContent",
                what="Connected until on the KBC card",
            )
            connection = self.env["account.bank.connection"].search(
                [("journal_ids", "in", self.journal.ids)]
            )
            self.assertEqual(connection.state, "connected")
            self.assertTrue(connection.connected_until)
            self.assertIn(str(connection.connected_until.year), until)
        finally:
            browser.stop()
            self._wait_remaining_requests()

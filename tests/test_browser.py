import json
import time

from odoo.tests import HttpCase, tagged
from odoo.tests.common import ChromeBrowser

from ..odoo_series import serve_http_requests_throughout
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

    def rpc(self, model, method, *args, **kwargs):
        """Call the ORM as the logged-in user from the current (Odoo) page. The test's own
        cursor is the one the server's requests use: reading through a request, rather
        than from the test while the page may still be talking to the server, keeps them
        from stepping on each other."""
        params = {"model": model, "method": method, "args": list(args), "kwargs": kwargs}
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params})
        answer = self.evaluate(
            f"fetch('/web/dataset/call_kw/{model}/{method}', {{method: 'POST', "
            f"headers: {{'Content-Type': 'application/json'}}, body: {json.dumps(body)}}})"
            ".then(response => response.json())"
        )
        if not answer or "error" in answer:
            self.test.fail(f"{model}.{method} failed: {answer and answer.get('error')}")
        return answer["result"]

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
        serve_http_requests_throughout(self)
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

    def through_the_bank_screens(self, driver):
        """Salt Edge's screens and the bank's (Business, terms, wait, itsme, accounts), then
        Odoo's waiting page until the result; returns the screens seen and the result. The
        stages of Salt Edge's fetch the waiting page showed are kept in ``self.stages``."""
        seen = []
        self.stages = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = driver.wait(
                "document.readyState === 'complete' && ("
                "(document.querySelector('meta[name=sandbox-screen]') || {}).content"
                " || (document.querySelector('.o_bank_connect_message') && 'odoo-result')"
                " || (document.querySelector('.o_bank_connect_waiting') && 'odoo-waiting'))",
                what="a sandbox screen or Odoo's return page",
            )
            if screen == "odoo-result":
                break
            if not seen or seen[-1] != screen:
                seen.append(screen)
            if screen == "odoo-waiting":
                stage = driver.evaluate(
                    "(document.querySelector('.o_bank_connect_stage') || {}).textContent || ''"
                )
                if stage and stage not in self.stages:
                    self.stages.append(stage)
            else:
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
        message = driver.evaluate("document.querySelector('.o_bank_connect_message').textContent")
        return seen, message

    def kbc_card(self, driver, selector):
        """Wait for ``selector`` on the KBC journal's dashboard card; returns its text."""
        return driver.wait(
            driver.card(".o_kanban_record", "KBC Zichtrekening")
            + f".querySelector({json.dumps(selector)}).textContent",
            what=f"{selector} on the KBC card",
        )

    def test_tour_connect_fetch_renew_and_disconnect_from_the_dashboard(self):
        """The user guide, clicked: Bank verbinden on the dashboard card, pick the bank,
        Salt Edge's screens and the bank's, Return to your application, the waiting page,
        and the card says Connected until with a date; then Fetch, Renew through the bank's
        screens again, and Disconnect on the connection."""
        browser = ChromeBrowser(self)
        try:
            self.authenticate("admin", "admin", browser=browser)
            self.http_request_strict_check = True
            self.cr.flush()
            self.cr.clear()
            driver = BrowserDriver(browser, self)
            dashboard = f"{self.base_url()}/odoo/accounting"
            browser.navigate_to(dashboard, wait_stop=True)
            # Bank verbinden on the KBC journal's card.
            driver.click_in(".o_kanban_record", "KBC Zichtrekening", ".o_bank_connect")
            # The bank picker lists the country's banks: pick KBC, Verbinden.
            driver.click_in(".modal .o_kanban_record", "KBC", "button[name=action_connect]")
            seen, message = self.through_the_bank_screens(driver)
            self.assertIn("customer_type", seen)
            self.assertIn("terms", seen)
            self.assertIn("odoo-waiting", seen, "the return shows the waiting page first")
            # Salt Edge fetches after the return: the page said what it was doing.
            self.assertTrue(self.stages, "the waiting page showed no stage of Salt Edge's fetch")
            self.assertTrue(all(stage.startswith("Salt Edge") for stage in self.stages))
            self.assertIn("connected until", message.lower())
            self.assertIn("transactions imported", message)
            # Back on the dashboard, the card shows Connected until with a date and a year.
            browser.navigate_to(dashboard, wait_stop=True)
            until = self.kbc_card(driver, ".o_bank_connected_until")
            fields = ["state", "connected_until", "saltedge_consent_id", "journal_ids"]
            [connection] = driver.rpc(
                "account.bank.connection",
                "search_read",
                [("journal_ids", "in", self.journal.ids)],
                fields,
            )
            self.assertEqual(connection["state"], "connected")
            self.assertTrue(connection["connected_until"])
            self.assertIn(connection["connected_until"][:4], until)

            def runs():
                return sorted(
                    run["trigger"]
                    for run in driver.rpc(
                        "account.bank.import.run",
                        "search_read",
                        [("connection_id", "=", connection["id"])],
                        ["trigger"],
                    )
                )

            def line_count():
                return driver.rpc(
                    "account.bank.statement.line",
                    "search_count",
                    [("journal_id", "=", self.journal.id)],
                )

            self.assertEqual(runs(), ["first"])
            lines = line_count()
            self.assertTrue(lines)

            # Fetch on the card: imported now, told how many.
            driver.click_in(".o_kanban_record", "KBC Zichtrekening", ".o_bank_fetch")
            notice = driver.wait(
                "[...document.querySelectorAll('.o_notification')]"
                ".map(n => n.textContent).find(t => t.includes('new transactions'))",
                what="the Fetch notification",
            )
            self.assertIn("KBC", notice)
            self.assertEqual(runs(), ["first", "manual"])
            self.assertEqual(line_count(), lines, "a Fetch right after the connect adds nothing")

            # Renew on the card: the bank's screens again, the same connection afterwards.
            driver.click_in(".o_kanban_record", "KBC Zichtrekening", ".o_bank_renew")
            seen, message = self.through_the_bank_screens(driver)
            self.assertIn("connected until", message.lower())
            [renewed] = driver.rpc(
                "account.bank.connection",
                "search_read",
                [("journal_ids", "in", self.journal.ids)],
                fields,
            )
            self.assertEqual(renewed["id"], connection["id"], "the same connection")
            self.assertEqual(renewed["state"], "connected")
            self.assertNotEqual(renewed["saltedge_consent_id"], connection["saltedge_consent_id"])

            # Disconnect on the connection (link on the card), confirmed.
            browser.navigate_to(dashboard, wait_stop=True)
            driver.click_in(".o_kanban_record", "KBC Zichtrekening", ".o_bank_open_connection")
            driver.click_in(".o_form_view", "KBC", "button[name=action_disconnect]")
            driver.click_in(".modal", "Disconnect this bank", ".modal-footer .btn-primary")
            driver.wait(
                "document.querySelector('.o_statusbar_status .o_arrow_button_current')"
                ".textContent.includes('Disconnected')",
                what="the connection shown as disconnected",
            )
            [gone] = driver.rpc(
                "account.bank.connection", "read", [connection["id"]], ["state", "journal_ids"]
            )
            self.assertEqual((gone["state"], gone["journal_ids"]), ("disconnected", []))
            # The card offers Connect bank again; the imported lines stay.
            browser.navigate_to(dashboard, wait_stop=True)
            self.kbc_card(driver, ".o_bank_connect")
            self.assertEqual(line_count(), lines)
        finally:
            browser.stop()
            self._wait_remaining_requests()

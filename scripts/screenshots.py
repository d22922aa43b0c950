"""The README's pictures, made by walking through the demo in headless Chromium as a user does.

    python scripts/screenshots.py BASE_URL DB OUT_DIR

BASE_URL is Odoo with the demo of make run (scripts/demo_setup.py: the Belfius journal
connected with a consent that ends in a few days, its renewal reminder in the outbox, the KBC
journal not connected), logged in as admin/admin. The Belfius pictures come first; then the
KBC journal is connected through the bank picker and the sandbox's screens, so run it on a
database that may keep that connection (make screenshots uses a throw-away one).

Exits non-zero, naming them, when any picture could not be made.
"""

import base64
import io
import json
import os
import sys
import time

import requests
from screenshot import Chrome

WIDTH, HEIGHT = 1400, 900
# Above this the PNG is reduced to 256 colours (Odoo's flat colours hardly change).
MAX_BYTES = 250_000


class ShotError(Exception):
    pass


class Walk:
    """One logged-in Chromium tab on the demo, and what a user does there."""

    def __init__(self, base_url, db, out_dir):
        self.base_url = base_url.rstrip("/")
        self.out_dir = out_dir
        self.http = requests.Session()
        answer = self.http.post(
            f"{self.base_url}/web/session/authenticate",
            json={"jsonrpc": "2.0", "params": {"db": db, "login": "admin", "password": "admin"}},
            timeout=60,
        ).json()
        if "error" in answer:
            raise SystemExit(f"Login failed: {answer['error']}")
        self.chrome = Chrome(WIDTH, HEIGHT)
        self.chrome.send("Network.enable")
        self.chrome.send("Page.enable")
        self.window(HEIGHT)
        self.chrome.send(
            "Network.setCookie",
            name="session_id",
            value=self.http.cookies["session_id"],
            url=self.base_url,
        )

    def window(self, height):
        """The browser window's size: WIDTH wide, ``height`` high, like a desktop."""
        self.chrome.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def close(self):
        self.chrome.close()

    def rpc(self, model, method, *args, **kwargs):
        answer = self.http.post(
            f"{self.base_url}/web/dataset/call_kw/{model}/{method}",
            json={
                "jsonrpc": "2.0",
                "params": {"model": model, "method": method, "args": args, "kwargs": kwargs},
            },
            timeout=60,
        ).json()
        if "error" in answer:
            raise ShotError(f"{model}.{method}: {answer['error']['data']['message']}")
        return answer["result"]

    # --- the browser ------------------------------------------------------------------

    def open(self, path):
        self.chrome.send("Page.navigate", url=self.base_url + path)

    def wait(self, expression, what, timeout=60):
        if not self.chrome.wait(expression, timeout):
            raise ShotError(f"{what} did not appear (waited {timeout} s for {expression})")

    def wait_for(self, selector, what, timeout=60):
        self.wait(f"document.querySelector({json.dumps(selector)})", what, timeout)

    def run(self, script, what):
        """Run ``script`` (a function body) in the page; it returns true when it did its job."""
        if not self.chrome.evaluate(f"(() => {{ {script} }})()"):
            raise ShotError(f"could not {what}")

    def run_and_leave(self, script, what, timeout=60):
        """Run ``script`` (a click that sends the browser on) and wait for the next page."""
        self.chrome.evaluate("window.__abcOldPage = true")
        self.run(script, what)
        self.wait(
            "!window.__abcOldPage && document.readyState === 'complete'",
            f"the page after: {what}",
            timeout,
        )

    def settle(self, seconds=1.5):
        """Let Odoo finish rendering (images, fonts, animations) before a picture."""
        self.chrome.wait(
            "[...document.images].every((image) => image.complete) && !document.querySelector("
            "'.o_loading_indicator, .o-main-components-container .o_blockUI')",
            20,
        )
        time.sleep(seconds)

    def shot(self, name):
        self.settle()
        data = base64.b64decode(self.chrome.send("Page.captureScreenshot", format="png")["data"])
        path = os.path.join(self.out_dir, name)
        with open(path, "wb") as image:
            image.write(small_png(data))
        print(f"{path} ({os.path.getsize(path) // 1024} KB)")

    # --- the pictures ----------------------------------------------------------------------

    def dashboard(self):
        """The Accounting dashboard: Belfius's Connected until in colour, KBC's Connect bank."""
        self.open("/odoo/accounting")
        self.wait_for(".o_bank_connected_until", "Belfius's Connected until")
        self.wait_for(".o_bank_connect", "the Connect bank button")
        # Both cards in view: the bank journals come after sales and purchases.
        self.run(
            "const card = [...document.querySelectorAll('.o_kanban_record')]"
            ".find((c) => c.querySelector('.o_bank_connected_until'));"
            "if (!card) return false; card.scrollIntoView({block: 'center'}); return true;",
            "scroll to the Belfius card",
        )
        self.shot("dashboard.png")

    def connection_form(self):
        """The Belfius connection: accounts, journals and chatter."""
        ids = self.rpc(
            "account.bank.connection", "search", [("provider_code", "=", "belfius_sandbox_be")]
        )
        if not ids:
            raise ShotError("the demo has no Belfius connection")
        self.open(f"/odoo/action-account_bank_connection.action_account_bank_connection/{ids[0]}")
        self.wait_for(".o_form_view .o-mail-Message", "the connection's chatter")
        # The chatter sits under the form at this width: a taller window shows both.
        self.window(HEIGHT + 500)
        try:
            self.shot("connection.png")
        finally:
            self.window(HEIGHT)

    def settings(self):
        """Settings › Accounting, scrolled to the Salt Edge block."""
        self.open("/odoo/action-account.action_account_config")
        self.wait_for("[name=saltedge_base_url]", "the Salt Edge settings block")
        # The block's title, then its settings.
        self.run(
            "const block = document.querySelector('[name=saltedge_base_url]')"
            ".closest('.o_settings_container');"
            "if (!block) return false;"
            "(block.previousElementSibling || block).scrollIntoView({block: 'start'});"
            "return true;",
            "scroll to the Salt Edge settings",
        )
        self.shot("settings.png")

    def reminder_mail(self):
        """The renewal reminder in Settings › Technical › Emails (not sent: no mail server)."""
        ids = self.rpc(
            "mail.mail",
            "search",
            [("model", "=", "account.bank.connection")],
            order="id desc",
            limit=1,
        )
        if not ids:
            raise ShotError("the demo has no reminder in the outbox")
        self.open(f"/odoo/action-mail.action_view_mail_mail/{ids[0]}")
        self.wait_for(".o_form_view .o_field_widget[name=subject]", "the reminder mail")
        self.shot("reminder-mail.png")

    def connect_kbc(self):
        """Connect bank on the KBC card, pick KBC, go through the sandbox, come back."""
        self.open("/odoo/accounting")
        self.wait_for(".o_bank_connect", "the Connect bank button")
        self.run(
            "const card = [...document.querySelectorAll('.o_kanban_record')]"
            ".find((c) => c.textContent.includes('KBC') && c.querySelector('.o_bank_connect'));"
            "if (!card) return false; card.querySelector('.o_bank_connect').click(); return true;",
            "click Connect bank on the KBC card",
        )
        self.wait_for(".modal .o_bank_provider_picker .o_kanban_record", "the bank picker")
        self.shot("bank-picker.png")
        self.run_and_leave(
            "const card = [...document.querySelectorAll('.modal .o_kanban_record')]"
            ".find((c) => c.textContent.includes('KBC'));"
            "const button = card && card.querySelector('button[name=action_connect]');"
            "if (!button) return false; button.click(); return true;",
            "click Connect on KBC in the picker",
        )
        self.go_through_sandbox()
        self.wait_for(
            ".o_bank_connect_message, .o_bank_connect_waiting", "the page back in Odoo", 90
        )
        self.shot("connect-return.png")

    def go_through_sandbox(self):
        """The sandbox's screens, each as a user fills it in, until the browser is back."""
        for _step in range(20):
            screen = self.chrome.evaluate(
                "(document.querySelector('meta[name=sandbox-screen]') || {}).content || ''"
            )
            if not screen:
                return
            if screen == "terms":
                self.run(
                    "const box = document.querySelector('input[name=accept_terms]');"
                    "if (!box) return false; box.checked = true; return true;",
                    "tick the terms",
                )
                self.shot("sandbox-terms.png")
            elif screen == "card_reader":
                self.run(
                    "document.querySelector('input[name=response_code]').value = '12345678';"
                    "return true;",
                    "type the card reader's response",
                )
            elif screen in ("expired", "unknown"):
                raise ShotError(f"the sandbox ended on its {screen!r} screen")
            self.run_and_leave(
                "const button = document.querySelector('button.primary, a.primary');"
                "if (!button) return false; button.click(); return true;",
                f"go on from the sandbox's {screen} screen",
            )
        raise ShotError("the sandbox's screens did not end")


def small_png(data):
    """The PNG optimised, and in 256 colours when it is still big; as is without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    if out.tell() > MAX_BYTES:
        out = io.BytesIO()
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, "PNG", optimize=True
        )
    return out.getvalue()


def main():
    base_url, db, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    walk = Walk(base_url, db, out_dir)
    failed = []
    try:
        # The Belfius pictures first: connecting KBC changes the dashboard.
        for step in (walk.dashboard, walk.connection_form, walk.settings, walk.reminder_mail):
            try:
                step()
            except ShotError as error:
                failed.append(f"{step.__name__}: {error}")
        try:
            walk.connect_kbc()
        except ShotError as error:
            failed.append(f"connect_kbc: {error}")
    finally:
        walk.close()
    for line in failed:
        print(f"not made: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

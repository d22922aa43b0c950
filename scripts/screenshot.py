"""Screenshots of Odoo pages in headless Chromium, logged in, for the README and for a look.

    python scripts/screenshot.py BASE_URL DB LOGIN PASSWORD OUT.png PATH [WAIT_SELECTOR]

Drives Chromium through the DevTools protocol (websocket-client); no other tool needed.
"""

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time

import requests
import websocket


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("Chromium is needed: apt-get install chromium")


class Chrome:
    def __init__(self, width=1400, height=900):
        self.profile = tempfile.mkdtemp(prefix="abc-chrome-")
        self.proc = subprocess.Popen(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        for line in self.proc.stderr:
            if "DevTools listening on ws://" in line:
                port = line.split("ws://", 1)[1].split("/", 1)[0].split(":")[1]
                break
        pages = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def send(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait(self, expression, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.evaluate(
                f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
            ):
                return True
            time.sleep(0.3)
        return False

    def close(self):
        self.proc.terminate()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    base_url, db, login, password, out, path, *rest = sys.argv[1:]
    selector = rest[0] if rest else ".o_action_manager .o_view_controller"
    session = requests.Session()
    answer = session.post(
        f"{base_url}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": login, "password": password}},
        timeout=30,
    ).json()
    if "error" in answer:
        sys.exit(f"Login failed: {answer['error']}")
    chrome = Chrome()
    try:
        chrome.send("Network.enable")
        host = requests.utils.urlparse(base_url).hostname
        chrome.send(
            "Network.setCookie",
            name="session_id",
            value=session.cookies["session_id"],
            domain=host,
            path="/",
        )
        chrome.send("Page.enable")
        chrome.send("Page.navigate", url=base_url + path)
        if not chrome.wait(f"document.querySelector({json.dumps(selector)})"):
            print(f"warning: {selector} did not appear on {path}", file=sys.stderr)
        time.sleep(1.5)
        shot = chrome.send("Page.captureScreenshot", format="png")
        with open(out, "wb") as image:
            image.write(base64.b64decode(shot["data"]))
        print(out)
    finally:
        chrome.close()


if __name__ == "__main__":
    main()

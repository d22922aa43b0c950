"""``complete_connect``: goes through the connect widget with plain HTTP form posts.

What a user does in a browser, done by ``requests``: each page names its screen in a
``<meta name="sandbox-screen">`` tag, the driver fills that screen's form and posts it,
and follows the sandbox's own redirects until one leaves the widget: that URL (the
application's ``return_to`` with its query parameters) is the result.
"""

import html.parser
import urllib.parse

MAX_STEPS = 30
CARD_READER_RESPONSE = "12345678"


class _Page(html.parser.HTMLParser):
    """The screen name, the forms (action, fields) and the links of a widget page."""

    def __init__(self):
        super().__init__()
        self.screen = None
        self.refresh = None
        self.forms = []
        self.links = []
        self.account_values = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and attrs.get("name") == "sandbox-screen":
            self.screen = attrs.get("content")
        elif tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            self.refresh = attrs.get("content", "").partition("url=")[2] or None
        elif tag == "form":
            self.forms.append(attrs.get("action"))
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "input" and attrs.get("name") == "account":
            self.account_values.append(attrs.get("value"))


def _fields(screen, page, customer_type, login_method, account_ibans, provider_code):
    """The form fields a user would submit on ``screen``."""
    fields = {"step": screen}
    if screen == "provider":
        fields["provider_code"] = provider_code
    elif screen == "customer_type":
        fields["customer_type"] = customer_type
    elif screen == "terms":
        fields["accept_terms"] = "1"
    elif screen == "login":
        fields["login_method"] = login_method
    elif screen == "card_reader":
        fields["response_code"] = CARD_READER_RESPONSE
    elif screen == "accounts":
        chosen = page.account_values if account_ibans is None else list(account_ibans)
        fields["account"] = chosen
    elif screen in ("wait", "activating"):
        fields["action"] = "continue"
    elif screen == "success":
        fields["action"] = "return"
    return fields


def complete_connect(
    connect_url,
    *,
    customer_type="business",
    login_method="itsme",
    account_ibans=None,
    cancel_at=None,
    session=None,
    provider_code=None,
):
    """Drive the widget at ``connect_url``; return the final redirect URL (``return_to``...).

    ``account_ibans``: the accounts to tick (None: all, as the page shows them).
    ``cancel_at``: the screen (``customer_type``, ``terms``, ``wait``, ``login``, ...) at
    which the user clicks Cancel. ``provider_code``: the bank to pick when the connect call
    named none. ``session``: a ``requests.Session`` to use.
    """
    import requests  # the sandbox app itself runs without requests

    http = session or requests.Session()
    widget_root = urllib.parse.urljoin(connect_url, "/connect/")
    url, method, data = connect_url, "GET", None
    for _step in range(MAX_STEPS):
        if method == "GET":
            response = http.get(url, allow_redirects=False, timeout=30)
        else:
            response = http.post(url, data=data, allow_redirects=False, timeout=30)
        if response.is_redirect:
            target = urllib.parse.urljoin(url, response.headers["Location"])
            if not target.startswith(widget_root):
                return target
            url, method, data = target, "GET", None
            continue
        page = _Page()
        page.feed(response.text)
        screen = page.screen
        if screen in ("expired", "unknown"):
            if page.links:
                return urllib.parse.urljoin(url, page.links[-1])
            raise RuntimeError(f"The connect session ended on the {screen!r} screen.")
        if screen is None or not page.forms:
            raise RuntimeError(f"Unexpected widget page (HTTP {response.status_code}).")
        action = urllib.parse.urljoin(url, page.forms[0])
        if screen == cancel_at:
            url, method, data = action, "POST", {"step": screen, "action": "cancel"}
            continue
        if screen == "provider" and provider_code is None:
            raise RuntimeError("The connect call named no provider: pass provider_code.")
        fields = _fields(screen, page, customer_type, login_method, account_ibans, provider_code)
        url, method, data = action, "POST", fields
    raise RuntimeError(f"The widget did not finish in {MAX_STEPS} steps.")

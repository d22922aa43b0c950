"""The connect widget behind ``connect_url``: the screens of the user guide, step by step.

provider (only when the connect call named none) -> customer_type (Business/Personal,
Proceed) -> terms (tick, Confirm) -> wait ("do not close this screen") -> login (itsme or
card reader) -> card_reader (only for the card reader) -> accounts (all ticked, Confirm)
-> activating (wait again) -> success (Return to your application) -> done. An interactive
refresh shows the bank's screens only: login -> card_reader (for the card reader) ->
activating -> success -> done.

Confirming the accounts (for a refresh: logging in) starts the fetch, which goes on in the
background (see fetches.py): the user may return to the application before it ends.

Each POST names its step; a POST for any other step than the session's current one (a
double submit, a stale tab, a refresh) changes nothing and shows the current screen, so a
step never runs twice and one session makes at most one connection. Cancel redirects to
``return_to``. The redirect carries ``connection_id`` only when the connect asked for it
(``return_connection_id``), ``error_class`` and ``error_message`` only when it asked for
``return_error_class``; otherwise it is ``return_to`` as given.
"""

import re
import urllib.parse

from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from . import pages
from .errors import ApiError
from .providers import PROVIDERS_BY_CODE, matching_providers, stable_number
from .state import parse_iso

# Salt Edge's own screens and the bank's screens. Leaving the bank's screens is the
# documented "customer denied access" class; leaving Salt Edge's screens has no published
# class, so the sandbox names it ConnectionCancelled.
WIDGET_STEPS = ("provider", "customer_type", "terms", "wait")
BANK_STEPS = ("login", "card_reader", "accounts")
CANCEL_CLASSES = {
    **dict.fromkeys(WIDGET_STEPS, "ConnectionCancelled"),
    **dict.fromkeys(BANK_STEPS, "ProviderAccessNotGranted"),
}
CANCEL_MESSAGE = "The user cancelled the connection."
WAIT_STEPS = {"wait": "login", "activating": "success"}
EXPIRED_CLASS = "ConnectSessionExpired"


def add_query(url, params):
    """``url`` with ``params`` added to its query string, keeping what it already had."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in query if key not in params]
    query += [(key, value) for key, value in params.items() if value is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def return_hints(session, params):
    """The parameters of the redirect back that the connect asked for."""
    allowed = set()
    if session.get("return_connection_id"):
        allowed.add("connection_id")
    if session.get("return_error_class"):
        allowed.update(("error_class", "error_message"))
    return {key: value for key, value in params.items() if key in allowed}


def html(body, status=200):
    return Response(body, status=status, content_type="text/html; charset=utf-8")


class Widget:
    """Serves ``/connect/<token>`` for one sandbox app."""

    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.bank = app.bank

    def handle(self, request, token, continue_step=None):
        """GET shows the current screen, POST submits it, /continue ends a wait screen."""
        with self.state.lock:
            return self._handle(request, token, continue_step)

    def _handle(self, request, token, continue_step):
        session = self.state["sessions"].get(token)
        if session is None:
            t = pages.texts(request.accept_languages.best)
            return html(pages.message_page("unknown", t, t["unknown_head"], ""), 404)
        t = pages.texts(session["attempt"].get("locale"))
        here = f"/connect/{token}"
        if session["step"] == "done":
            return redirect(session["result_url"], 303)
        if parse_iso(session["expires_at"]) <= self.state.now():
            params = {"error_class": EXPIRED_CLASS, "error_message": "The connect session expired."}
            link = add_query(session["attempt"]["return_to"], return_hints(session, params))
            body = pages.message_page("expired", t, t["expired_head"], t["expired_text"], link)
            return html(body, 410)
        step = session["step"]
        outcome = None
        if continue_step is not None:
            if continue_step == step and step in WAIT_STEPS:
                outcome = self._advance_wait(session, t)
        elif request.method == "POST":
            form = request.form
            if form.get("step") != step:
                return redirect(here, 303)
            if form.get("action") == "cancel" and step in CANCEL_CLASSES:
                outcome = self._cancel(session)
            elif step in WAIT_STEPS:
                outcome = self._advance_wait(session, t)
            else:
                outcome = getattr(self, f"_submit_{step}")(session, form, t)
        if outcome and outcome.startswith("error:"):
            return html(self._render(session, t, outcome[len("error:") :]))
        if outcome:
            return redirect(outcome, 303)
        if request.method == "POST" or continue_step is not None:
            return redirect(here, 303)
        return html(self._render(session, t))

    # --- transitions -----------------------------------------------------------------
    def _finish(self, session, params):
        hints = return_hints(session, params)
        session["result_url"] = add_query(session["attempt"]["return_to"], hints)
        session["step"] = "done"
        self.state.save()
        return session["result_url"]

    def _cancel(self, session):
        error_class = CANCEL_CLASSES[session["step"]]
        connection = self.bank.fail_session(
            session, error_class, CANCEL_MESSAGE, user_cancelled=True
        )
        params = {"error_class": error_class, "error_message": CANCEL_MESSAGE}
        if connection is not None:
            params = {"connection_id": connection["id"], **params}
        return self._finish(session, params)

    def _advance_wait(self, session, t):
        provider = PROVIDERS_BY_CODE[session["provider_code"]]
        if session["step"] == "wait" and provider.connect_error:
            return self._fail(session, *provider.connect_error)
        session["step"] = WAIT_STEPS[session["step"]]
        self.state.save()
        return None

    def _fail(self, session, error_class, message):
        connection = self.bank.fail_session(session, error_class, message)
        params = {"error_class": error_class, "error_message": message}
        if connection is not None:
            params = {"connection_id": connection["id"], **params}
        return self._finish(session, params)

    def _logged_in(self, session):
        """After the bank's login: a refresh starts its fetch, a connect shows the accounts."""
        if session["kind"] != "refresh":
            session["step"] = "accounts"
            self.state.save()
            return None
        try:
            self.bank.finish_session(session)
        except ApiError as error:  # the consent ended while the user was at the bank
            return self._fail(session, error.error_class, error.message)
        session["step"] = "activating"
        self.state.save()
        return None

    def _submit_provider(self, session, form, t):
        code = form.get("provider_code")
        if code not in {provider.code for provider in self._pickable(session)}:
            return "error:" + t["provider_head"]
        session.update(provider_code=code, step="customer_type")
        self.state.save()
        return None

    def _submit_customer_type(self, session, form, t):
        if form.get("customer_type") not in ("business", "personal"):
            return "error:" + t["type_missing"]
        session.update(customer_type=form["customer_type"], step="terms")
        self.state.save()
        return None

    def _submit_terms(self, session, form, t):
        if not form.get("accept_terms"):
            return "error:" + t["terms_missing"]
        session["step"] = "wait"
        self.state.save()
        return None

    def _submit_login(self, session, form, t):
        method = form.get("login_method")
        provider = PROVIDERS_BY_CODE[session["provider_code"]]
        if method not in provider.login_methods:
            return "error:" + t["login_missing"]
        session["login_method"] = method
        if method == "card_reader":
            session["step"] = "card_reader"
            self.state.save()
            return None
        return self._logged_in(session)

    def _submit_card_reader(self, session, form, t):
        if not re.fullmatch(r"\d{8}", (form.get("response_code") or "").strip()):
            return "error:" + t["card_invalid"]
        return self._logged_in(session)

    def _submit_accounts(self, session, form, t):
        provider = PROVIDERS_BY_CODE[session["provider_code"]]
        offered = [account.iban for account in provider.accounts]
        chosen = [iban for iban in form.getlist("account") if iban in offered]
        if not chosen:
            return "error:" + t["accounts_missing"]
        session["step"] = "activating"
        self.bank.finish_session(session, chosen)
        return None

    def _submit_success(self, session, form, t):
        return self._finish(session, {"connection_id": session["connection_id"]})

    # --- screens ---------------------------------------------------------------------
    def _pickable(self, session):
        """The banks of the connect's provider filter, as ``GET /providers`` lists them."""
        wanted = session.get("provider_filter") or {}
        return matching_providers(wanted.get("country_code"), bool(wanted.get("include_sandboxes")))

    def _render(self, session, t, error=None):
        step, token = session["step"], session["token"]
        action = f"/connect/{token}"
        provider = PROVIDERS_BY_CODE.get(session["provider_code"] or "")
        cancel = pages.cancel_form(action, step, t) if step in CANCEL_CLASSES else None
        refresh = f"{action}/continue?step={step}" if step in WAIT_STEPS else None
        body = pages.error_box(error) + getattr(self, f"_body_{step}")(session, t, action)
        return pages.page(step, t, body, provider, refresh, cancel)

    def _body_provider(self, session, t, action):
        choices = "".join(
            pages.radio("provider_code", provider.code, provider.name)
            for provider in self._pickable(session)
        )
        return f"<h1>{t['provider_head']}</h1>" + pages.form(
            action, "provider", choices, t["proceed"]
        )

    def _body_customer_type(self, session, t, action):
        choices = pages.radio("customer_type", "business", t["business"], True) + pages.radio(
            "customer_type", "personal", t["personal"]
        )
        return f"<h1>{t['type_head']}</h1>" + pages.form(
            action, "customer_type", choices, t["proceed"]
        )

    def _body_terms(self, session, t, action):
        provider = PROVIDERS_BY_CODE[session["provider_code"]]
        days = session["consent"].get("period_days") or provider.max_consent_days
        text = t["terms_text"].format(days=days)
        box = pages.checkbox("accept_terms", "1", text, checked=False)
        return f"<h1>{t['terms_head']}</h1>" + pages.form(action, "terms", box, t["confirm"])

    def _body_wait(self, session, t, action, head="wait_head", text="wait_text"):
        return f"<h1>{pages.escape(t[head])}</h1><p>{pages.escape(t[text])}</p>" + pages.form(
            action, session["step"], "", t["continue"], "action", "continue"
        )

    def _body_activating(self, session, t, action):
        return self._body_wait(session, t, action, "activating_head", "activating_text")

    def _body_login(self, session, t, action):
        provider = PROVIDERS_BY_CODE[session["provider_code"]]
        choices = "".join(
            pages.radio("login_method", method, t[method], index == 0)
            for index, method in enumerate(provider.login_methods)
        )
        return f"<h1>{t['login_head']}</h1>" + pages.form(action, "login", choices, t["login"])

    def _body_card_reader(self, session, t, action):
        challenge = f"{stable_number(session['token'], 'challenge') % 10**8:08d}"
        field = (
            f'<p><label>{pages.escape(t["card_response"])} '
            '<input name="response_code" inputmode="numeric" maxlength="8"></label></p>'
        )
        text = pages.escape(t["card_text"].format(challenge=challenge))
        return f"<h1>{t['card_head']}</h1><p>{text}</p>" + pages.form(
            action, "card_reader", field, t["login"]
        )

    def _body_accounts(self, session, t, action):
        provider = PROVIDERS_BY_CODE[session["provider_code"]]
        boxes = "".join(
            pages.checkbox("account", account.iban, account.name, pages.format_iban(account.iban))
            for account in provider.accounts
        )
        return (
            f"<h1>{pages.escape(t['accounts_head'])}</h1><p>{pages.escape(t['accounts_text'])}</p>"
            + pages.form(action, "accounts", boxes, t["confirm"])
        )

    def _body_success(self, session, t, action):
        connection = self.state["connections"][session["connection_id"]]
        consent = self.bank.consent_of(connection)
        until = parse_iso(consent["expires_at"]).strftime("%d/%m/%Y")
        return (
            f"<h1>{pages.escape(t['success_head'])}</h1>"
            f"<p>{pages.escape(t['success_text'].format(until=until))}</p>"
            + pages.form(action, "success", "", t["return"], "action", "return")
        )

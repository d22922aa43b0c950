"""The Salt Edge API v6 endpoints the project uses, with Salt Edge's shapes and errors.

Lists answer ``{"data": [...], "meta": {"next_id", "next_page"}}``; ``from_id`` is an
inclusive cursor over ids sorted ascending and ``next_id`` is null on the last page.
"""

import datetime
import json
import urllib.parse

from .bank import public
from .errors import ApiError
from .providers import PROVIDERS_BY_CODE, matching_providers, provider_json
from .responses import json_response

SCOPES = ("accounts", "transactions", "holder_info")
MAX_PER_PAGE = 1000
# Set in a request's WSGI environ by the ``page_cycle`` fault (see control.py).
PAGE_CYCLE = "sandbox.page_cycle"


def read_body(request):
    """The request's JSON object (``{}`` for an empty body)."""
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError("JsonParseError", "The request body is not valid JSON.") from error
    if not isinstance(document, dict):
        raise ApiError("WrongRequestFormat", "The request body must be a JSON object.")
    return document


def read_data(request, required=True):
    """The ``data`` object of the request body."""
    document = read_body(request)
    data = document.get("data")
    if data is None and not required:
        return {}
    if not isinstance(data, dict):
        raise ApiError("WrongRequestFormat", "The request body must have a 'data' object.")
    return data


def is_true(value):
    """A query/JSON flag: true, 1 or yes."""
    return str(value).lower() in ("1", "true", "yes")


def flag(data, *names):
    """A boolean of ``data`` under the first of ``names`` present (None when none is)."""
    for name in names:
        if data.get(name) is not None:
            value = data[name]
            if not isinstance(value, bool):
                raise ApiError("WrongRequestFormat", f"'{name}' must be true or false.")
            return value
    return None


def session_options(data):
    """What connect, reconnect and refresh take besides the attempt: the return hints
    (false unless asked, as at Salt Edge) and automatic_refresh (v5: daily_refresh)."""
    return {
        "return_connection_id": bool(flag(data, "return_connection_id")),
        "return_error_class": bool(flag(data, "return_error_class")),
        "automatic_refresh": flag(data, "automatic_refresh", "daily_refresh"),
    }


class Api:
    """Endpoint methods, each ``(request, **path values) -> Response``."""

    ROUTES = (
        ("/providers", "providers", ["GET"]),
        ("/providers/<code>", "provider_show", ["GET"]),
        ("/customers", "customers", ["GET"]),
        ("/customers", "customer_create", ["POST"]),
        ("/customers/<customer_id>", "customer_show", ["GET"]),
        ("/connections", "connections", ["GET"]),
        ("/connections/connect", "connect", ["POST"]),
        ("/connections/<connection_id>", "connection_show", ["GET"]),
        ("/connections/<connection_id>", "connection_remove", ["DELETE"]),
        ("/connections/<connection_id>/reconnect", "reconnect", ["POST"]),
        ("/connections/<connection_id>/refresh", "refresh", ["POST", "PUT"]),
        ("/connections/<connection_id>/background_refresh", "background_refresh", ["POST", "PUT"]),
        ("/consents", "consents", ["GET"]),
        ("/consents/<consent_id>", "consent_show", ["GET"]),
        ("/accounts", "accounts", ["GET"]),
        ("/transactions", "transactions", ["GET"]),
    )

    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.bank = app.bank
        self.config = app.config

    # --- helpers -----------------------------------------------------------------------
    def page(self, request, items, to_json):
        """One page of ``items`` (sorted by id) from ``from_id``, with Salt Edge's meta.
        Under the ``page_cycle`` fault ``next_id`` points back to the page before."""
        every = items
        from_id = request.args.get("from_id")
        if from_id:
            if not from_id.isdigit():
                raise ApiError("WrongRequestFormat", "from_id must be an id (digits).")
            items = [item for item in items if int(item["id"]) >= int(from_id)]
        size = self.config.page_size
        if request.args.get("per_page", "").isdigit():
            size = max(1, min(MAX_PER_PAGE, int(request.args["per_page"])))
        chunk, rest = items[:size], items[size:]
        next_id = rest[0]["id"] if rest else None
        if request.environ.get(PAGE_CYCLE) and every:
            start = len(every) - len(items)
            next_id = every[max(0, start - size)]["id"]
        next_page = None
        if next_id is not None:
            args = [(k, v) for k, v in request.args.items(multi=True) if k != "from_id"]
            query = urllib.parse.urlencode([*args, ("from_id", next_id)])
            next_page = f"{request.path}?{query}"
        document = {
            "data": [to_json(item) for item in chunk],
            "meta": {"next_id": next_id, "next_page": next_page},
        }
        return json_response(document)

    def base_url(self, request):
        """The sandbox's URL as the client reached it (for connect_url and logos)."""
        return request.host_url.rstrip("/")

    def connect_params(self, request, data, provider=None, reconnect=False):
        """Check a connect/reconnect body; return (provider, provider filter, consent, attempt)."""
        consent = data.get("consent")
        if consent is None and not reconnect:
            raise ApiError("WrongRequestFormat", "'consent' is required.")
        consent = consent or {}
        if not isinstance(consent, dict):
            raise ApiError("WrongRequestFormat", "'consent' must be an object.")
        scopes = consent.get("scopes") or ["accounts", "transactions"]
        if not isinstance(scopes, list) or not set(scopes) <= set(SCOPES):
            raise ApiError("AispConsentScopesInvalid", f"Consent scopes must be among {SCOPES}.")
        period = consent.get("period_days")
        if period is not None and (
            isinstance(period, bool) or not isinstance(period, int) or period <= 0
        ):
            raise ApiError("InvalidAispConsentPeriod", "period_days must be a positive integer.")
        from_date = consent.get("from_date")
        if from_date is not None:
            try:
                parsed = datetime.date.fromisoformat(str(from_date))
            except ValueError as error:
                message = "from_date must be a date (YYYY-MM-DD)."
                raise ApiError("InvalidFromDate", message) from error
            if parsed > self.state.today():
                raise ApiError("InvalidFromDate", "from_date cannot be in the future.")
        attempt_request = self.attempt_params(data)
        wanted = data.get("provider") or {}
        if not isinstance(wanted, dict):
            raise ApiError("WrongRequestFormat", "'provider' must be an object.")
        if provider is None:
            code = wanted.get("code") or data.get("provider_code")
            provider = self.bank.provider(code) if code else None
        if provider is not None and period:
            period = min(period, provider.max_consent_days)
        consent_request = {"scopes": scopes, "period_days": period, "from_date": from_date}
        country = wanted.get("country_code") or data.get("country_code")
        provider_filter = {
            "country_code": str(country).upper() if country else None,
            "include_sandboxes": is_true(wanted.get("include_sandboxes", False)),
        }
        return provider, provider_filter, consent_request, attempt_request

    def attempt_params(self, data):
        """The ``attempt`` of a connect, reconnect or refresh body (return_to required)."""
        attempt = data.get("attempt") or {}
        if not isinstance(attempt, dict):
            raise ApiError("WrongRequestFormat", "'attempt' must be an object.")
        return_to = attempt.get("return_to") or data.get("return_to")
        parts = urllib.parse.urlsplit(str(return_to or ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiError("ReturnURLInvalid", "attempt.return_to must be an http(s) URL.")
        custom_fields = attempt.get("custom_fields") or data.get("custom_fields") or {}
        if not isinstance(custom_fields, dict):
            raise ApiError("WrongRequestFormat", "custom_fields must be an object.")
        return {
            "return_to": return_to,
            "locale": attempt.get("locale") or "en",
            "fetch_scopes": self.fetch_scopes(attempt),
            "from_date": attempt.get("from_date"),
            "custom_fields": custom_fields,
        }

    @staticmethod
    def fetch_scopes(attempt):
        scopes = attempt.get("fetch_scopes") or ["accounts", "transactions"]
        if not isinstance(scopes, list) or not set(scopes) <= set(SCOPES):
            raise ApiError("WrongRequestFormat", f"fetch_scopes must be among {SCOPES}.")
        return scopes

    def session_answer(self, request, session):
        """The answer to connect/reconnect."""
        data = {
            "expires_at": session["expires_at"],
            "connect_url": f"{self.base_url(request)}/connect/{session['token']}",
            "customer_id": session["customer_id"],
        }
        if session["connection_id"]:
            data["connection_id"] = session["connection_id"]
        return json_response({"data": data})

    def connection_for(self, request, required=True):
        """The connection named by ?connection_id=, if any (required: or WrongRequestFormat)."""
        connection_id = request.args.get("connection_id")
        if not connection_id:
            if required:
                raise ApiError("WrongRequestFormat", "connection_id is required.")
            return None
        return self.bank.connection(connection_id)

    # --- providers -----------------------------------------------------------------
    def providers(self, request):
        """GET /providers?country_code=&include_sandboxes=: the banks of the country; the
        fake ones (country XF) only with include_sandboxes and country XF or none."""
        country = request.args.get("country_code") or None
        sandboxes = is_true(request.args.get("include_sandboxes", "false"))
        found = matching_providers(country, sandboxes)
        base = self.base_url(request)
        items = [provider_json(provider, base) for provider in found]
        return self.page(request, items, lambda item: item)

    def provider_show(self, request, code):
        """GET /providers/{code}."""
        provider = PROVIDERS_BY_CODE.get(code)
        if provider is None:
            raise ApiError("ProviderNotFound", f"Provider with code '{code}' was not found.")
        return json_response({"data": provider_json(provider, self.base_url(request))})

    # --- customers -----------------------------------------------------------------
    def customer_create(self, request):
        """POST /customers {data:{identifier}}: id given as both id and customer_id."""
        data = read_data(request)
        identifier = data.get("identifier")
        if not isinstance(identifier, str) or not identifier.strip():
            raise ApiError("WrongRequestFormat", "data.identifier is required.")
        customer = self.bank.create_customer(identifier)
        return json_response({"data": self.bank.customer_json(customer)})

    def customers(self, request):
        """GET /customers (?identifier= to find one after DuplicatedCustomer)."""
        with self.state.lock:
            found = sorted(self.state["customers"].values(), key=lambda c: int(c["id"]))
            identifier = request.args.get("identifier")
            if identifier:
                found = [customer for customer in found if customer["identifier"] == identifier]
            return self.page(request, found, self.bank.customer_json)

    def customer_show(self, request, customer_id):
        """GET /customers/{id}."""
        customer = self.bank.customer(customer_id)
        return json_response({"data": self.bank.customer_json(customer)})

    # --- connections ---------------------------------------------------------------
    def connect(self, request):
        """POST /connections/connect: a connect session; answers expires_at and connect_url."""
        data = read_data(request)
        customer = self.bank.customer(data.get("customer_id"))
        provider, wanted, consent, attempt = self.connect_params(request, data)
        options = {**session_options(data), "provider_filter": wanted}
        session = self.bank.new_session(
            "connect", customer["id"], provider, consent, attempt, options=options
        )
        return self.session_answer(request, session)

    def reconnect(self, request, connection_id):
        """POST /connections/{id}/reconnect: a session that renews the consent, same connection."""
        data = read_data(request, required=False)
        connection = self.bank.connection(connection_id)
        if connection["_removed"]:
            raise ApiError("ConnectionDisabled", "This connection was removed.")
        provider = PROVIDERS_BY_CODE[connection["provider_code"]]
        _provider, _wanted, consent, attempt = self.connect_params(
            request, data, provider, reconnect=True
        )
        session = self.bank.new_session(
            "reconnect",
            connection["customer_id"],
            provider,
            consent,
            attempt,
            connection["id"],
            options=session_options(data),
        )
        return self.session_answer(request, session)

    def refresh(self, request, connection_id):
        """POST /connections/{id}/refresh: the interactive refresh. The user opens the
        ``connect_url``, logs in at the bank (its screens only), the consent stays as it
        is, and the staged fetch follows."""
        data = read_data(request)
        with self.state.lock:
            connection = self.bank.connection(connection_id)
            self.bank.check_refreshable(connection)
            attempt = self.attempt_params(data)
            options = session_options(data)
            options.pop("automatic_refresh")
            provider = PROVIDERS_BY_CODE[connection["provider_code"]]
            session = self.bank.new_session(
                "refresh",
                connection["customer_id"],
                provider,
                {},
                attempt,
                connection["id"],
                options=options,
            )
        return self.session_answer(request, session)

    def background_refresh(self, request, connection_id):
        """POST /connections/{id}/background_refresh: a refresh without the user, within
        the consent and the limits; answers the connection at once, the fetch follows."""
        data = read_data(request, required=False)
        attempt = data.get("attempt") or {}
        if not isinstance(attempt, dict):
            raise ApiError("WrongRequestFormat", "'attempt' must be an object.")
        scopes = self.fetch_scopes(attempt) if attempt.get("fetch_scopes") else None
        with self.state.lock:
            connection = self.bank.background_refresh(connection_id, scopes)
            return json_response({"data": self.bank.connection_json(connection)})

    def connection_show(self, request, connection_id):
        """GET /connections/{id}: status, consent id, last attempt, refresh times."""
        with self.state.lock:
            connection = self.bank.connection(connection_id)
            return json_response({"data": self.bank.connection_json(connection)})

    def connections(self, request):
        """GET /connections?customer_id=."""
        with self.state.lock:
            customer = self.bank.customer(request.args.get("customer_id"))
            found = sorted(
                (
                    c
                    for c in self.state["connections"].values()
                    if c["customer_id"] == customer["id"]
                ),
                key=lambda c: int(c["id"]),
            )
            return self.page(request, found, self.bank.connection_json)

    def connection_remove(self, request, connection_id):
        """DELETE /connections/{id}: revokes the consent; a destroy callback follows."""
        connection = self.bank.remove(connection_id)
        data = {"id": connection["id"], "connection_id": connection["id"], "removed": True}
        return json_response({"data": data})

    # --- consents, accounts, transactions --------------------------------------------
    def consents(self, request):
        """GET /consents?connection_id= (or customer_id=): every consent, oldest first."""
        with self.state.lock:
            connection = self.connection_for(request, required=False)
            if connection is not None:
                found = [
                    c
                    for c in self.state["consents"].values()
                    if c["connection_id"] == connection["id"]
                ]
            else:
                customer = self.bank.customer(request.args.get("customer_id"))
                found = [
                    c for c in self.state["consents"].values() if c["customer_id"] == customer["id"]
                ]
            found.sort(key=lambda consent: int(consent["id"]))
            return self.page(request, found, public)

    def consent_show(self, request, consent_id):
        """GET /consents/{id}."""
        consent = self.state["consents"].get(consent_id)
        if consent is None:
            raise ApiError("AispConsentNotFound", f"Consent with id: '{consent_id}' was not found.")
        return json_response({"data": public(consent)})

    def accounts(self, request):
        """GET /accounts?connection_id= (or customer_id=), refused without a live consent."""
        with self.state.lock:
            connection = self.connection_for(request, required=False)
            if connection is not None:
                self.bank.check_data_access(connection)
                found = self.bank.accounts_of(connection)
            else:
                customer = self.bank.customer(request.args.get("customer_id"))
                found = []
                for each in self.state["connections"].values():
                    if each["customer_id"] == customer["id"]:
                        found += self.bank.accounts_of(each)
                found.sort(key=lambda account: int(account["id"]))
            return self.page(request, found, public)

    def transactions(self, request):
        """GET /transactions?connection_id=&account_id=&from_id=&pending=: posted, or pending."""
        with self.state.lock:
            connection = self.connection_for(request)
            account_id = request.args.get("account_id") or None
            if account_id is not None:
                ids = {account["id"] for account in self.bank.accounts_of(connection)}
                if account_id not in ids:
                    raise ApiError(
                        "AccountNotFound", f"Account with id: '{account_id}' was not found."
                    )
            self.bank.check_data_access(connection)
            pending = is_true(request.args.get("pending", "false"))
            found = self.bank.transactions_of(connection, account_id, pending)
            return self.page(request, found, public)

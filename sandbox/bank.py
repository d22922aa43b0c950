"""What Salt Edge does with customers, connections, consents, accounts and transactions.

Every method runs under the state lock and leaves the state saved. Callbacks are queued
with ``send`` (delivered by background threads, those of one connection in order) as the
change that causes them is made, so a fetch's stages arrive in the order they happened.
"""

import datetime
import secrets

from . import ledger
from .accounts import AccountBook
from .errors import ApiError
from .fetches import Fetches
from .providers import BUSINESS_HOLDER, PERSONAL_HOLDER, PROVIDER_IDS, PROVIDERS_BY_CODE
from .state import iso, parse_iso

FIRST_STAGES = ("start", "connect")
SESSION_LIFETIME = datetime.timedelta(hours=1)
BACKGROUND_FETCHES_PER_DAY = 4
REFRESH_KINDS = ("refresh", "background", "automatic")  # what fail_next makes fail


def public(record):
    """A stored record without the sandbox's private ``_`` fields."""
    return {key: value for key, value in record.items() if not key.startswith("_")}


class Bank(AccountBook):
    """Salt Edge's behaviour over the sandbox state."""

    def __init__(self, state, config, send=None):
        self.state = state
        self.config = config
        self.send = send or (lambda callbacks: None)
        self.fetches = Fetches(state, config)

    # --- lookups -------------------------------------------------------------------
    def provider(self, code):
        """The provider with ``code``, or ProviderNotFound."""
        provider = PROVIDERS_BY_CODE.get(code or "")
        if provider is None:
            raise ApiError("ProviderNotFound", f"Provider with code '{code}' was not found.")
        return provider

    def customer(self, customer_id):
        """The customer with ``customer_id``, or CustomerNotFound."""
        customer = self.state["customers"].get(str(customer_id or ""))
        if customer is None:
            raise ApiError("CustomerNotFound", f"Customer with id: '{customer_id}' was not found.")
        return customer

    def connection(self, connection_id):
        """The connection with ``connection_id``, or ConnectionNotFound."""
        connection = self.state["connections"].get(str(connection_id or ""))
        if connection is None:
            message = f"Connection with id: '{connection_id}' was not found."
            raise ApiError("ConnectionNotFound", message)
        return connection

    def consent_of(self, connection):
        """The connection's current consent (its last_consent_id), or None."""
        return self.state["consents"].get(connection.get("last_consent_id") or "")

    def consent_expired(self, consent):
        """Whether the consent's expires_at has passed on the sandbox clock."""
        return consent is not None and parse_iso(consent["expires_at"]) <= self.state.now()

    def status(self, connection):
        """active, inactive (consent expired, revoked or never given) or disabled (removed)."""
        if connection["_removed"]:
            return "disabled"
        consent = self.consent_of(connection)
        if consent is None or consent["revoked_at"] or self.consent_expired(consent):
            return "inactive"
        return "active"

    def check_data_access(self, connection):
        """Refuse reading or refreshing data without a live consent, like Salt Edge."""
        consent = self.consent_of(connection)
        if connection["_removed"] or (consent and consent["revoked_at"]):
            raise ApiError("AispConsentRevoked", "The consent of this connection was revoked.")
        if self.consent_expired(consent):
            message = f"The consent of this connection expired at {consent['expires_at']}."
            raise ApiError("AispConsentExpired", message)

    # --- JSON ------------------------------------------------------------------------
    def customer_json(self, customer):
        """The customer as the API shows it."""
        return {**public(customer), "customer_id": customer["id"]}

    def connection_json(self, connection):
        """The connection as the API shows it, with its status and last attempt."""
        provider = PROVIDERS_BY_CODE[connection["provider_code"]]
        customer = self.state["customers"].get(connection["customer_id"], {})
        attempt = self.state["attempts"].get(connection["_last_attempt_id"] or "")
        return {
            **public(connection),
            "customer_identifier": customer.get("identifier"),
            "provider_id": PROVIDER_IDS[provider.code],
            "provider_name": provider.name,
            "country_code": provider.country_code,
            "status": self.status(connection),
            "automatic_refresh": bool(connection.get("automatic_refresh")),
            "daily_refresh": bool(connection.get("automatic_refresh")),
            "last_attempt": public(attempt) if attempt else None,
        }

    # --- customers -----------------------------------------------------------------
    def create_customer(self, identifier):
        """A new customer; DuplicatedCustomer when the identifier is taken."""
        with self.state.lock:
            if any(c["identifier"] == identifier for c in self.state["customers"].values()):
                message = f"Customer with identifier '{identifier}' already exists."
                raise ApiError("DuplicatedCustomer", message)
            now = self.state.now_iso()
            customer = {
                "id": self.state.new_id(),
                "identifier": identifier,
                "categorization_type": "business",
                "blocked_at": None,
                "created_at": now,
                "updated_at": now,
            }
            self.state["customers"][customer["id"]] = customer
            self.state.save()
            return customer

    # --- connect sessions ----------------------------------------------------------
    def new_session(
        self, kind, customer_id, provider, consent, attempt, connection_id=None, options=None
    ):
        """A connect, reconnect or (interactive) refresh session behind a ``connect_url``.

        ``options``: ``return_connection_id`` / ``return_error_class`` (what the final
        redirect may carry), ``automatic_refresh`` (None: unchanged), ``provider_filter``.
        A refresh shows the bank's screens only: it starts at the login.
        """
        with self.state.lock:
            now = self.state.now()
            if kind == "refresh":
                step = "login"
            else:
                step = "customer_type" if provider else "provider"
            session = {
                "token": secrets.token_urlsafe(18),
                "kind": kind,
                "customer_id": customer_id,
                "connection_id": connection_id,
                "provider_code": provider.code if provider else None,
                "consent": consent,
                "attempt": attempt,
                "created_at": iso(now),
                "expires_at": iso(now + SESSION_LIFETIME),
                "step": step,
                "customer_type": None,
                "login_method": None,
                "result_url": None,
                "return_connection_id": False,
                "return_error_class": False,
                "automatic_refresh": None,
                "provider_filter": {},
                **(options or {}),
            }
            self.state["sessions"][session["token"]] = session
            self.state.save()
            return session

    def _new_attempt(self, connection, attempt_request, now, user_present=True):
        automatic = bool(connection.get("automatic_refresh"))
        attempt = {
            "id": self.state.new_id(),
            "connection_id": connection["id"],
            "api_mode": "service",
            "api_version": "6",
            "automatic_fetch": True,
            "automatic_refresh": automatic,
            "daily_refresh": automatic,
            "categorization": "none",
            "custom_fields": attempt_request.get("custom_fields") or {},
            "device_type": "desktop",
            "remote_ip": "127.0.0.1",
            "exclude_accounts": [],
            "user_present": user_present,
            "fetch_scopes": attempt_request.get("fetch_scopes") or ["accounts", "transactions"],
            "from_date": attempt_request.get("from_date"),
            "to_date": None,
            "locale": attempt_request.get("locale") or "en",
            "interactive": False,
            "partial": False,
            "store_credentials": True,
            "show_consent_confirmation": False,
            "finished": False,
            "finished_recent": False,
            "success_at": None,
            "fail_at": None,
            "fail_error_class": None,
            "fail_message": None,
            "stages": [],
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        self.state["attempts"][attempt["id"]] = attempt
        connection.update(_last_attempt_id=attempt["id"], updated_at=iso(now))
        return attempt

    def _callback_data(self, connection, attempt):
        return {
            "connection_id": connection["id"],
            "customer_id": connection["customer_id"],
            "custom_fields": attempt["custom_fields"],
        }

    def _stage(self, connection, attempt, name, notify=True):
        """Record a stage on the attempt and announce it (``notify`` callback)."""
        now = iso(self.state.now())
        attempt["stages"].append({"id": self.state.new_id(), "name": name, "created_at": now})
        attempt["updated_at"] = now
        if notify:
            self.send([("notify", {**self._callback_data(connection, attempt), "stage": name})])

    def _fail_attempt(self, connection, attempt, error_class, message):
        """The attempt ends in a failure: its fields and the ``fail`` callback."""
        now = iso(self.state.now())
        attempt.update(
            finished=True,
            fail_at=now,
            fail_error_class=error_class,
            fail_message=message,
            updated_at=now,
        )
        fail = {
            **self._callback_data(connection, attempt),
            "error_class": error_class,
            "error_message": message,
        }
        self.send([("fail", fail)])

    def _succeed_attempt(self, connection, attempt):
        """The fetch is complete: stage finish, then the success callbacks (1 to 3)."""
        now = self.state.now()
        self._stage(connection, attempt, "finish")
        attempt.update(
            finished=True, success_at=iso(now), to_date=now.date().isoformat(), updated_at=iso(now)
        )
        connection.update(last_success_at=iso(now), updated_at=iso(now))
        success = {**self._callback_data(connection, attempt), "stage": "finish"}
        self.send([("success", dict(success)) for _n in range(self.config.success_callbacks)])

    def _new_connection(self, session, provider, now):
        connection = {
            "id": self.state.new_id(),
            "customer_id": session["customer_id"],
            "provider_code": provider.code,
            "categorization": "none",
            "automatic_refresh": False,
            "store_credentials": True,
            "show_consent_confirmation": False,
            "last_consent_id": None,
            "last_success_at": None,
            "next_refresh_possible_at": None,
            "created_at": iso(now),
            "updated_at": iso(now),
            "_last_attempt_id": None,
            "_removed": False,
            "_holder": PERSONAL_HOLDER
            if session.get("customer_type") == "personal"
            else BUSINESS_HOLDER,
            "_selected_ibans": [],
            "_refreshes": [],
            "_update_serial": 0,
            "_fail_next": None,
        }
        self.state["connections"][connection["id"]] = connection
        return connection

    def _new_consent(self, connection, session, provider, now):
        request = session["consent"]
        period = request.get("period_days") or provider.max_consent_days
        oldest = now.date() - datetime.timedelta(days=ledger.HISTORY_DAYS - 1)
        consent = {
            "id": self.state.new_id(),
            "connection_id": connection["id"],
            "customer_id": connection["customer_id"],
            "scopes": request.get("scopes") or ["accounts", "transactions"],
            "period_days": period,
            "expires_at": iso(now + datetime.timedelta(days=period)),
            "from_date": request.get("from_date") or oldest.isoformat(),
            "to_date": None,
            "collected_by": "saltedge",
            "revoked_at": None,
            "revoke_reason": None,
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        self.state["consents"][consent["id"]] = consent
        return consent

    def _start_fetch(self, connection, attempt, kind):
        """Stages start and connect now, the rest of the fetch (or the failure that
        ``fail_next`` asked for) after, through ``Fetches``."""
        failure = connection["_fail_next"] if kind in REFRESH_KINDS else None
        if failure:
            connection["_fail_next"] = None
            self._stage(connection, attempt, "start")
            steps = [("fail", self._fail_step(connection["id"], attempt["id"], failure))]
            stage = "start"
        else:
            for name in FIRST_STAGES:
                self._stage(connection, attempt, name)
            steps = self._fetch_steps(connection, attempt, kind)
            stage = FIRST_STAGES[-1]
        self.fetches.begin(connection["id"], attempt["id"], stage, steps)

    def _fail_step(self, connection_id, attempt_id, failure):
        def step():
            connection, attempt = self._fetch_records(connection_id, attempt_id)
            self._fail_attempt(
                connection, attempt, failure["error_class"], failure["error_message"]
            )

        return step

    def finish_session(self, session, selected_ibans=None):
        """The user confirmed the accounts (or, for a refresh, logged in at the bank): the
        connection, its consent and a new attempt exist at once, and the fetch starts."""
        with self.state.lock:
            provider = self.provider(session["provider_code"])
            now = self.state.now()
            kind = session["kind"]
            if kind == "connect":
                connection = self._new_connection(session, provider, now)
            else:
                connection = self.connection(session["connection_id"])
            if kind == "refresh":
                self.check_data_access(connection)  # the consent may have ended meanwhile
            if session.get("automatic_refresh") is not None:
                connection["automatic_refresh"] = bool(session["automatic_refresh"])
            attempt = self._new_attempt(connection, session["attempt"], now)
            if kind != "refresh":
                consent = self._new_consent(connection, session, provider, now)
                connection.update(
                    last_consent_id=consent["id"], _selected_ibans=list(selected_ibans)
                )
            connection["next_refresh_possible_at"] = iso(now + self._interval())
            session["connection_id"] = connection["id"]
            self._start_fetch(connection, attempt, kind)
            self.state.save()
            return connection

    def fail_session(self, session, error_class, message, user_cancelled=False):
        """The connect failed at the bank, or the user left it: record it where it matters.

        A first connect the user cancels leaves nothing behind; one the bank refuses leaves
        a connection without consent whose last attempt says why; a reconnect or refresh
        records the failed attempt on its connection (whose consent stays as it was).
        """
        with self.state.lock:
            now = self.state.now()
            connection = None
            if session["kind"] in ("reconnect", "refresh"):
                connection = self.connection(session["connection_id"])
            elif session["provider_code"] and not user_cancelled:
                provider = self.provider(session["provider_code"])
                connection = self._new_connection(session, provider, now)
            if connection is not None:
                attempt = self._new_attempt(connection, session["attempt"], now)
                for name in FIRST_STAGES:
                    self._stage(connection, attempt, name, notify=name == "start")
                self._fail_attempt(connection, attempt, error_class, message)
                session["connection_id"] = connection["id"]
            self.state.save()
            return connection

    # --- refresh and removal -------------------------------------------------------
    def _interval(self):
        return datetime.timedelta(seconds=self.config.refresh_interval)

    def check_refreshable(self, connection):
        """A refresh needs a live consent and no fetch under way."""
        self.check_data_access(connection)
        if self.consent_of(connection) is None:
            raise ApiError("AispConsentNotFound", "This connection has no consent.")
        if self.fetches.running(connection["id"]):
            raise ApiError(
                "ConnectionAlreadyProcessing",
                "The connection is being fetched; wait for the success or fail callback.",
            )

    def background_refresh(self, connection_id, fetch_scopes=None):
        """Salt Edge's refresh without the user: consent, interval and daily limits, then
        the staged fetch. Returns the connection (its last attempt just started)."""
        with self.state.lock:
            connection = self.connection(connection_id)
            self.check_refreshable(connection)
            now = self.state.now()
            possible = connection["next_refresh_possible_at"]
            if possible and parse_iso(possible) > now:
                raise ApiError(
                    "ConnectionCannotBeRefreshed",
                    f"The connection can be refreshed again at {possible}.",
                    next_refresh_possible_at=possible,
                )
            today = now.date().isoformat()
            done_today = [moment for moment in connection["_refreshes"] if moment[:10] == today]
            if len(done_today) >= BACKGROUND_FETCHES_PER_DAY:
                tomorrow = datetime.datetime.combine(
                    now.date() + datetime.timedelta(days=1),
                    datetime.time(),
                    datetime.timezone.utc,
                )
                raise ApiError(
                    "BackgroundFetchLimitExceeded",
                    "Background fetch limit (4 times in a 24 hour period) was exceeded.",
                    next_refresh_possible_at=iso(tomorrow),
                )
            connection["_refreshes"] = [*done_today, iso(now)]
            self._refresh(connection, "background", now, fetch_scopes)
            return connection

    def automatic_refresh(self, connection_id):
        """The refresh Salt Edge does by itself for a connection that asked for it (not
        counted in the daily limit of background refreshes)."""
        with self.state.lock:
            connection = self.connection(connection_id)
            if not connection.get("automatic_refresh"):
                raise ApiError(
                    "ConnectionCannotBeRefreshed",
                    "The connection did not ask for automatic refresh.",
                )
            try:
                self.check_data_access(connection)
            except ApiError as error:
                raise ApiError("ConnectionCannotBeRefreshed", error.message) from error
            self.check_refreshable(connection)
            self._refresh(connection, "automatic", self.state.now())
            return connection

    def _refresh(self, connection, kind, now, fetch_scopes=None):
        previous = self.state["attempts"].get(connection["_last_attempt_id"] or "") or {}
        request = {
            "custom_fields": previous.get("custom_fields") or {},
            "locale": previous.get("locale"),
            "fetch_scopes": fetch_scopes or previous.get("fetch_scopes"),
        }
        attempt = self._new_attempt(connection, request, now, user_present=False)
        connection["next_refresh_possible_at"] = iso(now + self._interval())
        self._start_fetch(connection, attempt, kind)
        self.state.save()
        return attempt

    def remove(self, connection_id):
        """DELETE: revoke the consent, disable the connection, announce it (destroy)."""
        with self.state.lock:
            connection = self.connection(connection_id)
            now = iso(self.state.now())
            consent = self.consent_of(connection)
            if consent and not consent["revoked_at"]:
                consent.update(revoked_at=now, revoke_reason="client", updated_at=now)
            already = connection["_removed"]
            connection.update(_removed=True, updated_at=now)
            self.state.save()
            if not already:
                data = {"connection_id": connection["id"], "customer_id": connection["customer_id"]}
                self.send([("destroy", data)])
            return connection

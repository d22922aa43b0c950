"""What Salt Edge does with customers, connections, consents, accounts and transactions.

Every method runs under the state lock and leaves the state saved. Methods that Salt Edge
follows with callbacks return them as ``[(kind, data), ...]`` for the caller to send once
the HTTP answer is on its way.
"""

import datetime
import secrets

from . import ledger
from .accounts import AccountBook
from .errors import ApiError
from .providers import BUSINESS_HOLDER, PERSONAL_HOLDER, PROVIDER_IDS, PROVIDERS_BY_CODE
from .state import iso, parse_iso

NOTIFY_STAGES = ("start", "connect", "fetch_accounts", "fetch_recent", "finish")
SESSION_LIFETIME = datetime.timedelta(hours=1)
BACKGROUND_FETCHES_PER_DAY = 4


def public(record):
    """A stored record without the sandbox's private ``_`` fields."""
    return {key: value for key, value in record.items() if not key.startswith("_")}


class Bank(AccountBook):
    """Salt Edge's behaviour over the sandbox state."""

    def __init__(self, state, config):
        self.state = state
        self.config = config

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
    def new_session(self, kind, customer_id, provider, consent, attempt, connection_id=None):
        """A connect or reconnect session behind a ``connect_url``; returns the session."""
        with self.state.lock:
            now = self.state.now()
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
                "step": "customer_type" if provider else "provider",
                "customer_type": None,
                "login_method": None,
                "result_url": None,
            }
            self.state["sessions"][session["token"]] = session
            self.state.save()
            return session

    def _new_attempt(self, connection_id, session, now):
        attempt_request = session["attempt"]
        attempt = {
            "id": self.state.new_id(),
            "connection_id": connection_id,
            "api_mode": "service",
            "api_version": "6",
            "automatic_fetch": True,
            "daily_refresh": False,
            "categorization": "none",
            "custom_fields": attempt_request.get("custom_fields") or {},
            "device_type": "desktop",
            "remote_ip": "127.0.0.1",
            "exclude_accounts": [],
            "user_present": True,
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
        return attempt

    def _end_attempt(self, attempt, now, error=None):
        stages = NOTIFY_STAGES if error is None else ("start", "connect")
        attempt["stages"] = [
            {"id": self.state.new_id(), "name": name, "created_at": iso(now)} for name in stages
        ]
        attempt.update(finished=True, finished_recent=error is None, updated_at=iso(now))
        if error is None:
            attempt.update(success_at=iso(now), to_date=now.date().isoformat())
        else:
            attempt.update(fail_at=iso(now), fail_error_class=error[0], fail_message=error[1])

    def _new_connection(self, session, provider, now):
        connection = {
            "id": self.state.new_id(),
            "customer_id": session["customer_id"],
            "provider_code": provider.code,
            "categorization": "none",
            "daily_refresh": False,
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

    def _callbacks(self, connection, attempt, error=None):
        base = {
            "connection_id": connection["id"],
            "customer_id": connection["customer_id"],
            "custom_fields": attempt["custom_fields"],
        }
        if error:
            fail = {**base, "error_class": error[0], "error_message": error[1]}
            return [("notify", {**base, "stage": "start"}), ("fail", fail)]
        notify = [("notify", {**base, "stage": stage}) for stage in NOTIFY_STAGES]
        return [*notify, ("success", {**base, "stage": "finish"})]

    def finish_session(self, session, selected_ibans):
        """The user confirmed the accounts: connect (or reconnect) and fetch the data."""
        with self.state.lock:
            provider = self.provider(session["provider_code"])
            now = self.state.now()
            if session["kind"] == "reconnect":
                connection = self.connection(session["connection_id"])
            else:
                connection = self._new_connection(session, provider, now)
            attempt = self._new_attempt(connection["id"], session, now)
            consent = self._new_consent(connection, session, provider, now)
            connection.update(
                last_consent_id=consent["id"],
                last_success_at=iso(now),
                next_refresh_possible_at=iso(now + self._interval()),
                updated_at=iso(now),
                _last_attempt_id=attempt["id"],
                _selected_ibans=list(selected_ibans),
            )
            self._fetch(connection, session["kind"])
            self._end_attempt(attempt, now)
            session["connection_id"] = connection["id"]
            self.state.save()
            return connection, self._callbacks(connection, attempt)

    def fail_session(self, session, error_class, message, user_cancelled=False):
        """The connect failed at the bank, or the user left it: record it where it matters.

        A first connect the user cancels leaves nothing behind; one the bank refuses leaves
        a connection without consent whose last attempt says why; a reconnect records the
        failed attempt on its connection (whose old consent stays as it was).
        """
        with self.state.lock:
            now = self.state.now()
            connection = None
            if session["kind"] == "reconnect":
                connection = self.connection(session["connection_id"])
            elif session["provider_code"] and not user_cancelled:
                provider = self.provider(session["provider_code"])
                connection = self._new_connection(session, provider, now)
            callbacks = []
            if connection is not None:
                attempt = self._new_attempt(connection["id"], session, now)
                self._end_attempt(attempt, now, (error_class, message))
                connection.update(_last_attempt_id=attempt["id"], updated_at=iso(now))
                session["connection_id"] = connection["id"]
                callbacks = self._callbacks(connection, attempt, (error_class, message))
            self.state.save()
            return connection, callbacks

    # --- refresh and removal -------------------------------------------------------
    def _interval(self):
        return datetime.timedelta(seconds=self.config.refresh_interval)

    def refresh(self, connection_id):
        """Salt Edge's background refresh, with its consent, interval and daily limits."""
        with self.state.lock:
            connection = self.connection(connection_id)
            self.check_data_access(connection)
            if self.consent_of(connection) is None:
                raise ApiError("AispConsentNotFound", "This connection has no consent.")
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
                raise ApiError(
                    "BackgroundFetchLimitExceeded",
                    "Background fetch limit (4 times in a 24 hour period) was exceeded.",
                )
            session = {"attempt": self.state["attempts"][connection["_last_attempt_id"]]}
            attempt = self._new_attempt(connection["id"], session, now)
            attempt["user_present"] = False
            connection["_refreshes"] = [*done_today, iso(now)]
            connection.update(
                next_refresh_possible_at=iso(now + self._interval()),
                updated_at=iso(now),
                _last_attempt_id=attempt["id"],
            )
            error = connection["_fail_next"]
            if error:
                connection["_fail_next"] = None
                error = (error["error_class"], error["error_message"])
            else:
                self._fetch(connection, "refresh")
                connection["last_success_at"] = iso(now)
            self._end_attempt(attempt, now, error)
            self.state.save()
            return connection, self._callbacks(connection, attempt, error)

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
            data = {"connection_id": connection["id"], "customer_id": connection["customer_id"]}
            return connection, [] if already else [("destroy", data)]

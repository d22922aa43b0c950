"""The accounts and transactions side of the sandbox bank: fetching, pending, balances.

A fetch asks the ledger, once at its start, for the drafts of the days the consent covers,
then stores them in stages as Salt Edge does: ``fetch_accounts`` makes the accounts appear,
each already with its true balance (opening balance plus every posted amount the consent
covers, stored yet or not); ``fetch_recent`` adds the transactions of the last
``recent_days`` days it has not seen (by their deterministic key) and turns pending ones
that the bank has since booked into posted ones with new ids (the pending one disappears);
``fetch_full`` adds the older history, which therefore has higher ids than the recent one.
"""

import datetime
from decimal import Decimal, InvalidOperation

from . import ledger
from .errors import ApiError
from .fetches import FetchAbandoned
from .providers import PROVIDERS_BY_CODE
from .state import iso, parse_iso

UPDATES_PER_REFRESH = 3
# What a test may not override in a hand-made transaction: the sandbox's own bookkeeping
# (ids order the pages, the status decides the listing and the balance).
FIXED_FIELDS = frozenset({"id", "account_id", "status", "created_at", "updated_at"})


def booked_amount(value):
    """A transaction's amount as the bank's balance counts it. A hand-made transaction (an
    ``override`` of the control API) whose amount is no finite number moves nothing."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return Decimal(0)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)


def apply_override(transaction, override):
    """Replace fields of a generated ``transaction`` by the test's ``override``; a dict
    ``extra`` is merged into the transaction's, anything else replaces it."""
    for key, value in override.items():
        if key == "extra" and isinstance(value, dict) and isinstance(transaction["extra"], dict):
            transaction["extra"] = {**transaction["extra"], **value}
        else:
            transaction[key] = value


class AccountBook:
    """Mixin of ``Bank``: needs ``self.state``, ``self.config`` and ``self.consent_of``."""

    def _account_for(self, connection, template, provider, first_day=None):
        """The connection's account of ``template``, made on its first fetch. Its opening
        balance is what the bank held before ``first_day`` (the oldest day this consent
        shows), so every connection of the same bank account, whenever it is made, tells
        one continuous history: a reconnect months later has the balance the first one
        would have by then."""
        for account in self.state["accounts"].values():
            if account["connection_id"] == connection["id"] and account["_iban"] == template.iban:
                return account
        now = self.state.now_iso()
        account = {
            "id": self.state.new_id(),
            "connection_id": connection["id"],
            "name": template.name,
            "nature": template.nature,
            "balance": 0.0,
            "currency_code": template.currency_code,
            "extra": {
                "iban": template.iban,
                "swift": provider.bic,
                "account_name": template.name,
                "holder_name": connection["_holder"],
                "client_name": connection["_holder"],
                "status": "active",
            },
            "created_at": now,
            "updated_at": now,
            "_iban": template.iban,
            "_opening": ledger.opening_balance(provider, template)
            if first_day is None or provider.n_transactions
            else ledger.balance_before(provider, template, connection["_holder"], first_day),
            "_keys": {},
        }
        self.state["accounts"][account["id"]] = account
        return account

    def _is_pending(self, provider, made_on, today):
        age = (today - datetime.date.fromisoformat(made_on)).days
        return age < provider.pending_days

    def _add_transaction(self, account, draft, status, posting_date=None):
        now = self.state.now_iso()
        extra = dict(draft["extra"])
        # A balance snapshot is the booked balance: a pending transaction keeps its own
        # aside until it is booked.
        snapshot = extra.pop(ledger.BALANCE_SNAPSHOT, draft.get("_balance_snapshot"))
        if status == "posted":
            extra["posting_date"] = posting_date or draft["made_on"]
            if snapshot is not None:
                extra[ledger.BALANCE_SNAPSHOT] = snapshot
        transaction = {
            "id": self.state.new_id(),
            "account_id": account["id"],
            "duplicated": False,
            "mode": draft["mode"],
            "status": status,
            "made_on": draft["made_on"],
            "amount": draft["amount"],
            "currency_code": draft["currency_code"],
            "description": draft["description"],
            "category": "fees" if draft["mode"] == "fee" else "uncategorized",
            "extra": extra,
            "created_at": now,
            "updated_at": now,
            "_connection_id": account["connection_id"],
            "_key": draft["key"],
        }
        if status == "pending" and snapshot is not None:
            transaction["_balance_snapshot"] = snapshot
        self.state["transactions"][transaction["id"]] = transaction
        account["_keys"][draft["key"]] = transaction["id"]
        return transaction

    def _post_pendings(self, account, provider, today):
        """A booked pending transaction disappears; a posted one with a new id appears."""
        transactions = self.state["transactions"]
        for key, transaction_id in list(account["_keys"].items()):
            pending = transactions.get(transaction_id)
            if pending is None or pending["status"] != "pending":
                continue
            if self._is_pending(provider, pending["made_on"], today):
                continue
            del transactions[transaction_id]
            draft = {**pending, "key": key}
            self._add_transaction(account, draft, "posted", today.isoformat())

    def _update_balance(self, account, provider=None, drafts=(), today=None):
        """Balance = opening + posted amounts, counting those this fetch will still store
        (``drafts`` not seen yet and not pending, pending ones the bank booked since)."""
        transactions = self.state["transactions"]
        total = Decimal(str(account["_opening"]))
        counts = {"posted": 0, "pending": 0}
        for transaction_id in account["_keys"].values():
            transaction = transactions[transaction_id]
            counts[transaction["status"]] += 1
            booked = transaction["status"] == "posted" or (
                provider is not None
                and not self._is_pending(provider, transaction["made_on"], today)
            )
            if booked:
                total += booked_amount(transaction["amount"])
        for draft in drafts:
            if draft["key"] not in account["_keys"] and not self._is_pending(
                provider, draft["made_on"], today
            ):
                total += Decimal(str(draft["amount"]))
        account["balance"] = float(total)
        account["extra"]["transactions_count"] = counts
        account["extra"]["available_amount"] = float(total)
        account["updated_at"] = self.state.now_iso()

    def _fetch_plan(self, connection, kind):
        """What this fetch brings, decided at its start: provider, today, [(template, drafts)]."""
        provider = PROVIDERS_BY_CODE[connection["provider_code"]]
        consent = self.consent_of(connection)
        today = self.state.today()
        first_day = max(
            today - datetime.timedelta(days=ledger.HISTORY_DAYS - 1),
            datetime.date.fromisoformat(consent["from_date"]),
        )
        serial = None
        if kind not in ("connect", "reconnect") and provider.updates_on_refresh:
            connection["_update_serial"] += 1
            serial = connection["_update_serial"]
        holder = connection["_holder"]
        plan = []
        for template in provider.accounts:
            if template.iban not in connection["_selected_ibans"]:
                continue
            if provider.n_transactions:
                count = self.config.n_transactions
                drafts = ledger.drafts_numbered(provider, template, holder, count, today)
            else:
                drafts = ledger.drafts_for_period(provider, template, holder, first_day, today)
            if serial is not None:
                drafts += ledger.drafts_extra(
                    provider, template, holder, today, serial, UPDATES_PER_REFRESH
                )
            plan.append((template, drafts))
        return provider, today, first_day, plan

    def _fetch_records(self, connection_id, attempt_id):
        """The connection and attempt of a fetch step, or FetchAbandoned when they are gone
        (the attempt of a connection removed meanwhile ends as failed)."""
        connection = self.state["connections"].get(connection_id)
        attempt = self.state["attempts"].get(attempt_id)
        if connection is None or attempt is None or attempt["finished"]:
            raise FetchAbandoned()
        if connection["_removed"]:
            now = iso(self.state.now())
            attempt.update(
                finished=True,
                fail_at=now,
                fail_error_class="ConnectionDisabled",
                fail_message="The connection was removed during the fetch.",
                updated_at=now,
            )
            raise FetchAbandoned()
        return connection, attempt

    def _store_drafts(self, account, provider, drafts, today):
        fresh = [draft for draft in drafts if draft["key"] not in account["_keys"]]
        for draft in sorted(fresh, key=ledger.booking_order):
            pending = self._is_pending(provider, draft["made_on"], today)
            self._add_transaction(account, draft, "pending" if pending else "posted")

    def _fetch_steps(self, connection, attempt, kind):
        """The stages after ``connect``, as ``[(name, step)]`` for ``Fetches.begin``."""
        provider, today, first_day, plan = self._fetch_plan(connection, kind)
        cutoff = (today - datetime.timedelta(days=self.config.recent_days - 1)).isoformat()
        ids = (connection["id"], attempt["id"])

        def fetch_accounts():
            connection, attempt = self._fetch_records(*ids)
            for template, drafts in plan:
                account = self._account_for(connection, template, provider, first_day)
                self._update_balance(account, provider, drafts, today)
            self._stage(connection, attempt, "fetch_accounts")

        def fetch_recent():
            connection, attempt = self._fetch_records(*ids)
            for template, drafts in plan:
                account = self._account_for(connection, template, provider)
                self._post_pendings(account, provider, today)
                recent = [draft for draft in drafts if draft["made_on"] >= cutoff]
                self._store_drafts(account, provider, recent, today)
                self._update_balance(account, provider, drafts, today)
            attempt["finished_recent"] = True
            self._stage(connection, attempt, "fetch_recent")

        def fetch_full():
            connection, attempt = self._fetch_records(*ids)
            for template, drafts in plan:
                account = self._account_for(connection, template, provider)
                self._store_drafts(account, provider, drafts, today)
                self._update_balance(account, provider, drafts, today)
            self._stage(connection, attempt, "fetch_full")

        def finish():
            connection, attempt = self._fetch_records(*ids)
            self._succeed_attempt(connection, attempt)

        return [
            ("fetch_accounts", fetch_accounts),
            ("fetch_recent", fetch_recent),
            ("fetch_full", fetch_full),
            ("finish", finish),
        ]

    def add_transactions(self, connection_id, count, account_id=None, override=None):
        """Control API: ``count`` new posted transactions dated today on one account, each
        with the fields of ``override`` (a test's hand-made transaction: any value, of any
        type, but for the FIXED_FIELDS, which ValueError refuses)."""
        override = override or {}
        if any(key in FIXED_FIELDS or key.startswith("_") for key in override):
            raise ValueError("override cannot change the sandbox's own fields.")
        with self.state.lock:
            connection = self.connection(connection_id)
            provider = PROVIDERS_BY_CODE[connection["provider_code"]]
            accounts = self.accounts_of(connection)
            if account_id:
                accounts = [a for a in accounts if a["id"] == str(account_id)]
            if not accounts:
                raise ApiError("AccountNotFound", f"Account with id: '{account_id}' was not found.")
            account = accounts[0]
            template = next(a for a in provider.accounts if a.iban == account["_iban"])
            connection["_update_serial"] += 1
            drafts = ledger.drafts_extra(
                provider,
                template,
                connection["_holder"],
                self.state.today(),
                f"manual{connection['_update_serial']}",
                count,
            )
            added = [self._add_transaction(account, draft, "posted") for draft in drafts]
            for transaction in added:
                apply_override(transaction, override)
            # The balance was already the bank's true one (a fetch under way may not have
            # stored everything yet): it moves by exactly the new amounts.
            balance = Decimal(str(account["balance"]))
            balance += sum(booked_amount(transaction["amount"]) for transaction in added)
            self._update_balance(account)
            account["balance"] = account["extra"]["available_amount"] = float(balance)
            # Salt Edge's updated_at moves when transactions are added: always forward,
            # a second at least, on a frozen clock too (it is written to the second).
            before = connection.get("updated_at")
            moment = self.state.now()
            if before:
                moment = max(moment, parse_iso(before) + datetime.timedelta(seconds=1))
            connection["updated_at"] = iso(moment)
            self.state.save()
            return added

    def accounts_of(self, connection):
        """The connection's accounts, by id."""
        accounts = [
            account
            for account in self.state["accounts"].values()
            if account["connection_id"] == connection["id"]
        ]
        return sorted(accounts, key=lambda account: int(account["id"]))

    def transactions_of(self, connection, account_id=None, pending=False):
        """The connection's posted (or pending) transactions, by id, of one account or all."""
        status = "pending" if pending else "posted"
        found = [
            transaction
            for transaction in self.state["transactions"].values()
            if transaction["_connection_id"] == connection["id"]
            and transaction["status"] == status
            and (account_id is None or transaction["account_id"] == account_id)
        ]
        return sorted(found, key=lambda transaction: int(transaction["id"]))

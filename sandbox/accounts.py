"""The accounts and transactions side of the sandbox bank: fetching, pending, balances.

A fetch asks the ledger for the drafts of the days the consent covers, adds those it has
not seen (by their deterministic key), turns pending transactions that the bank has since
booked into posted ones with new ids (as Salt Edge does: the pending one disappears), and
keeps each balance equal to the opening balance plus the posted amounts.
"""

import datetime
from decimal import Decimal

from . import ledger
from .errors import ApiError
from .providers import PROVIDERS_BY_CODE

UPDATES_PER_REFRESH = 3


class AccountBook:
    """Mixin of ``Bank``: needs ``self.state``, ``self.config`` and ``self.consent_of``."""

    def _account_for(self, connection, template, provider):
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
            "_opening": ledger.opening_balance(provider, template),
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
        if status == "posted":
            extra["posting_date"] = posting_date or draft["made_on"]
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

    def _update_balance(self, account):
        transactions = self.state["transactions"]
        total = Decimal(str(account["_opening"]))
        counts = {"posted": 0, "pending": 0}
        for transaction_id in account["_keys"].values():
            transaction = transactions[transaction_id]
            counts[transaction["status"]] += 1
            if transaction["status"] == "posted":
                total += Decimal(str(transaction["amount"]))
        account["balance"] = float(total)
        account["extra"]["transactions_count"] = counts
        account["extra"]["available_amount"] = float(total)
        account["updated_at"] = self.state.now_iso()

    def _fetch(self, connection, kind):
        provider = PROVIDERS_BY_CODE[connection["provider_code"]]
        consent = self.consent_of(connection)
        today = self.state.today()
        first_day = max(
            today - datetime.timedelta(days=ledger.HISTORY_DAYS - 1),
            datetime.date.fromisoformat(consent["from_date"]),
        )
        serial = None
        if kind == "refresh" and provider.updates_on_refresh:
            connection["_update_serial"] += 1
            serial = connection["_update_serial"]
        holder = connection["_holder"]
        for template in provider.accounts:
            if template.iban not in connection["_selected_ibans"]:
                continue
            account = self._account_for(connection, template, provider)
            if provider.n_transactions:
                count = self.config.n_transactions
                drafts = ledger.drafts_numbered(provider, template, holder, count, today)
            else:
                drafts = ledger.drafts_for_period(provider, template, holder, first_day, today)
            if serial is not None:
                extra = ledger.drafts_extra(
                    provider, template, holder, today, serial, UPDATES_PER_REFRESH
                )
                drafts += extra
            self._post_pendings(account, provider, today)
            fresh = [draft for draft in drafts if draft["key"] not in account["_keys"]]
            for draft in sorted(fresh, key=lambda d: (d["made_on"], d["key"])):
                pending = self._is_pending(provider, draft["made_on"], today)
                self._add_transaction(account, draft, "pending" if pending else "posted")
            self._update_balance(account)

    def add_transactions(self, connection_id, count, account_id=None):
        """Control API: ``count`` new posted transactions dated today on one account."""
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
            self._update_balance(account)
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

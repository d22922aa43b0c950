"""The sync of a bank connection with Salt Edge: the client, the errors in words, the
customer check, the consent (Connected until), where Salt Edge's fetch stands, the
accounts and their journals, the daily consent check, and what a run asks Salt Edge before
it imports (confirm the connection, ask for a refresh).
"""

import logging
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from .. import saltedge_errors
from ..odoo_series import commit_progress
from ..saltedge_client import DEFAULT_BASE_URL, SaltEdgeClient, SaltEdgeError
from . import const
from .account_bank_connection import parse_saltedge_datetime
from .utils import clean_text, write_changed

_logger = logging.getLogger(__name__)


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    last_refresh_request = fields.Datetime(
        string="Last refresh asked",
        copy=False,
        readonly=True,
        help="When Odoo last asked Salt Edge to fetch new data from the bank. Salt Edge allows "
        "a few background fetches a day, so Odoo asks at most every few hours (system "
        "parameter account_bank_connection.refresh_interval_hours, 6 by default) and imports "
        "what Salt Edge already has in between.",
    )

    next_refresh_possible_at = fields.Datetime(
        copy=False,
        readonly=True,
        help="Salt Edge allows the next background refresh from then on.",
    )

    @api.model
    def _saltedge_client(self, interactive=False, budget=True):
        """The Salt Edge client configured in the settings. Secrets are read as superuser
        and go nowhere but into the client's request headers.

        ``interactive``: a person waits (a button, a page): short timeout, one retry, short
        waits and, with ``budget``, every call of the client within
        INTERACTIVE_BUDGET_SECONDS. Scheduled jobs keep the patient policy."""
        params = self.env["ir.config_parameter"].sudo()
        credentials = self.env["account.bank.credential"]._get_all(
            const.PARAM_SECRET, const.PARAM_PRIVATE_KEY
        )
        app_id = params.get_param(const.PARAM_APP_ID)
        secret = credentials[const.PARAM_SECRET]
        if not app_id or not secret:
            raise UserError(
                self.env._(
                    "Salt Edge is not configured yet. A system administrator must enter the "
                    "App ID and the Secret in Accounting › Settings › Bank Connections."
                )
            )
        return SaltEdgeClient(
            params.get_param(const.PARAM_BASE_URL) or DEFAULT_BASE_URL,
            app_id,
            secret,
            private_key_pem=credentials[const.PARAM_PRIVATE_KEY] or None,
            # One number bounds both the connect and each read (requests applies it to
            # both); Odoo's test harness only understands a number here, not a pair.
            timeout=const.INTERACTIVE_HTTP_TIMEOUT if interactive else const.HTTP_TIMEOUT,
            max_retries=const.INTERACTIVE_HTTP_RETRIES if interactive else const.HTTP_RETRIES,
            backoff_base=const.HTTP_BACKOFF_BASE,
            backoff_max=const.INTERACTIVE_BACKOFF_MAX if interactive else const.HTTP_BACKOFF_MAX,
            budget=const.INTERACTIVE_BUDGET_SECONDS if interactive and budget else None,
            logger=_logger,
        )

    @api.model
    def _saltedge_user_error(self, error):
        """A UserError with a sentence the accountant can act on, for a Salt Edge error.
        The sentence comes from the one table of error classes (saltedge_errors)."""
        detail = error.error_class if error.is_configuration_error else (error.message or error)
        return UserError(self.env._(error.sentence, error=detail))  # pylint: disable=translation-not-lazy

    @api.model
    def _saltedge_customer_for(self, company, client):
        """The Salt Edge customer of ``company``, created on its first connection."""
        company_sudo = company.sudo()
        if company_sudo.saltedge_customer_id:
            return company_sudo.saltedge_customer_id
        dbuuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")
        identifier = f"odoo-{dbuuid[:8]}-company-{company.id}"
        try:
            customer = client.create_customer(identifier)
        except SaltEdgeError as error:
            if error.error_class != saltedge_errors.DUPLICATED_CUSTOMER:
                raise self._saltedge_user_error(error) from None
            # The identifier is taken (a restored copy of this database made it): a new one.
            customer = client.create_customer(f"{identifier}-{secrets.token_hex(4)}")
        company_sudo.saltedge_customer_id = str(customer["id"])
        return company_sudo.saltedge_customer_id

    def _saltedge_check_customer(self, remote, company=None):
        """Refuse a Salt Edge connection that is not the customer of ``company`` (default:
        this connection's): stored ids are confirmed with Salt Edge before they are used
        for an import, a consent check or a revoke, and a return's before it is linked."""
        company = company or self.company_id
        customer_id = company.sudo().saltedge_customer_id
        if not customer_id or str(remote.get("customer_id")) != str(customer_id):
            _logger.warning(
                "Salt Edge connection %s is not the customer of company %s: refused",
                remote.get("id"),
                company.id,
            )
            raise UserError(self.env._("This bank connection does not belong to this company."))

    def _saltedge_update_consent(self, client, remote=None):
        """Take Connected until from the connection's consent, never computed locally."""
        self.ensure_one()
        remote = remote or client.get_connection(self.saltedge_connection_id)
        self._saltedge_check_customer(remote)
        consents = list(client.list_consents(self.saltedge_connection_id))
        last_id = str(remote.get("last_consent_id") or "")
        consent = next((c for c in consents if str(c.get("id")) == last_id), None)
        if consent is None and consents:
            consent = max(consents, key=lambda c: int(c["id"]) if str(c["id"]).isdigit() else 0)
        if consent is None:
            raise UserError(self.env._("The bank gave no consent. Connect the bank again."))
        expires_at = parse_saltedge_datetime(consent.get("expires_at"))
        vals = {
            "saltedge_consent_id": str(consent["id"]),
            "consent_expires_at": expires_at,
            "connected_until": self._to_company_date(expires_at) if expires_at else False,
            "last_error": False,
        }
        revoked = consent.get("revoked_at")
        # Salt Edge's own verdict counts as much as our clock: a connection it calls
        # inactive or disabled has no usable consent, whatever expires_at says here.
        expired = (expires_at and expires_at <= fields.Datetime.now()) or remote.get(
            "status"
        ) in const.STATUS_NEEDS_USER
        if revoked or expired:
            self.write(vals)
            self._mark_expired(revoked=bool(revoked))
        else:
            vals["state"] = "connected"
            self.write(vals)
        return consent

    @api.model
    def _saltedge_time(self, value):
        """A Salt Edge time (ISO 8601) as a naive UTC datetime; None when it is not one."""
        if not isinstance(value, str):
            return None
        try:
            return parse_saltedge_datetime(value[:64])
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 in another zone
            return None

    def _saltedge_note_fetch(self, remote):
        """Where Salt Edge's last fetch is, from the connection's ``last_attempt``: its
        last stage, and whether it finished with success."""
        attempt = remote.get("last_attempt") or {}
        stages = attempt.get("stages") or []
        stage = stages[-1].get("name") if stages and isinstance(stages[-1], dict) else None
        # Finished with success: a failed attempt's data may be partial. The last stage
        # should be "finish"; an attempt that says success_at counts as well, whatever
        # order Salt Edge lists its stages in.
        finished = (
            bool(attempt.get("finished"))
            and not attempt.get("fail_error_class")
            and (stage in (None, const.STAGE_FINISH) or bool(attempt.get("success_at")))
        )
        vals = {"fetch_finished": finished}
        seen = self._saltedge_time(remote.get("updated_at"))
        if seen and (not self.saltedge_seen_at or seen > self.saltedge_seen_at):
            vals["saltedge_seen_at"] = seen
        if isinstance(stage, str):
            vals["last_stage"] = clean_text(stage, 64)
        # Read twice a run: written only when something moved.
        write_changed(self.with_context(tracking_disable=True), vals)
        return finished

    def _fetch_stage_sentence(self):
        """What Salt Edge is doing, for the waiting page (its stages, v5 and v6 names)."""
        self.ensure_one()
        stage = self.last_stage or "start"
        if stage in const.STAGES_CONNECTING:
            return self.env._("Salt Edge is connecting to the bank…")
        if stage in const.STAGES_ACCOUNTS:
            return self.env._("Salt Edge is reading the bank's accounts…")
        if stage == const.STAGE_FETCH_RECENT:
            return self.env._("Salt Edge is loading the recent transactions…")
        if stage == const.STAGE_FETCH_FULL:
            return self.env._("Salt Edge is loading the older transactions…")
        if stage == const.STAGE_FINISH:
            return self.env._("Salt Edge has loaded the bank's data; Odoo is importing it…")
        return self.env._("Salt Edge is working with the bank…")

    def _saltedge_sync_accounts(self, client, journal=None):
        """List the connection's accounts and link them to the company's bank journals.

        ``journal``: the journal the connect was started from, or a function that gives
        it, called only when an account is left without a journal (every import run reads
        the accounts; most of them find every account linked)."""
        self.ensure_one()
        Account = self.env["account.bank.connection.account"].sudo()
        existing = {account.saltedge_account_id: account for account in self.account_ids}
        currencies = {account.currency_id.name: account.currency_id for account in self.account_ids}
        for item in client.list_accounts(self.saltedge_connection_id):
            extra = item.get("extra") or {}
            code = item.get("currency_code")
            if code and code not in currencies:
                currencies[code] = self._saltedge_currency(code)
            vals = {
                "name": item.get("name") or extra.get("account_name") or str(item["id"]),
                "iban": Account._normalize_iban(extra.get("iban")),
                "currency_id": currencies.get(code, self.env["res.currency"]).id or False,
                "balance": item.get("balance") or 0.0,
            }
            account = existing.get(str(item["id"]))
            if account:
                # What changed only (mostly the balance): an unchanged account is not
                # written on every run.
                write_changed(account, vals)
            else:
                existing[str(item["id"])] = Account.create(
                    dict(vals, connection_id=self.id, saltedge_account_id=str(item["id"]))
                )
        if self.account_ids.filtered(lambda account: not account.journal_id):
            self._link_accounts_to_journals(journal() if callable(journal) else journal)

    def _link_accounts_to_journals(self, journal=None):
        """The journal that started the flow gets the account with its IBAN (else the only
        account); any other account whose IBAN is a bank journal's of the company gets it."""
        self.ensure_one()
        accounts = self.account_ids
        Account = self.env["account.bank.connection.account"]
        journals = (
            self.env["account.journal"]
            .sudo()
            .search([("type", "=", "bank"), ("company_id", "=", self.company_id.id)])
        )
        # A journal of a connection that ended (expired, disconnected) may be taken over:
        # the bank account is connected again, the new connection takes its journal.
        taken = (
            Account.sudo()
            .search(
                [
                    ("journal_id", "in", journals.ids),
                    ("connection_id.state", "not in", ("expired", "disconnected")),
                ]
            )
            .mapped("journal_id")
        )
        # One connector per journal: one that Odoo's bank synchronization links is not ours.
        taken |= journals.filtered("bank_connect_refusal")
        if journal and journal not in taken:
            iban = Account._normalize_iban(journal.bank_acc_number)
            match = accounts.filtered(lambda a: iban and a.iban == iban and not a.journal_id)
            if not match and not iban and len(accounts) == 1 and not accounts.journal_id:
                match = accounts
            if match:
                match[:1]._link_journal(journal)
                taken |= journal
        for account in accounts.filtered(lambda a: a.iban and not a.journal_id):
            candidate = journals.filtered(
                lambda j, iban=account.iban, taken=taken: j not in taken
                and Account._normalize_iban(j.bank_acc_number) == iban
            )[:1]
            if candidate:
                account._link_journal(candidate)
                taken |= candidate

    @api.model
    def _cron_check_consents(self):
        """Daily: read every live connection's consent from Salt Edge so Connected until is
        never stale, and find the expired and withdrawn ones."""
        connections = self.sudo().search([("state", "in", ("connected", "error"))])
        if not connections:
            return True
        try:
            client = self._saltedge_client()
        except UserError as error:
            _logger.warning("Consent check skipped: %s", error)
            return True
        commit_progress(self.env, remaining=len(connections))
        for connection in connections:
            try:
                with self.env.cr.savepoint():
                    connection._saltedge_update_consent(client)
            except SaltEdgeError as error:
                if error.is_consent_expired:
                    connection._mark_expired(revoked=error.is_consent_revoked)
                elif error.is_connection_not_found:
                    connection._set_disconnected(
                        self.env._("Salt Edge no longer knows this connection.")
                    )
                else:
                    _logger.warning(
                        "Consent check of bank connection %s failed: %s", connection.id, error
                    )
                    connection.last_error = str(error)
            except UserError as error:
                # This connection's answer made no sense (no consent): note it, go on.
                _logger.warning("Consent check of bank connection %s: %s", connection.id, error)
                connection.last_error = str(error)
            commit_progress(self.env, processed=1)
        return True

    def _saltedge_confirm(self, client):
        """Read the connection from Salt Edge before importing: it must still be the
        company's customer's, its status and consent decide the state (a failed fetch
        alone never does), and its last attempt says where the fetch is. Returns it."""
        remote = client.get_connection(self.saltedge_connection_id)
        self._saltedge_check_customer(remote)
        if (
            self.state != "connected"
            or remote.get("status") in const.STATUS_NEEDS_USER
            or str(remote.get("last_consent_id") or "") != (self.saltedge_consent_id or "")
        ):
            self._saltedge_update_consent(client, remote)
        possible = parse_saltedge_datetime(remote.get("next_refresh_possible_at"))
        write_changed(self, {"next_refresh_possible_at": possible})
        self._saltedge_note_fetch(remote)
        return remote

    def _request_refresh(self, client, trigger):
        """Ask Salt Edge for a background refresh when it makes sense, never more than the
        bank allows (PSD2: four a day without the user).

        Not when Salt Edge refreshes by itself (automatic refresh, the default) and this
        is a scheduled run; not within the refresh interval (6 h), which alone keeps Odoo
        within four a day. Salt Edge's ``next_refresh_possible_at`` is kept on the
        connection and shown, but not compared with Odoo's clock (it is Salt Edge's); a
        refresh asked before it is refused with ConnectionCannotBeRefreshed, quietly.
        "Not now" and "a fetch is running" answers are no error: the run imports what
        Salt Edge has, and the ``success`` callback of the fetch asks for the next import.
        Returns the error of a refresh that failed otherwise (the run goes on too), else
        None.
        """
        params = self.env["ir.config_parameter"].sudo()
        if trigger != "manual" and (
            params.get_param(const.PARAM_AUTOMATIC_REFRESH) or trigger in ("callback", "first")
        ):
            return None
        hours = float(
            params.get_param(const.PARAM_REFRESH_INTERVAL_HOURS)
            or const.DEFAULT_REFRESH_INTERVAL_HOURS
        )
        now = fields.Datetime.now()
        if self.last_refresh_request and self.last_refresh_request > now - timedelta(hours=hours):
            return None
        try:
            client.background_refresh(self.saltedge_connection_id)
        except SaltEdgeError as error:
            if error.is_in_progress:
                self.fetch_finished = False
                return None
            if error.needs_user:
                if error.needs_reconnect or error.is_connection_not_found:
                    raise
                # The bank wants the user: offer Refresh at the bank, import what is there.
                self.refresh_needs_user = True
                return error
            if error.is_configuration_error:
                raise
            if error.is_refresh_not_now:
                _logger.info(
                    "Bank connection %s: Salt Edge cannot refresh now (%s, next possible at %s); "
                    "importing what it has.",
                    self.id,
                    error.error_class,
                    error.next_refresh_possible_at or "?",
                )
                self.next_refresh_possible_at = parse_saltedge_datetime(
                    error.next_refresh_possible_at
                )
                if error.error_class == saltedge_errors.BACKGROUND_FETCH_LIMIT:
                    self.last_refresh_request = now
                return None
            _logger.warning(
                "Bank connection %s: the refresh failed (%s); importing what Salt Edge has.",
                self.id,
                error,
            )
            return error
        self.write(
            {"last_refresh_request": now, "fetch_finished": False, "refresh_needs_user": False}
        )
        return None

    @api.model
    def _saltedge_fetch_key(self, remote):
        """Where Salt Edge's fetch of ``remote`` (a connection it answered) stands: its
        last attempt, how many stages it went through, and whether it is finished. Equal
        keys: nothing Salt Edge fetched since (no new account, no new stage)."""
        attempt = remote.get("last_attempt") or {}
        stages = attempt.get("stages") if isinstance(attempt.get("stages"), list) else []
        return f"{attempt.get('id')}:{len(stages)}:{bool(attempt.get('finished'))}"

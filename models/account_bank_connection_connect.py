"""The connect flow of a bank connection: where Salt Edge sends the user back and calls us
(the return and callback URLs), what a connect asks for, Connect, Renew and Refresh at the
bank, and the return: find the Salt Edge connection a connect made, say why it failed, or
link it. Connects whose user never came back are linked here too, from the scheduled
actions.
"""

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from .. import saltedge_errors
from ..odoo_series import commit_progress
from ..saltedge_client import SaltEdgeError
from . import const
from .account_bank_connection import parse_saltedge_datetime
from .utils import clean_text

_logger = logging.getLogger(__name__)


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    @api.model
    def _return_url(self, token):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return f"{base_url.rstrip('/')}{const.RETURN_ROUTE}?state={token}"

    @api.model
    def _callback_url(self, kind=None):
        """The one rule of the callback URL: the base registered at Salt Edge (the system
        parameter account_bank_connection.callback_url, else this database's web.base.url
        and the callback route), followed by ``/<kind>`` for one kind. Without ``kind``, the
        base the settings show. The signature check uses the same URL."""
        params = self.env["ir.config_parameter"].sudo()
        base = params.get_param(const.PARAM_CALLBACK_URL) or (
            (params.get_param("web.base.url") or "").rstrip("/") + const.CALLBACK_ROUTE
        )
        base = base.rstrip("/")
        return f"{base}/{kind}" if kind else base

    @api.model
    def _consent_period_days(self, provider_code=None):
        params = self.env["ir.config_parameter"].sudo()
        days = int(params.get_param(const.PARAM_CONSENT_DAYS) or const.DEFAULT_CONSENT_DAYS)
        provider = (
            self.env["account.bank.provider"].sudo().search([("code", "=", provider_code)], limit=1)
        )
        if provider.max_consent_days:
            days = min(days, provider.max_consent_days)
        return days

    @api.model
    def _saltedge_locale(self):
        return (self.env.lang or "en_US").split("_")[0]

    @api.model
    def _saltedge_connect_options(self, session, provider_code):
        """What connect, reconnect and the interactive refresh send besides the return URL:
        our reference in ``custom_fields`` (echoed in every callback), the consent period,
        the user's language and Salt Edge's own refreshes (a setting, on by default)."""
        params = self.env["ir.config_parameter"].sudo()
        return {
            "period_days": self._consent_period_days(provider_code),
            "locale": self._saltedge_locale(),
            "custom_fields": {const.CUSTOM_FIELD_REFERENCE: session.reference},
            "automatic_refresh": bool(params.get_param(const.PARAM_AUTOMATIC_REFRESH)),
        }

    @api.model
    def _saltedge_open(self, answer, session):
        """Keep the connect URL on the session and send the browser there."""
        session.connect_url = answer["connect_url"]
        return {"type": "ir.actions.act_url", "url": answer["connect_url"], "target": "self"}

    @api.model
    def _saltedge_start_connect(self, company, provider_code, journal=None):
        """Open Salt Edge's connect screens for ``provider_code``; returns the URL action."""
        self._check_manager()
        client = self._saltedge_client(interactive=True)
        customer_id = self._saltedge_customer_for(company, client)
        session = self.env["account.bank.connect.session"]._start(
            company, journal=journal, provider_code=provider_code
        )
        params = self.env["ir.config_parameter"].sudo()
        try:
            answer = client.create_connect_session(
                customer_id,
                self._return_url(session._token()),
                provider_code=provider_code,
                include_sandboxes=bool(params.get_param(const.PARAM_INCLUDE_SANDBOXES)),
                **self._saltedge_connect_options(session, provider_code),
            )
        except SaltEdgeError as error:
            raise self._saltedge_user_error(error) from None
        return self._saltedge_open(answer, session)

    def _saltedge_start_session(self):
        """Checks and the connect session shared by Renew and Refresh at the bank."""
        self.ensure_one()
        self._check_manager()
        if not self.saltedge_connection_id or self.state == "disconnected":
            raise UserError(self.env._("This connection was disconnected. Connect the bank again."))
        return self.env["account.bank.connect.session"]._start(
            self.company_id,
            journal=self.journal_ids[:1],
            connection=self,
            provider_code=self.provider_code,
        )

    def action_renew(self):
        """Renew (or, once expired, reconnect): Salt Edge's reconnect of the same connection,
        which gives a new consent and so a new Connected until."""
        session = self._saltedge_start_session()
        try:
            answer = self._saltedge_client(interactive=True).reconnect(
                self.saltedge_connection_id,
                self._return_url(session._token()),
                **self._saltedge_connect_options(session, self.provider_code),
            )
        except SaltEdgeError as error:
            raise self._saltedge_user_error(error) from None
        return self._saltedge_open(answer, session)

    def action_refresh_at_bank(self):
        """Refresh at the bank: Salt Edge's interactive refresh, for a bank that gives new
        transactions only with the user present. The consent stays as it is; the user
        comes back through the same return route and waiting page as a connect."""
        session = self._saltedge_start_session()
        options = self._saltedge_connect_options(session, self.provider_code)
        try:
            answer = self._saltedge_client(interactive=True).refresh(
                self.saltedge_connection_id,
                self._return_url(session._token()),
                locale=options["locale"],
                custom_fields=options["custom_fields"],
            )
        except SaltEdgeError as error:
            raise self._saltedge_user_error(error) from None
        return self._saltedge_open(answer, session)

    @api.model
    def _saltedge_finish_return(self, session, connection_hint=None):
        """Read what the bank granted from Salt Edge and record it.

        ``connection_hint`` is the ``connection_id`` of the return URL, present only when
        Salt Edge was asked for it and nothing on the way stripped it: a hint, confirmed
        with Salt Edge. Without it the connection is found by our reference in its
        ``custom_fields`` among the customer's connections. Returns the connection.
        """
        # The state proves who started the connect, not that they may still connect.
        self._check_manager()
        client = self._saltedge_client(interactive=True)
        connection = session.connection_id.sudo()
        try:
            if connection.saltedge_connection_id or connection_hint:
                remote = client.get_connection(connection.saltedge_connection_id or connection_hint)
            else:
                remote = self._saltedge_find_remote(client, session)
        except SaltEdgeError as error:
            raise self._saltedge_user_error(error) from None
        if remote is None:
            raise UserError(
                self.env._(
                    "Salt Edge has no connection for this return yet. If the bank confirmed "
                    "it, it appears in Odoo by itself within the hour; else start again."
                )
            )
        failed = self._saltedge_failed_connect(remote, session)
        if failed:
            raise UserError(self._connect_error_message(failed))
        return self._saltedge_link(session, remote, client).with_env(self.env)

    @api.model
    def _saltedge_find_remote(self, client, session, guess=True):
        """The Salt Edge connection a connect session made, from ``GET /connections``:
        the one whose attempt carries our reference; else, when Salt Edge did not echo the
        custom fields there and ``guess`` (the user is back, so the connect just ended), the
        only connection of this bank that Odoo does not know yet and that was made after
        the session started. None when there is none.

        Salt Edge's documentation does not say whether ``last_attempt`` of a listed
        connection keeps the custom fields of the connect once a refresh made a newer
        attempt, hence the second way.
        """
        customer_id = session.company_id.sudo().saltedge_customer_id
        if not customer_id:
            return None
        known = set(
            self.sudo()
            .with_context(active_test=False)
            .search([("company_id", "=", session.company_id.id)])
            .mapped("saltedge_connection_id")
        )
        candidates = []
        for remote in client.list_connections(customer_id):
            attempt = remote.get("last_attempt") or {}
            fields_sent = attempt.get("custom_fields") or {}
            if (
                isinstance(fields_sent, dict)
                and fields_sent.get(const.CUSTOM_FIELD_REFERENCE) == session.reference
            ):
                return remote
            created = parse_saltedge_datetime(remote.get("created_at"))
            if (
                guess
                and str(remote.get("id")) not in known
                and (
                    not session.provider_code
                    or remote.get("provider_code") == session.provider_code
                )
                and created
                and created >= session.create_date.replace(microsecond=0)
            ):
                candidates.append(remote)
        return candidates[0] if len(candidates) == 1 else None

    @api.model
    def _saltedge_failed_connect(self, remote, session):
        """The error class of a connect, renew or refresh at the bank that failed or was
        cancelled (its attempt, made after the session began, says why; a first connect
        that failed leaves a connection without consent), else False. How the return
        learns the outcome when the URL carries no ``error_class``."""
        attempt = remote.get("last_attempt") or {}
        made = parse_saltedge_datetime(attempt.get("created_at"))
        since = session.create_date.replace(microsecond=0)
        if attempt.get("fail_error_class") and (made is None or made >= since):
            return clean_text(attempt["fail_error_class"], 128)
        if not session.connection_id and not remote.get("last_consent_id"):
            return saltedge_errors.CONNECTION_FAILED
        return False

    @api.model
    def _connect_error_message(self, error_class):
        """What a failed or cancelled trip to the bank means, in words: "nothing changed",
        then the sentence of saltedge_errors' table."""
        error_class = str(error_class)[:64]
        reason = self.env._(saltedge_errors.connect_sentence_of(error_class), error=error_class)  # pylint: disable=translation-not-lazy
        return self.env._(saltedge_errors.SENTENCE_CONNECT_NOT_DONE, reason=reason)  # pylint: disable=translation-not-lazy

    @api.model
    def _saltedge_link(self, session, remote, client):
        """Record the Salt Edge connection ``remote`` that ``session`` made: the return,
        the ``success`` callback and the hourly search all come here, in any order and
        more than once; the first links it, the others find it linked."""
        company = session.company_id
        customer_id = company.sudo().saltedge_customer_id
        self._saltedge_check_customer(remote, company)
        # One linker at a time per session: the return and a callback may race.
        self.env.execute_query(
            SQL("SELECT id FROM account_bank_connect_session WHERE id = %s FOR UPDATE", session.id)
        )
        session.invalidate_recordset(["connection_id"])
        connection = session.connection_id.sudo()
        if not connection:
            connection = self.sudo().search(
                [
                    ("company_id", "=", company.id),
                    ("saltedge_connection_id", "=", str(remote["id"])),
                ],
                limit=1,
            )
        vals = {
            "name": remote.get("provider_name")
            or remote.get("provider_code")
            or self.env._("Bank"),
            "provider_code": remote.get("provider_code"),
            "provider_name": remote.get("provider_name"),
            "saltedge_connection_id": str(remote["id"]),
            "saltedge_customer_id": str(customer_id),
        }
        if connection:
            vals.pop("name")
            # The user was just at the bank (a renew, a refresh at the bank): the bank's
            # "only with the user" is answered, the button goes until the bank asks again.
            vals["refresh_needs_user"] = False
            connection.write(vals)
        else:
            connection = self.sudo().create(
                dict(vals, company_id=company.id, user_id=session.user_id.id)
            )
        session.sudo().connection_id = connection
        try:
            connection._saltedge_update_consent(client, remote)
            connection._saltedge_note_fetch(remote)
            connection._saltedge_sync_accounts(client, journal=session.journal_id)
        except SaltEdgeError as error:
            # Said in words on the return page, which rolls the half-made connection back.
            raise self._saltedge_user_error(error) from None
        if not session.linked:
            session.sudo().linked = True
            connection.message_post(
                body=self.env._(
                    "Bank connected by %(user)s, connected until %(date)s.",
                    user=session.user_id.name,
                    date=connection._format_connected_until(),
                )
            )
        return connection

    def _saltedge_started_from(self):
        """The journal the last connect of this connection was started from: accounts that
        Salt Edge lists only after the return are linked to it as at the return."""
        session = (
            self.env["account.bank.connect.session"]
            .sudo()
            .search(
                [("connection_id", "=", self.id), ("journal_id", "!=", False)],
                order="id desc",
                limit=1,
            )
        )
        return session.journal_id

    @api.model
    def _saltedge_link_unreturned(self, hinted_only=False):
        """Link the connections of connects whose user never came back (a closed tab, a
        lost session, a proxy that dropped the return): found through the ``success``
        callback's hint, else (unless ``hinted_only``) among the customer's connections
        (``GET /connections``). The requested import, which runs every few minutes, takes
        only the hinted ones: a connect the user cancelled leaves a session without
        connection for days, and asking Salt Edge about it that often is a waste of its
        rate limit. Returns the connections linked."""
        since = fields.Datetime.now() - timedelta(days=const.UNRETURNED_CONNECT_DAYS)
        domain = [
            ("connection_id", "=", False),
            ("connect_url", "!=", False),
            ("create_date", ">=", since),
        ]
        if hinted_only:
            domain.append(("saltedge_connection_hint", "!=", False))
        sessions = self.env["account.bank.connect.session"].sudo().search(domain)
        linked = self.browse()
        if not sessions:
            return linked
        try:
            client = self._saltedge_client()
        except UserError as error:
            _logger.warning("Unreturned connects not looked for: %s", error)
            return linked
        for session in sessions:
            try:
                with self.env.cr.savepoint():
                    if session.saltedge_connection_hint:
                        remote = client.get_connection(session.saltedge_connection_hint)
                    else:
                        remote = self._saltedge_find_remote(client, session, guess=False)
                    if remote is None or self._saltedge_failed_connect(remote, session):
                        continue
                    connection = self.sudo()._saltedge_link(session, remote, client)
                    connection.import_requested = True
                    linked |= connection.sudo()
            except (SaltEdgeError, UserError) as error:
                _logger.warning("Connect session %s: not linked: %s", session.id, error)
            commit_progress(self.env)
        if linked:
            _logger.info("Linked %s connections whose user did not come back", len(linked))
        return linked

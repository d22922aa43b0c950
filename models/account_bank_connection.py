import logging
import secrets
from datetime import datetime

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL
from odoo.tools.misc import format_date

from ..odoo_series import Constraint, group_users
from ..saltedge_client import SaltEdgeClient, SaltEdgeError
from ..saltedge_errors import RETRY_LATER, meaning_of
from . import const
from .utils import clean_text, commits_allowed, fields_given

_logger = logging.getLogger(__name__)

CONNECTION_STATES = [
    ("draft", "Draft"),
    ("connected", "Connected"),
    ("expired", "Expired"),
    ("error", "Error"),
    ("disconnected", "Disconnected"),
]


def parse_saltedge_datetime(value):
    """Salt Edge's ISO 8601 time (``2027-03-12T10:00:00Z``) as a naive UTC datetime."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo:
        moment = moment.astimezone(pytz.utc).replace(tzinfo=None)
    return moment


class AccountBankConnection(models.Model):
    """One Salt Edge connection of one company: a bank login and the consent it gave."""

    _name = "account.bank.connection"
    _description = "Bank Connection"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "company_id, name, id"
    _check_company_auto = True

    name = fields.Char(string="Bank", required=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    state = fields.Selection(
        CONNECTION_STATES, required=True, default="draft", tracking=True, copy=False
    )
    connected_until = fields.Date(
        tracking=True,
        copy=False,
        readonly=True,
        help="The day the bank's consent runs out (in the company's time zone); "
        "renew the connection before it.",
    )
    consent_expires_at = fields.Datetime(
        string="Consent expires at", copy=False, readonly=True, help="As Salt Edge gives it."
    )
    provider_code = fields.Char(string="Salt Edge provider code", readonly=True)
    provider_name = fields.Char(string="Provider", readonly=True)
    saltedge_connection_id = fields.Char(
        string="Salt Edge connection ID", copy=False, index=True, readonly=True
    )
    saltedge_customer_id = fields.Char(string="Salt Edge customer ID", copy=False, readonly=True)
    saltedge_consent_id = fields.Char(string="Salt Edge consent ID", copy=False, readonly=True)
    last_sync = fields.Datetime(string="Last update", copy=False, readonly=True)
    last_error = fields.Text(copy=False, readonly=True)
    last_stage = fields.Char(
        string="Salt Edge stage",
        copy=False,
        readonly=True,
        help="What Salt Edge is doing with the bank, from its callbacks and its last attempt.",
    )
    fetch_finished = fields.Boolean(
        copy=False,
        readonly=True,
        help="Salt Edge's last fetch from the bank has finished: the opening balance and the "
        "balance check wait for it.",
    )
    saltedge_seen_at = fields.Datetime(
        string="Salt Edge state as of",
        copy=False,
        readonly=True,
        help="Salt Edge's time of the newest state Odoo knows of this connection (a callback "
        "applied or the connection read): an older fail or destroy callback changes nothing.",
    )
    import_requested = fields.Boolean(
        copy=False,
        readonly=True,
        help="Salt Edge said new data is ready: the import of this connection runs soon.",
    )
    refresh_needs_user = fields.Boolean(
        copy=False,
        readonly=True,
        help="The bank refused to give new transactions without the user: refresh at the bank.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Connected by",
        default=lambda self: self.env.user,
        help="Gets the reminders and the activities of this connection.",
    )
    account_ids = fields.One2many(
        "account.bank.connection.account", "connection_id", string="Online accounts"
    )
    unlinked_account_count = fields.Integer(compute="_compute_unlinked_account_count")
    journal_ids = fields.One2many("account.journal", "bank_connection_id", string="Journals")
    journal_count = fields.Integer(compute="_compute_journal_count")
    days_left = fields.Integer(compute="_compute_days_left")

    _saltedge_connection_unique = Constraint(
        "unique(company_id, saltedge_connection_id)",
        "This Salt Edge connection is already linked to this company.",
    )

    # Set by the module (as superuser) from Salt Edge's answers and its own imports, never
    # by hand, over RPC included: a Salt Edge id written by a user could point the import,
    # the consent check or a revoke at another company's connection; a run to resume, at
    # another company's history; a future "state as of", make every later fail or destroy
    # callback stale; the import's flags and dates, start, stop or hide an import. A user
    # writes the name, who connected it, the renewal contacts and the journals
    # (tests/test_access.py holds both lists to every field the module declares).
    _saltedge_protected_fields = frozenset(
        {
            "state",
            "company_id",
            "saltedge_connection_id",
            "saltedge_customer_id",
            "saltedge_consent_id",
            "provider_code",
            "provider_name",
            "connected_until",
            "consent_expires_at",
            "last_sync",
            "last_error",
            "last_stage",
            "fetch_finished",
            "saltedge_seen_at",
            "import_requested",
            "refresh_needs_user",
            "last_refresh_request",
            "next_refresh_possible_at",
            "balance_mismatch",
            "balance_mismatch_note",
            "resume_run_id",
            "import_run_ids",
            "reminder_ids",
        }
    )

    @api.model
    def _check_saltedge_fields(self, vals_list, creating=False):
        """Refuse the fields only the module writes from anyone but the module's own code
        (which writes them as superuser), given as values or, on a create, as the
        context's defaults. A new connection may name its company, in draft."""
        if self.env.su:
            return
        protected = self._saltedge_protected_fields - ({"company_id"} if creating else set())
        for vals in vals_list:
            given = set(protected & fields_given(self, vals, creating))
            state = vals.get("state", self.env.context.get("default_state", "draft"))
            if creating and state == "draft":
                given.discard("state")
            if given:
                raise AccessError(
                    self.env._(
                        "Odoo sets these fields of a bank connection itself, from Salt Edge's "
                        "answers and its imports; they cannot be changed by hand (%s).",
                        ", ".join(sorted(given)),
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        self._check_saltedge_fields(vals_list, creating=True)
        return super().create(vals_list)

    def write(self, vals):
        self._check_saltedge_fields([vals])
        return super().write(vals)

    @api.depends("journal_ids")
    def _compute_journal_count(self):
        for connection in self:
            connection.journal_count = len(connection.journal_ids)

    @api.depends("account_ids.journal_id")
    def _compute_unlinked_account_count(self):
        for connection in self:
            connection.unlinked_account_count = len(
                connection.account_ids.filtered(lambda account: not account.journal_id)
            )

    @api.depends("connected_until")
    @api.depends_context("tz")
    def _compute_days_left(self):
        for connection in self:
            if connection.connected_until:
                today = connection._company_today()
                connection.days_left = (connection.connected_until - today).days
            else:
                connection.days_left = 0

    # ------------------------------------------------------------------------------------
    # Salt Edge access
    # ------------------------------------------------------------------------------------

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
            params.get_param(const.PARAM_BASE_URL) or const.DEFAULT_BASE_URL,
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
    def _connect_error_message(self, error_class):
        """What a failed or cancelled trip to the bank means, in words."""
        if error_class in const.RETURN_ERROR_CANCELLED:
            return self.env._("The connection was cancelled. Nothing changed; you can start again.")
        if meaning_of(error_class) == RETRY_LATER:
            return self.env._(
                "The bank could not be reached. Nothing changed; try again in a few minutes."
            )
        if error_class == "InvalidCredentials":
            return self.env._("The bank refused the login. Nothing changed; try again.")
        return self.env._(
            "The bank did not confirm the connection (%(error)s). Nothing changed; "
            "try again or contact your Odoo partner.",
            error=error_class[:64],
        )

    @api.model
    def _check_manager(self):
        if not self.env.user.has_group("account.group_account_manager"):
            raise AccessError(
                self.env._(
                    "Only accounting administrators can connect, renew or disconnect a bank."
                )
            )

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
            if error.error_class != "DuplicatedCustomer":
                raise self._saltedge_user_error(error) from None
            # The identifier is taken (a restored copy of this database made it): a new one.
            customer = client.create_customer(f"{identifier}-{secrets.token_hex(4)}")
        company_sudo.saltedge_customer_id = str(customer["id"])
        return company_sudo.saltedge_customer_id

    def _company_today(self):
        tz = pytz.timezone(self._company_tz())
        return datetime.now(pytz.utc).astimezone(tz).date()

    def _company_tz(self):
        self.ensure_one()
        partner = self.company_id.partner_id
        return partner.tz or self.env.user.tz or "Europe/Brussels"

    # ------------------------------------------------------------------------------------
    # Connect, renew, return
    # ------------------------------------------------------------------------------------

    @api.model
    def _return_url(self, token):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return f"{base_url.rstrip('/')}{const.RETURN_ROUTE}?state={token}"

    @api.model
    def _callback_url(self, kind):
        """The callback URL of ``kind`` as registered at Salt Edge: the configured base (or
        this database's web.base.url) followed by ``/<kind>``."""
        params = self.env["ir.config_parameter"].sudo()
        base = params.get_param(const.PARAM_CALLBACK_URL) or (
            (params.get_param("web.base.url") or "").rstrip("/") + const.CALLBACK_ROUTE
        )
        return f"{base.rstrip('/')}/{kind}"

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
            return "ConnectionFailed"
        return False

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

    @api.model
    def _saltedge_time(self, value):
        """A Salt Edge time (ISO 8601) as a naive UTC datetime; None when it is not one."""
        if not isinstance(value, str):
            return None
        try:
            return parse_saltedge_datetime(value[:64])
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 in another zone
            return None

    def _fetch_stage_sentence(self):
        """What Salt Edge is doing, for the waiting page (its stages, v5 and v6 names)."""
        self.ensure_one()
        stage = self.last_stage or "start"
        if stage in ("start", "connect", "interactive"):
            return self.env._("Salt Edge is connecting to the bank…")
        if stage in ("fetch_holder_info", "fetch_accounts"):
            return self.env._("Salt Edge is reading the bank's accounts…")
        if stage == "fetch_recent":
            return self.env._("Salt Edge is loading the recent transactions…")
        if stage == "fetch_full":
            return self.env._("Salt Edge is loading the older transactions…")
        if stage == const.STAGE_FINISH:
            return self.env._("Salt Edge has loaded the bank's data; Odoo is importing it…")
        return self.env._("Salt Edge is working with the bank…")

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
        changed = {name: value for name, value in vals.items() if self[name] != value}
        if changed:
            self.with_context(tracking_disable=True).write(changed)
        return finished

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

    def _to_company_date(self, utc_naive):
        tz = pytz.timezone(self._company_tz())
        return pytz.utc.localize(utc_naive).astimezone(tz).date()

    def _format_connected_until(self):
        self.ensure_one()
        if not self.connected_until:
            return ""
        return format_date(self.env, self.connected_until, date_format="d MMM y")

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
                currencies[code] = (
                    self.env["res.currency"]
                    .with_context(active_test=False)
                    .search([("name", "=", code)], limit=1)
                )
            vals = {
                "name": item.get("name") or extra.get("account_name") or str(item["id"]),
                "iban": Account._normalize_iban(extra.get("iban")),
                "currency_id": currencies.get(code, self.env["res.currency"]).id or False,
                "balance": item.get("balance") or 0.0,
                "nature": item.get("nature") or False,
            }
            account = existing.get(str(item["id"]))
            if account:
                # What changed only (mostly the balance): an unchanged account is not
                # written on every run.
                changed = {
                    name: value
                    for name, value in vals.items()
                    if account._fields[name].convert_to_write(account[name], account) != value
                }
                if changed:
                    account.write(changed)
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

    # ------------------------------------------------------------------------------------
    # Disconnect, expiry, callbacks
    # ------------------------------------------------------------------------------------

    def action_disconnect(self):
        """Revoke the consent at Salt Edge and stop using the connection; lines, runs and
        messages stay. Works when Salt Edge already forgot the connection."""
        self._check_manager()
        for connection in self:
            if connection.saltedge_connection_id and connection.state != "disconnected":
                client = connection._saltedge_client(interactive=True)
                try:
                    # Confirmed first: a stored id must not revoke another company's consent.
                    connection._saltedge_check_customer(
                        client.get_connection(connection.saltedge_connection_id)
                    )
                    client.delete_connection(connection.saltedge_connection_id)
                except SaltEdgeError as error:
                    if not error.is_connection_not_found:
                        raise connection._saltedge_user_error(error) from None
            connection._set_disconnected(self.env._("Disconnected by %s.", self.env.user.name))
        return True

    def _set_disconnected(self, reason):
        for connection in self.sudo():
            connection.account_ids.write({"journal_id": False})
            connection.journal_ids.write({"bank_connection_id": False})
            connection.write({"state": "disconnected", "import_requested": False})
            connection.message_post(body=reason)

    def _mark_expired(self, revoked=False):
        """The consent ran out (or was withdrawn): say so once, and ask for a reconnect."""
        for connection in self.filtered(lambda c: c.state != "expired"):
            connection.state = "expired"
            if revoked:
                body = self.env._("The bank's consent was withdrawn. Reconnect the bank to go on.")
            else:
                body = self.env._(
                    "The bank's consent ran out on %(date)s. Reconnect the bank to go on.",
                    date=connection._format_connected_until(),
                )
            connection.message_post(body=body)
            for user in connection._responsible_users():
                connection.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self.env._("Reconnect the bank %s", connection.name),
                    note=body,
                    user_id=user.id,
                )

    def _users_who_may_renew(self):
        """The users who may renew this connection now: active internal accounting
        administrators with access to its company. Asked at the moment of use (a reminder,
        an activity), never remembered."""
        self.ensure_one()
        managers = group_users(self.env.ref("account.group_account_manager").sudo())
        return managers.filtered(
            lambda user: user.active and not user.share and self.company_id in user.company_ids
        )

    def _responsible_users(self):
        """Who is responsible for this connection now: the user who connected it when they
        may still renew it, else every user who may."""
        self.ensure_one()
        may_renew = self._users_who_may_renew()
        return (self.user_id & may_renew) or may_renew

    @api.ondelete(at_uninstall=False)
    def _unlink_except_live(self):
        """A live connection is not deleted: its consent would stay valid at Salt Edge and
        its import history, cursors and reminders would go. Disconnect first."""
        if any(connection.state not in ("draft", "disconnected") for connection in self):
            raise UserError(
                self.env._(
                    "A bank connection that is still connected or expired cannot be deleted. "
                    "Disconnect it first: this also withdraws the consent at Salt Edge."
                )
            )

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
            # Tests (pytest-odoo and Odoo's runner alike) mark their thread; a commit there
            # would break the test's transaction.
            if commits_allowed():
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return True

    # ------------------------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------------------------

    def action_open_journals(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.journal",
            "view_mode": "list,form",
            "domain": [("id", "in", self.journal_ids.ids)],
            "name": self.env._("Journals"),
        }

    @api.model
    def _days_until(self, date_value):
        return (date_value - fields.Date.context_today(self)).days if date_value else None

    @api.model
    def _expiry_level(self, connected_until, state):
        """'danger' within 3 days or expired, 'warning' within 15 days, else ''."""
        if state == "expired":
            return "danger"
        if state != "connected" or not connected_until:
            return ""
        days = self._days_until(connected_until)
        if days <= 3:
            return "danger"
        if days <= 15:
            return "warning"
        return ""

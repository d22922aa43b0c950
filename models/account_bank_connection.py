import logging
from datetime import datetime

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools.misc import format_date

from ..odoo_series import Constraint, group_users
from ..saltedge_client import SaltEdgeError
from .utils import fields_given

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
        help="Gets the to-do when the consent runs out, when they may still renew it.",
    )

    account_ids = fields.One2many(
        "account.bank.connection.account", "connection_id", string="Online accounts"
    )

    unlinked_account_count = fields.Integer(compute="_compute_unlinked_account_count")

    journal_ids = fields.One2many("account.journal", "bank_connection_id", string="Journals")

    days_left = fields.Integer(compute="_compute_days_left")
    expiry_level = fields.Selection(
        [("warning", "Renew soon"), ("danger", "Renew now")],
        compute="_compute_days_left",
        help="How Connected until is coloured: amber from the first renewal reminder day, red "
        "from the second and once expired (the reminder days are a setting).",
    )

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
            "balance_mismatch_note",
            "resume_run_id",
            "saltedge_idle_key",
            "statements_after_line_id",
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
        return super().create(self._saltedge_statements_started(vals_list))

    def write(self, vals):
        self._check_saltedge_fields([vals])
        starting = self.browse()
        if vals.get("statement_period", "none") != "none":
            starting = self.filtered(lambda c: c.statement_period in (False, "none"))
        result = super().write(vals)
        if starting:
            # Turned on now: the lines from now on are filed, the earlier ones stay.
            super(AccountBankConnection, starting).write(
                {"statements_after_line_id": self._saltedge_last_line_id()}
            )
        return result

    @api.depends("account_ids.journal_id")
    def _compute_unlinked_account_count(self):
        for connection in self:
            connection.unlinked_account_count = len(
                connection.account_ids.filtered(lambda account: not account.journal_id)
            )

    @api.depends("connected_until", "state")
    def _compute_days_left(self):
        thresholds = self._reminder_thresholds() if self else ()
        for connection in self:
            if connection.connected_until:
                today = connection._company_today()
                connection.days_left = (connection.connected_until - today).days
            else:
                connection.days_left = 0
            connection.expiry_level = connection._expiry_level(thresholds)

    @api.model
    def _check_manager(self):
        if not self.env.user.has_group("account.group_account_manager"):
            raise AccessError(
                self.env._(
                    "Only accounting administrators can connect, renew or disconnect a bank."
                )
            )

    def _company_today(self):
        """Today in the company's time zone: the one "today" of the days left, the colour,
        the reminders and Connected until, whoever looks (a person, a scheduled action)."""
        tz = pytz.timezone(self._company_tz())
        return datetime.now(pytz.utc).astimezone(tz).date()

    def _company_tz(self):
        """The company's time zone (its partner's), Brussels when it has none: never the
        reader's, so that every user and the scheduled actions count the same days."""
        self.ensure_one()
        return self.company_id.partner_id.tz or "Europe/Brussels"

    def _to_company_date(self, utc_naive):
        tz = pytz.timezone(self._company_tz())
        return pytz.utc.localize(utc_naive).astimezone(tz).date()

    def _format_connected_until(self):
        self.ensure_one()
        if not self.connected_until:
            return ""
        return format_date(self.env, self.connected_until, date_format="d MMM y")

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
            # One to-do, for the first who renews it (its connector when they may).
            for user in connection._renewal_users()[:1]:
                connection.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self.env._("Reconnect the bank %s", connection.name),
                    note=body,
                    user_id=user.id,
                )

    def _renewal_users(self):
        """The one rule of who renews this connection, asked at the moment of use (a
        reminder, the to-do of an expiry), never remembered: the users who may renew it now
        (active internal accounting administrators with access to its company), narrowed to
        the renewal contacts when some were chosen on the connection. The user who
        connected it comes first. A manager added after the connect is one of them; an
        archived one or one who lost the right is not."""
        self.ensure_one()
        managers = group_users(self.env.ref("account.group_account_manager").sudo())
        may_renew = managers.filtered(
            lambda user: user.active and not user.share and self.company_id in user.company_ids
        )
        chosen = may_renew.filtered(lambda user: user.partner_id in self.reminder_partner_ids)
        users = chosen or may_renew
        return (self.user_id & users) | users

    def _saltedge_currency(self, code, activate=False):
        """The one lookup of a currency Salt Edge names (``code``, inactive ones included).
        With ``activate`` (a line or a journal in it is about to be made: Odoo posts no
        line in an inactive currency) it is activated when it is not, and that is said once,
        on this connection's chatter."""
        currency = (
            self.env["res.currency"]
            .sudo()
            .with_context(active_test=False)
            .search([("name", "=", code)], limit=1)
        )
        if activate and currency and not currency.active:
            currency.active = True
            _logger.info("Currency %s activated for bank connection %s", code, self.id)
            self.message_post(
                body=self.env._(
                    "The bank uses %s: that currency was activated, as Odoo records no bank "
                    "line in an inactive currency.",
                    code,
                )
            )
        return currency.with_env(self.env)

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

    def _expiry_level(self, thresholds):
        """The one rule of the colour of Connected until (the dashboard card, the list of
        connections): 'danger' once expired or from the second reminder day on, 'warning'
        from the first (the largest) on, else False. ``thresholds``: the reminder days,
        most days first (``_reminder_thresholds``). Days counted from the company's
        today, like the reminders. With a single reminder day, red means expired."""
        self.ensure_one()
        if self.state == "expired":
            return "danger"
        if self.state != "connected" or not self.connected_until or not thresholds:
            return False
        days = (self.connected_until - self._company_today()).days
        if len(thresholds) > 1 and days <= thresholds[1]:
            return "danger"
        if days <= thresholds[0]:
            return "warning"
        return False

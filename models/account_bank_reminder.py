from odoo import api, fields, models

from ..odoo_series import Constraint
from . import const


class AccountBankReminder(models.Model):
    """The ledger of renewal reminders: one line per reminder of one consent, sent or
    skipped (a more urgent one went out instead, after days without a run).

    The unique key (connection, consent, threshold) is what makes each reminder go out once:
    a second run finds the line, and a concurrent run that tries to write the same line
    waits for the first and fails on the key, so it sends nothing.
    """

    _name = "account.bank.reminder"
    _description = "Bank Connection Renewal Reminder"
    _order = "sent_on desc, threshold, id desc"
    _rec_name = "connection_id"

    connection_id = fields.Many2one(
        "account.bank.connection",
        string="Bank connection",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    consent_id = fields.Char(
        required=True,
        readonly=True,
        help="The Salt Edge consent the reminder was about. A renewal gives a new consent, "
        "and a new series of reminders.",
    )
    threshold = fields.Integer(
        string="Days before",
        required=True,
        readonly=True,
        help="The reminder's threshold in days before Connected until; 0 is the “expired, "
        "reconnect now” message.",
    )
    kind = fields.Selection(
        [("renewal", "Renew soon"), ("expired", "Expired: reconnect")],
        compute="_compute_kind",
        store=True,
    )
    state = fields.Selection(
        [("sent", "Sent"), ("skipped", "Skipped")],
        required=True,
        default="sent",
        readonly=True,
        help="Skipped: a more urgent reminder went out instead, after days without a run.",
    )
    sent_on = fields.Date(
        string="Date", required=True, readonly=True, help="The day, in the company's time zone."
    )
    connected_until = fields.Date(readonly=True)
    days_left = fields.Integer(readonly=True)
    partner_ids = fields.Many2many("res.partner", string="Recipients", readonly=True)

    _threshold_once_per_consent = Constraint(
        "unique(connection_id, consent_id, threshold)",
        "This reminder was already recorded for this consent.",
    )

    @api.depends("threshold")
    def _compute_kind(self):
        for reminder in self:
            reminder.kind = "expired" if reminder.threshold == const.REMINDER_EXPIRED else "renewal"

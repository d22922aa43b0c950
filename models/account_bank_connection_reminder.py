import logging
from collections import defaultdict

import psycopg2

from odoo import Command, api, fields, models
from odoo.tools import SQL, create_index, mute_logger, split_every

from ..odoo_series import commit_progress
from . import const
from .utils import parse_reminder_days

_logger = logging.getLogger(__name__)

TEMPLATE_RENEWAL = "account_bank_connection.mail_template_bank_connection_renewal"
TEMPLATE_EXPIRED = "account_bank_connection.mail_template_bank_connection_expired"
BACKEND_URL = "/odoo/action-account_bank_connection.action_account_bank_connection/%s"


class AccountBankConnection(models.Model):
    """Renewal reminders: e-mails 15, 3 and 1 day before Connected until (a setting), each
    once per consent, and one "expired, reconnect now" e-mail when the date has passed."""

    _inherit = "account.bank.connection"

    reminder_partner_ids = fields.Many2many(
        "res.partner",
        "account_bank_connection_reminder_partner_rel",
        "connection_id",
        "partner_id",
        string="Renewal contacts",
        help="Only these get the e-mails before the bank's consent runs out (each in their "
        "own language), as long as they may renew it. Left empty: every accounting "
        "administrator of the company at the time of the e-mail.",
    )
    renewal_recipient_ids = fields.Many2many(
        "res.partner",
        string="Reminders go to",
        compute="_compute_renewal_recipient_ids",
        help="Who gets the next renewal reminder, as of now.",
    )
    reminder_ids = fields.One2many(
        "account.bank.reminder", "connection_id", string="Reminders sent", readonly=True
    )

    def init(self):
        result = super().init()
        # The daily run reads only the connections near or just past their date.
        create_index(
            self.env.cr,
            "account_bank_connection_reminder_due_index",
            self._table,
            ["company_id", "connected_until"],
            where="state IN ('connected', 'error', 'expired')",
        )
        return result

    @api.depends("reminder_partner_ids", "user_id", "company_id")
    def _compute_renewal_recipient_ids(self):
        for connection in self:
            connection.renewal_recipient_ids = (
                connection._reminder_recipients() if connection._origin.id else False
            )

    # ------------------------------------------------------------------------------------
    # The daily run
    # ------------------------------------------------------------------------------------

    @api.model
    def _cron_send_renewal_reminders(self):
        """Daily: send every renewal reminder that is due today, and the "expired, reconnect
        now" e-mail of the connections whose date has passed, each once per consent.

        The due connections are found in one query, so the connections that need nothing
        cost nothing. They are handled in batches; each batch is committed (outside tests)
        and reported as the cron's progress, so a run that stops half-way loses nothing and
        the next one carries on with the rest.
        """
        thresholds = self._reminder_thresholds()
        due = self._reminder_due(thresholds)
        done = 0
        for batch in split_every(const.REMINDER_BATCH_SIZE, due):
            connections = self.sudo().browse([connection_id for connection_id, _t in batch])
            for connection, (_id, threshold) in zip(connections, batch, strict=True):
                connection._send_due_reminder(threshold, thresholds)
            done += len(batch)
            commit_progress(self.env, processed=len(batch), remaining=len(due) - done)
        return True

    @api.model
    def _reminder_thresholds(self):
        """The configured reminder days, most days first; the default when the setting is
        not a list of days."""
        text = self.env["ir.config_parameter"].sudo().get_param(const.PARAM_REMINDER_DAYS)
        try:
            return parse_reminder_days(text or const.DEFAULT_REMINDER_DAYS)
        except ValueError:
            _logger.warning(
                "Renewal reminder days %r are not a list of days; using %s",
                text,
                const.DEFAULT_REMINDER_DAYS,
            )
            return parse_reminder_days(const.DEFAULT_REMINDER_DAYS)

    @api.model
    def _reminder_due(self, thresholds):
        """``[(connection id, threshold)]`` of every reminder due today, in one query.

        With ``d`` days left before Connected until (in the company's time zone), the due
        threshold is the smallest one that is at least ``d``: after days without a run only
        the most urgent missed reminder goes out, never a 15-day one two days before. It is
        due when this consent has no reminder at that threshold or a more urgent one yet.
        Once the date has passed (or the consent is gone early), the threshold is 0, the
        "expired" e-mail. Disconnected and draft connections get nothing.
        """
        today_by_company = self._reminder_today_by_company()
        if not today_by_company:
            return []
        self.env["account.bank.connection"].flush_model(
            ["company_id", "state", "connected_until", "consent_expires_at", "saltedge_consent_id"]
        )
        self.env["account.bank.reminder"].flush_model(["connection_id", "consent_id", "threshold"])
        today_rows = SQL(", ").join(
            SQL("(%s, %s::date)", company_id, day) for company_id, day in today_by_company.items()
        )
        query = SQL(
            """
            WITH today(company_id, day) AS (VALUES %(today_rows)s),
            candidate AS (
                SELECT conn.id,
                       conn.state,
                       conn.connected_until - today.day AS days_left,
                       conn.consent_expires_at,
                       COALESCE(
                           NULLIF(conn.saltedge_consent_id, ''),
                           'until:' || to_char(conn.connected_until, 'YYYY-MM-DD')
                       ) AS consent_id
                  FROM account_bank_connection conn
                  JOIN today ON today.company_id = conn.company_id
                 WHERE conn.connected_until IS NOT NULL
                   AND (
                        (conn.state IN ('connected', 'error')
                         AND conn.connected_until <= today.day + %(horizon)s)
                     OR (conn.state = 'expired'
                         AND conn.connected_until >= today.day - %(grace)s)
                   )
            ),
            due AS (
                SELECT id, consent_id,
                       CASE
                           WHEN state = 'expired' OR days_left < 0 THEN %(expired)s
                           -- The last day: expired once the consent's own moment has passed.
                           WHEN days_left = 0 THEN
                               CASE WHEN consent_expires_at IS NULL
                                         OR consent_expires_at <= %(now)s
                                    THEN %(expired)s END
                           ELSE (SELECT min(days)
                                   FROM unnest(%(thresholds)s::int[]) AS threshold(days)
                                  WHERE days >= days_left)
                       END AS threshold
                  FROM candidate
            )
            SELECT due.id, due.threshold
              FROM due
             WHERE due.threshold IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1
                     FROM account_bank_reminder reminder
                    WHERE reminder.connection_id = due.id
                      AND reminder.consent_id = due.consent_id
                      AND reminder.threshold <= due.threshold
               )
             ORDER BY due.id
            """,
            today_rows=today_rows,
            horizon=max(thresholds),
            grace=const.REMINDER_EXPIRED_GRACE_DAYS,
            expired=const.REMINDER_EXPIRED,
            now=fields.Datetime.now(),
            thresholds=list(thresholds),
        )
        return self.env.execute_query(query)

    @api.model
    def _reminder_today_by_company(self):
        """{company id: today in the company's time zone}, by the same rule as the
        connections' own ``_company_today``."""
        companies = self.env["res.company"].sudo().search([])
        return {
            company.id: self.new({"company_id": company.id})._company_today()
            for company in companies
        }

    # ------------------------------------------------------------------------------------
    # One reminder
    # ------------------------------------------------------------------------------------

    def _send_due_reminder(self, threshold, thresholds):
        """Record the reminder at ``threshold`` days (0: expired) in the ledger and send it,
        unless another run recorded it first. A failure is logged and leaves nothing
        behind, so the next run tries again. Returns whether the reminder went out."""
        self.ensure_one()
        # Days left depends on today: never the value of an earlier day still in the cache.
        self.invalidate_recordset(["days_left"])
        try:
            with self.env.cr.savepoint():
                recipients = self._reminder_recipients()
                if not self._record_reminder(threshold, thresholds, recipients):
                    return False
                if threshold == const.REMINDER_EXPIRED:
                    self._mark_expired()
                self._send_reminder_mail(threshold, recipients)
        except Exception:
            _logger.exception(
                "Renewal reminder (%s days) of bank connection %s failed; the next run tries "
                "again",
                threshold,
                self.id,
            )
            return False
        return True

    def _reminder_consent_key(self):
        """What a series of reminders belongs to: Salt Edge's consent ID, or the date for a
        connection that has none (the due query uses the same rule)."""
        self.ensure_one()
        return self.saltedge_consent_id or f"until:{self.connected_until.isoformat()}"

    def _record_reminder(self, threshold, thresholds, recipients):
        """Write the ledger line of the reminder, and mark the less urgent ones of this
        consent that never went out as skipped, so they never go out later. Returns False
        when another run wrote the line first (the unique key refused ours)."""
        self.ensure_one()
        consent = self._reminder_consent_key()
        recorded = set(
            self.reminder_ids.filtered(lambda reminder: reminder.consent_id == consent).mapped(
                "threshold"
            )
        )
        common = {
            "connection_id": self.id,
            "consent_id": consent,
            "sent_on": self._company_today(),
            "connected_until": self.connected_until,
            "days_left": self.days_left,
        }
        vals_list = [
            dict(
                common,
                threshold=threshold,
                state="sent",
                partner_ids=[Command.set(recipients.ids)],
            )
        ]
        vals_list += [
            dict(common, threshold=skipped, state="skipped")
            for skipped in thresholds
            if skipped > threshold and skipped not in recorded
        ]
        try:
            # A concurrent run that wrote the same line first makes this insert wait for
            # it, then fail on the unique key: only one of the two sends.
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                self.env["account.bank.reminder"].sudo().create(vals_list)
        except psycopg2.errors.UniqueViolation:
            _logger.info(
                "Renewal reminder (%s days) of bank connection %s was sent by another run",
                threshold,
                self.id,
            )
            return False
        return True

    def _reminder_recipients(self):
        """Who gets a reminder: those who renew the connection at the moment of sending
        (``_renewal_users``) and have an e-mail address. A contact archived or without the
        right any more gets nothing: the e-mail names the company's bank and accounts. When
        no chosen contact may renew it any more, every one who may gets it, so a consent
        never runs out unannounced."""
        self.ensure_one()
        return self.sudo()._renewal_users().partner_id.filtered("email")

    def _send_reminder_mail(self, threshold, recipients):
        """One e-mail per language of the recipients, each rendered in that language (the
        date too). The e-mails stay on the connection's chatter."""
        self.ensure_one()
        if not recipients:
            self.message_post(
                body=self.env._(
                    "The renewal reminder could not be sent: no renewal contact has an e-mail "
                    "address. Add renewal contacts on the connection."
                )
            )
            return
        template = self.env.ref(
            TEMPLATE_EXPIRED if threshold == const.REMINDER_EXPIRED else TEMPLATE_RENEWAL
        )
        for lang, partners in self._reminder_recipients_by_lang(recipients).items():
            template.with_context(lang=lang).send_mail(
                self.id,
                email_values={"recipient_ids": [Command.set(partners.ids)]},
                email_layout_xmlid="mail.mail_notification_light",
            )

    def _reminder_recipients_by_lang(self, recipients):
        """{language code: partners}: each recipient reads the e-mail in their language."""
        self.ensure_one()
        fallback = self.company_id.partner_id.lang or self.env.lang or "en_US"
        by_lang = defaultdict(lambda: self.env["res.partner"])
        for partner in recipients:
            by_lang[partner.lang or fallback] |= partner
        return dict(by_lang)

    def _reminder_renew_url(self):
        """The connection's form in the backend, where Renew is: a login is asked, there is
        no public token in the e-mail."""
        self.ensure_one()
        return self.get_base_url() + BACKEND_URL % self.id

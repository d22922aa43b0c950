"""Renewal reminders: 15, 3 and 1 day before Connected until, each once per consent, in the
reader's language, and one "expired, reconnect now" e-mail. No Salt Edge is needed: the
tests set Connected until and the consent directly and move the clock."""

import logging
from datetime import date, datetime, timedelta
from unittest.mock import patch

import psycopg2
from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, new_test_user
from odoo.tools import mute_logger

from ..models import account_bank_connection_reminder, const
from ..odoo_series import group_users, user_groups_field

REMINDER_LOGGER = account_bank_connection_reminder.__name__
RENEW_PATH = "/odoo/action-account_bank_connection.action_account_bank_connection/%s"
# The cron runs at 07:00 UTC in these tests: 08:00 or 09:00 in Brussels, the same day.
RUN_TIME = "07:00:00"


class TestRenewalReminders(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for code in ("nl_BE", "fr_BE"):
            cls.env["res.lang"]._activate_lang(code)
        cls.env["ir.module.module"]._load_module_terms(
            ["account_bank_connection"], ["nl_BE", "fr_BE"], overwrite=True
        )
        cls.company = cls.env.company
        cls.company.partner_id.tz = "Europe/Brussels"
        cls.company.email = "boekhouding@example.be"
        cls.nl_manager = cls._manager("abc_reminder_nl", "An Peeters", "nl_BE")
        cls.fr_manager = cls._manager("abc_reminder_fr", "Claire Dubois", "fr_BE")
        cls.en_manager = cls._manager("abc_reminder_en", "John Smith", "en_US")
        cls.journal = cls.env["account.journal"].create(
            {
                "name": "KBC Zichtrekening",
                "code": "KBCZ",
                "type": "bank",
                "bank_acc_number": "BE73735012345660",
            }
        )
        cls.Connection = cls.env["account.bank.connection"]
        cls.thresholds = (15, 3, 1)

    @classmethod
    def _manager(cls, login, name, lang):
        return new_test_user(
            cls.env,
            login=login,
            name=name,
            lang=lang,
            email=f"{login}@example.be",
            groups="account.group_account_manager",
        )

    def connection(self, until, consent="consent-1", contacts=None, **vals):
        """A connected bank whose consent runs out on ``until``; its renewal contact is the
        English-speaking manager unless ``contacts`` says otherwise."""
        return self.Connection.create(
            {
                "name": "KBC",
                "state": "connected",
                "connected_until": until,
                "saltedge_consent_id": consent,
                "user_id": self.en_manager.id,
                "reminder_partner_ids": [Command.set((contacts or self.en_manager.partner_id).ids)],
                **vals,
            }
        )

    def run_cron(self):
        self.Connection._cron_send_renewal_reminders()

    def run_daily(self, frozen, first_day, days):
        """One run a day at the same hour, from ``first_day`` for ``days`` days."""
        for offset in range(days):
            frozen.move_to(f"{first_day + timedelta(days=offset)} {RUN_TIME}")
            self.run_cron()

    def mails(self, connection):
        """The reminder e-mails of the connection (not the activity notifications)."""
        return self.env["mail.mail"].search(
            [
                ("model", "=", connection._name),
                ("res_id", "=", connection.id),
                ("message_type", "=", "email_outgoing"),
            ],
            order="id",
        )

    @staticmethod
    def ledger(connection, consent=None):
        """(threshold, state, date, days left) of the connection's ledger lines, sorted."""
        return sorted(
            (line.threshold, line.state, line.sent_on, line.days_left)
            for line in connection.reminder_ids
            if consent is None or line.consent_id == consent
        )

    # ------------------------------------------------------------------------------------
    # When reminders go out
    # ------------------------------------------------------------------------------------

    def test_forty_daily_runs_send_exactly_three_reminders_at_15_3_and_1_days(self):
        start = date(2027, 2, 1)
        until = start + timedelta(days=30)
        connection = self.connection(until)
        with freeze_time(f"{start} {RUN_TIME}") as frozen:
            self.run_daily(frozen, start, 40)

        self.assertEqual(
            self.ledger(connection),
            [
                (0, "sent", until, 0),
                (1, "sent", until - timedelta(days=1), 1),
                (3, "sent", until - timedelta(days=3), 3),
                (15, "sent", until - timedelta(days=15), 15),
            ],
            "the 15, 3 and 1-day reminders, then the expired e-mail on the day",
        )
        mails = self.mails(connection)
        reminder_mails = mails.filtered(lambda mail: mail.subject.startswith("Renew the bank"))
        self.assertEqual(len(reminder_mails), 3, "exactly three reminders in forty days")
        self.assertEqual(len(mails - reminder_mails), 1, "and one 'expired' e-mail at the end")
        self.assertIn("15 days left", reminder_mails[0].body_html)
        self.assertIn("3 days left", reminder_mails[1].body_html)
        self.assertIn("1 day left", reminder_mails[2].body_html)
        self.assertEqual(reminder_mails.recipient_ids, self.en_manager.partner_id)

    def test_a_second_run_on_the_same_day_sends_nothing(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until - timedelta(days=15)} {RUN_TIME}") as frozen:
            self.run_cron()
            self.run_cron()
            frozen.move_to(f"{until - timedelta(days=15)} 20:00:00")
            self.run_cron()
        self.assertEqual(self.ledger(connection), [(15, "sent", date(2027, 2, 25), 15)])
        self.assertEqual(len(self.mails(connection)), 1)

    def test_after_days_without_a_run_only_the_most_urgent_reminder_goes_out(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until - timedelta(days=20)} {RUN_TIME}") as frozen:
            self.run_cron()
            self.assertFalse(connection.reminder_ids, "nothing is due 20 days before")
            # No run for 18 days: two days before, the 3-day reminder goes out, never the
            # 15-day one, which is marked skipped so it cannot follow later.
            frozen.move_to(f"{until - timedelta(days=2)} {RUN_TIME}")
            self.run_cron()
            self.assertEqual(
                self.ledger(connection),
                [
                    (3, "sent", date(2027, 3, 10), 2),
                    (15, "skipped", date(2027, 3, 10), 2),
                ],
            )
            mails = self.mails(connection)
            self.assertEqual(len(mails), 1)
            self.assertIn("2 days left", mails.body_html)
            frozen.move_to(f"{until - timedelta(days=1)} {RUN_TIME}")
            self.run_cron()
        self.assertEqual(
            [line[:2] for line in self.ledger(connection)],
            [(1, "sent"), (3, "sent"), (15, "skipped")],
        )
        self.assertEqual(len(self.mails(connection)), 2)

    def test_a_connection_found_after_its_date_gets_only_the_expired_email(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until + timedelta(days=2)} {RUN_TIME}"):
            self.run_cron()
            self.run_cron()
        self.assertEqual(
            [line[:2] for line in self.ledger(connection)],
            [(0, "sent"), (1, "skipped"), (3, "skipped"), (15, "skipped")],
        )
        mails = self.mails(connection)
        self.assertEqual(len(mails), 1)
        self.assertIn("has expired", mails.subject)
        self.assertEqual(connection.state, "expired")

    def test_a_renewal_starts_a_new_series_for_the_new_date(self):
        start = date(2027, 2, 1)
        until = start + timedelta(days=20)
        connection = self.connection(until)
        with freeze_time(f"{start} {RUN_TIME}") as frozen:
            self.run_daily(frozen, start, 10)
            # Ten days before, the bank is renewed: a new consent and a new date.
            renewed_on = start + timedelta(days=10)
            new_until = renewed_on + timedelta(days=30)
            connection.write({"saltedge_consent_id": "consent-2", "connected_until": new_until})
            self.run_daily(frozen, renewed_on, 30)
        self.assertEqual(
            self.ledger(connection, "consent-1"),
            [(15, "sent", until - timedelta(days=15), 15)],
        )
        self.assertEqual(
            self.ledger(connection, "consent-2"),
            [
                (1, "sent", new_until - timedelta(days=1), 1),
                (3, "sent", new_until - timedelta(days=3), 3),
                (15, "sent", new_until - timedelta(days=15), 15),
            ],
        )
        self.assertEqual(len(self.mails(connection)), 4)
        self.assertEqual(connection.state, "connected")

    def test_the_reminder_days_come_from_the_settings(self):
        self.env["ir.config_parameter"].set_param(const.PARAM_REMINDER_DAYS, "7, 2")
        start = date(2027, 2, 1)
        until = start + timedelta(days=20)
        connection = self.connection(until)
        with freeze_time(f"{start} {RUN_TIME}") as frozen:
            self.run_daily(frozen, start, 20)
        self.assertEqual(
            [line[:2] + line[3:] for line in self.ledger(connection)],
            [(2, "sent", 2), (7, "sent", 7)],
        )

    def test_the_settings_refuse_reminder_days_that_are_not_days(self):
        Settings = self.env["res.config.settings"]
        self.assertEqual(
            Settings._fields["bank_connection_reminder_days"].default(Settings), "15,3,1"
        )
        Settings.new(
            {"bank_connection_reminder_days": "10, 5,1"}
        )._check_bank_connection_reminder_days()
        for wrong in ("soon", "15, 0", "15,-3", "400", ""):
            with self.subTest(wrong=wrong), self.assertRaises(ValidationError):
                Settings.new(
                    {"bank_connection_reminder_days": wrong}
                )._check_bank_connection_reminder_days()
        # A wrong value written elsewhere does not stop the reminders: the default applies.
        self.env["ir.config_parameter"].set_param(const.PARAM_REMINDER_DAYS, "tomorrow")
        with self.assertLogs(REMINDER_LOGGER, "WARNING"):
            self.assertEqual(self.Connection._reminder_thresholds(), self.thresholds)

    # ------------------------------------------------------------------------------------
    # Expiry, disconnected connections
    # ------------------------------------------------------------------------------------

    def test_reaching_expiry_marks_the_connection_expired_with_one_mail_and_an_activity(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until - timedelta(days=1)} {RUN_TIME}") as frozen:
            self.run_daily(frozen, until - timedelta(days=1), 5)
        self.assertEqual(connection.state, "expired")
        expired = connection.reminder_ids.filtered(lambda line: line.kind == "expired")
        self.assertEqual(
            [(line.threshold, line.state, line.sent_on) for line in expired],
            [(0, "sent", until)],
        )
        expired_mails = self.mails(connection).filtered(lambda mail: "expired" in mail.subject)
        self.assertEqual(len(expired_mails), 1)
        self.assertIn("Reconnect now", expired_mails.body_html)
        self.assertIn(RENEW_PATH % connection.id, expired_mails.body_html)
        self.assertEqual(len(connection.activity_ids), 1)
        self.assertEqual(connection.activity_ids.user_id, self.en_manager)
        self.assertIn("Reconnect", connection.activity_ids.summary)

    def test_on_its_last_day_a_consent_expires_only_once_its_moment_has_passed(self):
        until = date(2027, 3, 12)
        # 21:00 UTC on the day (22:00 in Brussels): usable all day long.
        connection = self.connection(until, consent_expires_at=datetime(2027, 3, 12, 21, 0))
        with freeze_time(f"{until} {RUN_TIME}") as frozen:
            self.run_cron()
            self.assertEqual(connection.state, "connected")
            self.assertFalse(connection.reminder_ids)
            frozen.move_to(f"{until + timedelta(days=1)} {RUN_TIME}")
            self.run_cron()
        self.assertEqual(connection.state, "expired")
        self.assertEqual(
            [line[:2] for line in self.ledger(connection)],
            [(0, "sent"), (1, "skipped"), (3, "skipped"), (15, "skipped")],
        )

    def test_a_connection_the_consent_check_found_expired_gets_the_email_once(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until} 03:00:00") as frozen:
            # The daily consent check (Salt Edge said the consent is gone) came first.
            connection._mark_expired()
            self.assertEqual(len(connection.activity_ids), 1)
            frozen.move_to(f"{until} {RUN_TIME}")
            self.run_cron()
            frozen.move_to(f"{until + timedelta(days=1)} {RUN_TIME}")
            self.run_cron()
        self.assertEqual(len(self.mails(connection)), 1)
        self.assertEqual(len(connection.activity_ids), 1, "no second activity")

    def test_a_consent_withdrawn_before_its_date_gets_the_expired_email_without_the_date(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until - timedelta(days=40)} {RUN_TIME}"):
            connection._mark_expired(revoked=True)
            self.run_cron()
            self.run_cron()
        mails = self.mails(connection)
        self.assertEqual(len(mails), 1)
        self.assertIn("has expired", mails.subject)
        self.assertIn("Reconnect now", mails.body_html)
        self.assertNotIn("Connected until", mails.body_html, "a date still to come would confuse")
        self.assertEqual(
            [line[:2] for line in self.ledger(connection)],
            [(0, "sent"), (1, "skipped"), (3, "skipped"), (15, "skipped")],
        )

    def test_disconnected_and_draft_connections_get_nothing(self):
        until = date(2027, 3, 12)
        disconnected = self.connection(until, state="disconnected")
        draft = self.connection(until, state="draft")
        in_error = self.connection(until, state="error")
        with freeze_time(f"{until - timedelta(days=1)} {RUN_TIME}") as frozen:
            self.run_daily(frozen, until - timedelta(days=1), 3)
        for connection in disconnected | draft:
            self.assertFalse(connection.reminder_ids)
            self.assertFalse(self.mails(connection))
        self.assertEqual(disconnected.state, "disconnected")
        # A connection in error still has a consent that runs out.
        self.assertEqual(
            [line[:2] for line in self.ledger(in_error)][:2], [(0, "sent"), (1, "sent")]
        )

    # ------------------------------------------------------------------------------------
    # Recipients, languages, the e-mail
    # ------------------------------------------------------------------------------------

    def test_each_recipient_reads_the_reminder_in_their_own_language(self):
        until = date(2027, 3, 12)
        contacts = (self.nl_manager | self.fr_manager | self.en_manager).partner_id
        connection = self.connection(until, contacts=contacts)
        self.journal.bank_connection_id = connection
        with freeze_time(f"{until - timedelta(days=15)} {RUN_TIME}"):
            self.run_cron()
        mails = self.mails(connection)
        self.assertEqual(len(mails), 3, "one e-mail per language")
        by_recipient = {mail.recipient_ids: mail for mail in mails}
        self.assertEqual(set(by_recipient), set(contacts))
        expected = {
            self.nl_manager.partner_id: (
                "Vernieuw de bankverbinding KBC vóór 12 maart 2027",
                ["Verbonden tot 12 maart 2027", "Nog 15 dagen", "Nu vernieuwen", "Dagboek"],
            ),
            self.fr_manager.partner_id: (
                "Renouvelez la connexion bancaire KBC avant le 12 mars 2027",
                ["Connecté jusqu’au 12 mars 2027", "Encore 15 jours", "Renouveler maintenant"],
            ),
            self.en_manager.partner_id: (
                "Renew the bank connection KBC before March 12, 2027",
                ["Connected until March 12, 2027", "15 days left", "Renew now"],
            ),
        }
        for partner, (subject, phrases) in expected.items():
            mail = by_recipient[partner]
            with self.subTest(lang=partner.lang):
                self.assertEqual(mail.subject, subject)
                for phrase in phrases:
                    self.assertIn(phrase, mail.body_html)
                # The bank's journal and IBAN, and the backend link (login, no token).
                self.assertIn("KBC Zichtrekening", mail.body_html)
                self.assertIn("BE73735012345660", mail.body_html)
                self.assertIn(
                    connection.get_base_url() + RENEW_PATH % connection.id, mail.body_html
                )
                self.assertNotIn("access_token", mail.body_html)
        self.assertIn("een aantal dagen", by_recipient[self.nl_manager.partner_id].body_html)
        self.assertIn("quelques jours", by_recipient[self.fr_manager.partner_id].body_html)
        self.assertIn("a few days before", by_recipient[self.en_manager.partner_id].body_html)
        # The ledger names every recipient; the e-mails stay on the connection's chatter.
        self.assertEqual(connection.reminder_ids.partner_ids, contacts)
        chatter = connection.message_ids.filtered(
            lambda message: message.message_type == "email_outgoing"
        )
        self.assertEqual(chatter, mails.mail_message_id)
        self.assertEqual(
            sorted(chatter.mapped("subject")), sorted(subject for subject, _ in expected.values())
        )

    def test_the_expired_email_is_in_the_readers_language_too(self):
        until = date(2027, 3, 12)
        contacts = (self.nl_manager | self.fr_manager).partner_id
        connection = self.connection(until, contacts=contacts)
        with freeze_time(f"{until + timedelta(days=1)} {RUN_TIME}"):
            self.run_cron()
        by_recipient = {mail.recipient_ids: mail for mail in self.mails(connection)}
        self.assertEqual(set(by_recipient), set(contacts))
        dutch = by_recipient[self.nl_manager.partner_id]
        self.assertEqual(dutch.subject, "De bankverbinding KBC is verlopen: verbind ze nu opnieuw")
        self.assertIn("Verbonden tot 12 maart 2027", dutch.body_html)
        self.assertIn("Nu opnieuw verbinden", dutch.body_html)
        french = by_recipient[self.fr_manager.partner_id]
        self.assertEqual(
            french.subject, "La connexion bancaire KBC a expiré : reconnectez-la maintenant"
        )
        self.assertIn("Connecté jusqu’au 12 mars 2027", french.body_html)
        self.assertIn("Reconnecter maintenant", french.body_html)

    def test_without_chosen_contacts_every_manager_gets_it_one_added_after_the_connect_too(self):
        accountant = new_test_user(
            self.env,
            login="abc_reminder_accountant",
            groups="account.group_account_user",
            email="boekhouder@example.be",
        )
        until = date(2027, 3, 12)
        connection = self.connection(until, user_id=accountant.id)
        connection.reminder_partner_ids = False
        # Made an accounting administrator after the bank was connected.
        newcomer = self._manager("abc_reminder_newcomer", "New Admin", "nl_BE")
        managers = group_users(self.env.ref("account.group_account_manager")).filtered(
            lambda user: self.company in user.company_ids and not user.share and user.email
        )
        self.assertIn(newcomer, managers)
        # The form shows who the next e-mail goes to, computed now, not remembered.
        self.assertEqual(connection.renewal_recipient_ids, managers.partner_id)
        with freeze_time(f"{until - timedelta(days=3)} {RUN_TIME}"):
            self.run_cron()
        recipients = self.mails(connection).recipient_ids
        self.assertEqual(recipients, managers.partner_id)
        self.assertIn(newcomer.partner_id, recipients)
        # The accountant who connected it may not renew it: no e-mail for them.
        self.assertNotIn(accountant.partner_id, recipients)
        self.assertEqual(connection.reminder_ids.partner_ids, managers.partner_id)

    def test_only_contacts_who_may_still_renew_get_the_reminder(self):
        until = date(2027, 3, 12)
        archived = self._manager("abc_reminder_archived", "Gone Away", "en_US")
        demoted = self._manager("abc_reminder_demoted", "No Longer Admin", "en_US")
        outsider = self.env["res.partner"].create({"name": "Someone", "email": "x@example.com"})
        contacts = self.nl_manager.partner_id | archived.partner_id | demoted.partner_id | outsider
        connection = self.connection(until, contacts=contacts)
        # After the contacts were chosen: one archived, one lost accounting administration.
        archived.active = False
        demoted.write(
            {
                user_groups_field(self.env): [
                    Command.unlink(self.env.ref("account.group_account_manager").id)
                ]
            }
        )
        self.assertFalse(demoted.has_group("account.group_account_manager"))
        with freeze_time(f"{until - timedelta(days=3)} {RUN_TIME}"):
            self.run_cron()
        self.assertEqual(self.mails(connection).recipient_ids, self.nl_manager.partner_id)
        self.assertEqual(connection.reminder_ids.partner_ids, self.nl_manager.partner_id)

    def test_a_connector_who_may_no_longer_renew_is_not_responsible(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        connection.reminder_partner_ids = False
        self.en_manager.active = False
        with freeze_time(f"{until - timedelta(days=3)} {RUN_TIME}"):
            self.run_cron()
        recipients = self.mails(connection).recipient_ids
        self.assertTrue(recipients)
        self.assertNotIn(self.en_manager.partner_id, recipients)
        self.assertIn(self.nl_manager.partner_id, recipients)

    # ------------------------------------------------------------------------------------
    # Exactly once, also when something goes wrong
    # ------------------------------------------------------------------------------------

    def test_a_run_that_comes_second_for_the_same_reminder_sends_nothing(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        with freeze_time(f"{until - timedelta(days=15)} {RUN_TIME}"):
            # Two runs saw the same reminder due; the first one records and sends it.
            due = self.Connection._reminder_due(self.thresholds)
            self.assertEqual(due, [(connection.id, 15)])
            self.assertTrue(connection._send_due_reminder(15, self.thresholds))
            # The second one is refused by the ledger's unique key and sends nothing.
            self.assertFalse(connection._send_due_reminder(15, self.thresholds))
        self.assertEqual(len(connection.reminder_ids), 1)
        self.assertEqual(len(self.mails(connection)), 1)
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.UniqueViolation):
            with self.env.cr.savepoint():
                self.env["account.bank.reminder"].create(
                    {
                        "connection_id": connection.id,
                        "consent_id": "consent-1",
                        "threshold": 15,
                        "sent_on": until,
                    }
                )

    def test_a_reminder_that_fails_leaves_nothing_and_goes_out_on_the_next_run(self):
        until = date(2027, 3, 12)
        connection = self.connection(until)
        template_class = type(self.env["mail.template"])
        with freeze_time(f"{until - timedelta(days=3)} {RUN_TIME}"):
            with (
                patch.object(template_class, "send_mail", side_effect=RuntimeError("SMTP down")),
                self.assertLogs(REMINDER_LOGGER, logging.ERROR) as logs,
            ):
                self.run_cron()
            self.assertIn(f"bank connection {connection.id}", logs.output[0])
            self.assertFalse(connection.reminder_ids)
            self.assertFalse(self.mails(connection))
            self.run_cron()
        self.assertEqual(
            [line[:2] for line in self.ledger(connection)], [(3, "sent"), (15, "skipped")]
        )
        self.assertEqual(len(self.mails(connection)), 1)

    # ------------------------------------------------------------------------------------
    # Scale
    # ------------------------------------------------------------------------------------

    def test_due_connections_are_handled_in_batches_with_the_crons_progress(self):
        until = date(2027, 3, 12)
        connections = self.Connection.browse(
            [self.connection(until, consent=f"consent-{index}").id for index in range(5)]
        )
        progress = []
        # The commit itself is the series' (odoo_series.commit_progress), which commits
        # nothing in a test's thread: what it is asked to report is recorded here.
        with (
            freeze_time(f"{until - timedelta(days=3)} {RUN_TIME}"),
            patch.object(const, "REMINDER_BATCH_SIZE", 2),
            patch.object(
                account_bank_connection_reminder,
                "commit_progress",
                lambda _env, processed=0, remaining=None: progress.append((processed, remaining)),
            ),
        ):
            self.run_cron()
        self.assertEqual(progress, [(2, 3), (2, 1), (1, 0)])
        self.assertEqual(len(connections.reminder_ids.filtered(lambda r: r.state == "sent")), 5)

    def test_5000_connections_with_none_due_cost_as_many_queries_as_50(self):
        today = date(2027, 2, 25)
        Connection = self.Connection.with_context(
            tracking_disable=True, mail_create_nolog=True, mail_create_nosubscribe=True
        )
        contact = self.en_manager.partner_id

        def add_connections(count, offset):
            """Connections of every kind that needs nothing today: far from their date,
            disconnected or draft near it, expired long ago, or near it with their reminder
            already sent."""
            vals_list, reminded = [], []
            for index in range(offset, offset + count):
                kind = index % 5
                vals = {
                    "name": f"Bank {index}",
                    "saltedge_consent_id": f"consent-{index}",
                    "reminder_partner_ids": [Command.set(contact.ids)],
                }
                if kind == 0:
                    vals.update(state="connected", connected_until=today + timedelta(days=90))
                elif kind == 1:
                    vals.update(state="disconnected", connected_until=today + timedelta(days=2))
                elif kind == 2:
                    vals.update(state="draft")
                elif kind == 3:
                    vals.update(state="expired", connected_until=today - timedelta(days=100))
                else:
                    vals.update(state="connected", connected_until=today + timedelta(days=10))
                    reminded.append(index - offset)
                vals_list.append(vals)
            connections = Connection.create(vals_list)
            self.env["account.bank.reminder"].create(
                [
                    {
                        "connection_id": connections[position].id,
                        "consent_id": connections[position].saltedge_consent_id,
                        "threshold": 15,
                        "sent_on": today - timedelta(days=5),
                    }
                    for position in reminded
                ]
            )
            return connections

        def count_queries():
            """The queries of one run, checking that it sent nothing."""
            self.env.flush_all()
            self.env.invalidate_all()
            reminders = self.env["account.bank.reminder"].search_count([])
            mails = self.env["mail.mail"].search_count([])
            before = self.env.cr.sql_log_count
            self.run_cron()
            queries = self.env.cr.sql_log_count - before
            self.assertEqual(self.env["account.bank.reminder"].search_count([]), reminders)
            self.assertEqual(self.env["mail.mail"].search_count([]), mails)
            return queries

        with freeze_time(f"{today} {RUN_TIME}"):
            add_connections(50, 0)
            self.run_cron()  # warms the caches (settings, templates)
            queries_for_50 = count_queries()
            add_connections(4950, 50)
            self.assertGreaterEqual(self.Connection.search_count([]), 5000)
            queries_for_5000 = count_queries()
        self.assertEqual(queries_for_5000, queries_for_50)
        self.assertLessEqual(queries_for_50, 10)

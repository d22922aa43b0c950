"""One rule for each concept, held where every reader of it looks: the callback URL the
settings show is the one the signature check uses; the colour of Connected until follows
the reminder days and the company's today.
"""

from datetime import date

from freezegun import freeze_time

from odoo.tests import TransactionCase

from ..models import const


class TestOneRule(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.params = cls.env["ir.config_parameter"].sudo()
        cls.journal = cls.env["account.journal"].create(
            {"name": "KBC Zichtrekening", "code": "KBCR", "type": "bank"}
        )

    # --- the callback URL --------------------------------------------------------------

    def settings_url(self):
        return self.env["res.config.settings"].create({}).saltedge_callback_url

    def test_the_settings_show_the_callback_url_the_signature_check_uses(self):
        self.params.set_param("web.base.url", "http://odoo.internal:8069")
        self.params.set_param(const.PARAM_CALLBACK_URL, False)
        self.assertEqual(self.settings_url(), "http://odoo.internal:8069" + const.CALLBACK_ROUTE)
        # Behind a proxy the administrator names the public URL: the settings show it, and
        # every kind's URL (signed by Salt Edge, checked by the route) is built on it.
        self.params.set_param(
            const.PARAM_CALLBACK_URL, "https://boekhouding.example.be/saltedge/callback/"
        )
        self.assertEqual(self.settings_url(), "https://boekhouding.example.be/saltedge/callback")
        self.assertEqual(
            self.Connection._callback_url("success"),
            "https://boekhouding.example.be/saltedge/callback/success",
        )
        self.assertEqual(self.Connection._callback_url(), self.settings_url())

    # --- the colour of Connected until ------------------------------------------------

    def connection(self, until, state="connected"):
        connection = self.Connection.create({"name": "KBC"})
        connection.sudo().write({"state": state, "connected_until": until})
        self.journal.bank_connection_id = connection
        return connection

    def levels(self, *days_left, today):
        """The colour of a connection ending ``days_left`` days after ``today``, for each."""
        result = []
        for days in days_left:
            connection = self.connection(date.fromordinal(today.toordinal() + days))
            result.append(connection.expiry_level)
            self.assertEqual(self.journal.bank_connection_level, connection.expiry_level)
        return result

    def test_amber_from_the_first_reminder_day_red_from_the_second(self):
        self.params.set_param(const.PARAM_REMINDER_DAYS, "20,5,2")
        today = date(2027, 3, 1)
        with freeze_time("2027-03-01 10:00:00"):
            self.assertEqual(
                self.levels(25, 21, 20, 18, 6, 5, 4, 0, today=today),
                [False, False, "warning", "warning", "warning", "danger", "danger", "danger"],
            )
        self.params.set_param(const.PARAM_REMINDER_DAYS, "15,3,1")
        with freeze_time("2027-03-01 10:00:00"):
            self.assertEqual(
                self.levels(18, 15, 4, 3, today=today), [False, "warning", "warning", "danger"]
            )

    def test_an_expired_connection_is_red_a_disconnected_one_has_no_colour(self):
        expired = self.connection(date(2027, 1, 1), state="expired")
        self.assertEqual(expired.expiry_level, "danger")
        self.assertEqual(self.journal.bank_connection_level, "danger")
        gone = self.connection(date(2027, 1, 1), state="disconnected")
        self.assertFalse(gone.expiry_level)

    def test_the_days_are_counted_from_the_companys_today_not_the_servers(self):
        self.params.set_param(const.PARAM_REMINDER_DAYS, "20,5,2")
        # 12:00 UTC on 1 March is already 2 March on Kiritimati (UTC+14).
        self.env.company.partner_id.tz = "Pacific/Kiritimati"
        self.env.user.tz = "UTC"
        with freeze_time("2027-03-01 12:00:00"):
            connection = self.connection(date(2027, 3, 22))
            self.assertEqual(connection.days_left, 20)
            self.assertEqual(connection.expiry_level, "warning")
            connection = self.connection(date(2027, 3, 7))
            self.assertEqual(connection.days_left, 5)
            self.assertEqual(connection.expiry_level, "danger")

"""The unique keys of the module's models are enforced by PostgreSQL itself, on every Odoo
series: the exactly-once import rests on the one over (journal, Salt Edge transaction).

Each test writes a duplicate key with plain SQL, past the ORM, and expects the database to
refuse it under the constraint's name (``<table>_<key>``, the names databases installed
before kept). A missing or renamed constraint fails the test.
"""

from datetime import date

import psycopg2.errors

from odoo import fields
from odoo.tests import TransactionCase
from odoo.tools import SQL, mute_logger


class TestDatabaseConstraints(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.journal = cls.env["account.journal"].create(
            {"name": "Constraint Bank", "code": "CSTB", "type": "bank"}
        )
        cls.other_journal = cls.env["account.journal"].create(
            {"name": "Constraint Bank 2", "code": "CSTC", "type": "bank"}
        )
        Connection = cls.env["account.bank.connection"].sudo()
        cls.connection = Connection.create({"name": "Belfius"})
        cls.other_connection = Connection.create({"name": "KBC"})
        cls.connection.saltedge_connection_id = "conn-1"
        cls.other_connection.saltedge_connection_id = "conn-2"

    def assert_database_refuses(self, records, column, value, constraint):
        """Setting ``column`` of the last of ``records`` to ``value`` in SQL is refused by
        the unique constraint named ``<table>_<constraint>``."""
        self.env.flush_all()
        table = records._table
        with self.assertRaises(psycopg2.errors.UniqueViolation) as caught:
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                self.env.cr.execute(
                    SQL(
                        "UPDATE %s SET %s = %s WHERE id = %s",
                        SQL.identifier(table),
                        SQL.identifier(column),
                        value,
                        records[-1].id,
                    )
                )
        self.assertEqual(caught.exception.diag.constraint_name, f"{table}_{constraint}")

    def test_a_salt_edge_transaction_is_stored_once_per_journal(self):
        Line = self.env["account.bank.statement.line"]
        values = {"date": date(2026, 11, 2), "payment_ref": "Coffee", "amount": -3.5}
        lines = Line.create(
            [
                {**values, "journal_id": self.journal.id, "saltedge_transaction_id": "tx-1"},
                {**values, "journal_id": self.journal.id, "saltedge_transaction_id": "tx-2"},
            ]
        )
        self.assert_database_refuses(
            lines, "saltedge_transaction_id", "tx-1", "saltedge_transaction_unique"
        )

    def test_the_same_salt_edge_transaction_may_be_in_another_journal(self):
        """The key is the pair: the constraint does not refuse more than it should."""
        Line = self.env["account.bank.statement.line"]
        values = {"date": date(2026, 11, 2), "payment_ref": "Coffee", "amount": -3.5}
        Line.create({**values, "journal_id": self.journal.id, "saltedge_transaction_id": "tx-1"})
        Line.create(
            {**values, "journal_id": self.other_journal.id, "saltedge_transaction_id": "tx-1"}
        )
        self.env.flush_all()
        rows = self.env.execute_query(
            SQL(
                "SELECT journal_id FROM account_bank_statement_line "
                "WHERE saltedge_transaction_id = %s ORDER BY journal_id",
                "tx-1",
            )
        )
        self.assertEqual(rows, [(self.journal.id,), (self.other_journal.id,)])

    def test_a_salt_edge_connection_is_linked_once_per_company(self):
        self.assert_database_refuses(
            self.connection | self.other_connection,
            "saltedge_connection_id",
            "conn-1",
            "saltedge_connection_unique",
        )

    def test_a_salt_edge_account_is_listed_once_per_connection(self):
        accounts = self.env["account.bank.connection.account"].create(
            [
                {"connection_id": self.connection.id, "saltedge_account_id": "acc-1", "name": "A"},
                {"connection_id": self.connection.id, "saltedge_account_id": "acc-2", "name": "B"},
            ]
        )
        self.assert_database_refuses(
            accounts, "saltedge_account_id", "acc-1", "saltedge_account_unique"
        )

    def test_a_journal_is_linked_to_one_online_account(self):
        accounts = self.env["account.bank.connection.account"].create(
            [
                {
                    "connection_id": self.connection.id,
                    "saltedge_account_id": "acc-1",
                    "name": "A",
                    "journal_id": self.journal.id,
                },
                {
                    "connection_id": self.other_connection.id,
                    "saltedge_account_id": "acc-9",
                    "name": "B",
                    "journal_id": self.other_journal.id,
                },
            ]
        )
        self.assert_database_refuses(accounts, "journal_id", self.journal.id, "journal_unique")

    def test_a_credential_is_stored_once(self):
        credentials = self.env["account.bank.credential"].create(
            [{"key": "abc.test.one", "value": "1"}, {"key": "abc.test.two", "value": "2"}]
        )
        self.assert_database_refuses(credentials, "key", "abc.test.one", "key_unique")

    def test_a_provider_code_is_listed_once(self):
        values = {"country_code": "XF", "fetched_at": fields.Datetime.now()}
        providers = self.env["account.bank.provider"].create(
            [
                {**values, "code": "abc_test_one_xf", "name": "One"},
                {**values, "code": "abc_test_two_xf", "name": "Two"},
            ]
        )
        self.assert_database_refuses(providers, "code", "abc_test_one_xf", "code_unique")

    def test_a_callback_is_recorded_once(self):
        callbacks = self.env["account.bank.callback"].create(
            [{"fingerprint": "fp-1"}, {"fingerprint": "fp-2"}]
        )
        self.assert_database_refuses(callbacks, "fingerprint", "fp-1", "fingerprint_unique")

    def test_a_reminder_is_recorded_once_per_consent_and_threshold(self):
        values = {"connection_id": self.connection.id, "consent_id": "c-1", "sent_on": date.today()}
        reminders = self.env["account.bank.reminder"].create(
            [{**values, "threshold": 7}, {**values, "threshold": 3}]
        )
        self.assert_database_refuses(reminders, "threshold", 7, "threshold_once_per_consent")

"""Lines ready for reconciliation, imported from the sandbox's Belgian banks as a server
imports them: the structured communication in its canonical form, the partner found by the
counterparty's IBAN, Salt Edge's transaction in the line's details, and optional bank
statements whose balances are the bank's.
"""

from odoo.fields import Command

from ..saltedge_references import find_structured_communication
from ..saltedge_transactions import normalize_iban
from .common import (
    BELFIUS_CURRENT,
    INSTANT_FETCH,
    KBC_CURRENT,
    BankConnectionCase,
    ImportMixin,
    journal_balance,
)


class TestReconciliationReady(ImportMixin, BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Line = cls.env["account.bank.statement.line"]
        euro = cls.env.ref("base.EUR")
        euro.active = True
        (cls.kbc_journal | cls.belfius_journal).currency_id = euro

    def setUp(self):
        super().setUp()
        self.reset_sandbox()

    def counterparty_ibans(self, remote):
        """The counterparties' IBANs of the bank's transactions, with how often each."""
        seen = {}
        for transaction in remote:
            extra = transaction.get("extra") or {}
            side = "payer" if transaction["amount"] > 0 else "payee"
            for text in (extra.get(f"{side}_information"), extra.get("account_number")):
                iban = normalize_iban(text)
                if iban and iban != KBC_CURRENT and iban[:2].isalpha():
                    seen[iban] = seen.get(iban, 0) + 1
                    break
        return seen

    def partner_with_account(self, name, iban, **vals):
        return self.env["res.partner"].create(
            {"name": name, "bank_ids": [Command.create({"acc_number": iban})], **vals}
        )

    # --- the label -------------------------------------------------------------------

    def test_every_valid_structured_communication_is_on_its_line_once_in_canonical_form(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.import_now(connection, "first")
        remote = {str(t["id"]): t for t in self.remote_transactions(connection, account)}
        lines = self.imported(self.kbc_journal)
        self.assertEqual(len(lines), len(remote))
        found = only_in_extra = 0
        for line in lines:
            transaction = remote[line.saltedge_transaction_id]
            extra = transaction.get("extra") or {}
            texts = (
                transaction.get("description"),
                extra.get("information"),
                extra.get("additional"),
            )
            reference = find_structured_communication(*texts)
            if reference:
                found += 1
                only_in_extra += not find_structured_communication(texts[0])
                self.assertEqual(line.payment_ref.count(reference), 1, line.payment_ref)
            else:
                # Twelve digits whose check digits fail stay as written: no reference made.
                self.assertIsNone(find_structured_communication(line.payment_ref))
            self.assertIn((transaction.get("description") or "").strip(), line.payment_ref)
        self.assertGreater(found, 10)
        self.assertGreater(only_in_extra, 0, "references the bank sent only in extra")

    # --- the partner -----------------------------------------------------------------

    def test_the_partner_is_set_only_when_one_partner_has_the_iban(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        remote = self.remote_transactions(connection, account)
        counted = self.counterparty_ibans(remote)
        ibans = sorted(counted, key=lambda iban: (-counted[iban], iban))
        self.assertGreaterEqual(len(ibans), 3)
        unique, shared, unknown = ibans[:3]
        # A company whose contact person holds the account (written in lower case, with
        # spaces): the line's partner is the company.
        klant = self.env["res.partner"].create({"name": "Klant BV", "is_company": True})
        spaced = " ".join(unique[i : i + 4] for i in range(0, len(unique), 4)).lower()
        self.partner_with_account("Jan Klant", spaced, parent_id=klant.id)
        # Two unrelated partners share the second IBAN: no guess.
        self.partner_with_account("Eerste", shared)
        self.partner_with_account("Tweede", shared)
        # An archived partner's account and another company's partner do not count.
        self.partner_with_account("Gearchiveerd", unknown, active=False)
        other = self.env["res.company"].create({"name": "Andere NV"})
        self.partner_with_account("Van een ander", unknown, company_id=other.id)
        pages_before = len(self.sandbox_api_requests("GET", "/transactions"))
        with self.assertLogs("odoo.sql_db", "DEBUG") as queries:
            self.import_now(connection, "first")
        pages = len(self.sandbox_api_requests("GET", "/transactions")) - pages_before
        lookups = [line for line in queries.output if "FROM res_partner_bank bank" in line]
        lines = self.imported(self.kbc_journal)
        # One lookup for a page, however many lines it has.
        self.assertTrue(lookups)
        self.assertLessEqual(len(lookups), pages)
        self.assertGreater(len(lines), 5 * pages)
        by_iban = {}
        for line in lines:
            by_iban[line.account_number] = by_iban.get(line.account_number, self.Line) | line
        self.assertEqual(len(by_iban[unique]), counted[unique])
        self.assertEqual(by_iban[unique].partner_id, klant)
        self.assertFalse(by_iban[shared].partner_id)
        self.assertFalse(by_iban[unknown].partner_id)
        self.assertFalse((lines - by_iban[unique]).partner_id, "no other line guesses one")

    # --- the details -----------------------------------------------------------------

    def test_the_line_keeps_salt_edges_transaction_as_received(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        self.import_now(connection, "first")
        remote = {str(t["id"]): t for t in self.remote_transactions(connection, account)}
        lines = self.imported(self.kbc_journal)
        self.assertTrue(lines)
        for line in lines:
            transaction = remote[line.saltedge_transaction_id]
            details = line.transaction_details
            self.assertEqual(details["id"], transaction["id"])
            self.assertEqual(details["made_on"], transaction["made_on"])
            self.assertEqual(details["amount"], transaction["amount"])
            self.assertEqual(details["extra"], transaction.get("extra") or {})
        self.assertTrue(
            any(line.transaction_details["extra"].get("end_to_end_id") for line in lines)
        )

    # --- statements ------------------------------------------------------------------

    def assert_statements_chain(self, journal, account, connection):
        statements = self.env["account.bank.statement"].search(
            [("journal_id", "=", journal.id)], order="first_line_index"
        )
        self.assertTrue(statements)
        previous = None
        for statement in statements:
            if previous:
                self.assertAlmostEqual(statement.balance_start, previous.balance_end_real, places=2)
            self.assertTrue(statement.is_complete, statement.name)
            self.assertTrue(statement.is_valid, statement.name)
            previous = statement
        self.assertAlmostEqual(
            statements[-1].balance_end_real, self.remote_balance(connection, account), places=2
        )
        self.assertAlmostEqual(statements[-1].balance_end_real, journal_balance(journal), places=2)
        return statements

    def import_with_statements(self, period):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        connection.statement_period = period
        self.import_now(connection, "first")
        lines = self.imported(self.kbc_journal)
        self.assertTrue(lines)
        self.assertFalse(lines.filtered(lambda line: not line.statement_id))
        statements = self.assert_statements_chain(
            self.kbc_journal, connection.account_ids, connection
        )
        self.assertEqual(len(statements), len(set(statements.mapped("saltedge_period"))))
        for statement in statements:
            # Named as Odoo names them: the journal's code and the statement's date.
            self.assertTrue(statement.name.startswith(self.kbc_journal.code), statement.name)
        return lines, statements

    def test_a_statement_a_month_ending_on_the_banks_balance(self):
        lines, statements = self.import_with_statements("month")
        months = {line.date.strftime("%Y-%m") for line in lines}
        self.assertEqual(set(statements.mapped("saltedge_period")), months)
        for statement in statements:
            self.assertEqual(
                {line.date.strftime("%Y-%m") for line in statement.line_ids},
                {statement.saltedge_period},
            )

    def test_a_statement_a_week(self):
        lines, statements = self.import_with_statements("week")
        weeks = {"{}-W{:02d}".format(*line.date.isocalendar()[:2]) for line in lines}
        self.assertEqual(set(statements.mapped("saltedge_period")), weeks)

    def test_a_statement_a_day(self):
        lines, statements = self.import_with_statements("day")
        self.assertEqual(
            set(statements.mapped("saltedge_period")), {str(day) for day in lines.mapped("date")}
        )

    def test_lines_imported_before_statements_were_on_stay_as_they_are(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        self.import_now(connection, "first")
        before = self.imported(self.kbc_journal)
        connection.statement_period = "month"
        self.assertGreaterEqual(connection.statements_after_line_id, max(before.ids))
        # The bank books a few more transactions, which the next run brings.
        path = f"connections/{connection.saltedge_connection_id}/add_transactions"
        account = connection.account_ids
        self.sandbox_control(path, {"count": 5, "account_id": account.saltedge_account_id})
        self.import_now(connection)
        after = self.imported(self.kbc_journal) - before
        self.assertTrue(after)
        self.assertFalse(before.statement_id)
        self.assertFalse(after.filtered(lambda line: not line.statement_id))
        statements = self.assert_statements_chain(
            self.kbc_journal, connection.account_ids, connection
        )
        # The first statement starts on what the journal held before it.
        first = statements[0]
        held = sum(
            self.Line.search(
                [
                    ("journal_id", "=", self.kbc_journal.id),
                    ("internal_index", "<", first.first_line_index),
                ]
            ).mapped("amount")
        )
        self.assertAlmostEqual(first.balance_start, held, places=2)

    def test_a_banks_balance_snapshot_ends_each_statement(self):
        belfius = self.connected(
            "belfius_sandbox_be", journal=self.belfius_journal, account_ibans=[BELFIUS_CURRENT]
        )
        belfius.statement_period = "week"
        self.import_now(belfius, "first")
        statements = self.assert_statements_chain(
            self.belfius_journal, belfius.account_ids, belfius
        )
        remote = {str(t["id"]): t for t in self.remote_transactions(belfius, belfius.account_ids)}
        snapshots = 0
        for statement in statements:
            last = statement.line_ids.sorted("internal_index")[-1]
            snapshot = (remote[last.saltedge_transaction_id].get("extra") or {}).get(
                "account_balance_snapshot"
            )
            if snapshot is not None:
                snapshots += 1
                self.assertAlmostEqual(statement.balance_end_real, snapshot, places=2)
        self.assertTrue(snapshots)

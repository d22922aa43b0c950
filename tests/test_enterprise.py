"""Next to Odoo's Enterprise accounting (19.0): one connector per journal, Bank Feeds says
ours, Enterprise's automatic reconciliation right after our import, and a bank file that
does not double our lines.

These tests need the Enterprise modules installed with the addon: the separate pass
``ODOO_EDITION=enterprise ODOO_VERSION=19.0 make test`` does that and runs only them.
Anywhere else every test here is skipped, saying why. Nothing of Enterprise is imported:
its models are reached through the registry.
"""

import datetime
import json

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models import const
from ..saltedge_references import find_structured_communication
from .common import (
    INSTANT_FETCH,
    KBC_CURRENT,
    BankConnectionCase,
    ImportMixin,
    skip_without_enterprise,
)


def camt_053(iban, entries, opening=1000.0, statement_id="ABC-CAMT-1"):
    """A CAMT.053 statement of ``iban`` in EUR with ``entries`` [(date, amount, text)]."""
    closing = round(opening + sum(amount for _day, amount, _text in entries), 2)
    first = min(day for day, _amount, _text in entries)
    last = max(day for day, _amount, _text in entries)

    def balance(code, amount, day):
        side = "CRDT" if amount >= 0 else "DBIT"
        return (
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="EUR">{abs(amount):.2f}</Amt><CdtDbtInd>{side}</CdtDbtInd>'
            f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>"
        )

    rows = []
    for number, (day, amount, text) in enumerate(entries, start=1):
        side = "CRDT" if amount >= 0 else "DBIT"
        rows.append(
            f'<Ntry><NtryRef>{number}</NtryRef><Amt Ccy="EUR">{abs(amount):.2f}</Amt>'
            f"<CdtDbtInd>{side}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{day.isoformat()}</Dt></BookgDt>"
            f"<ValDt><Dt>{day.isoformat()}</Dt></ValDt>"
            f"<AcctSvcrRef>{statement_id}-{number}</AcctSvcrRef>"
            "<BkTxCd><Prtry><Cd>ABCD</Cd></Prtry></BkTxCd>"
            f"<NtryDtls><TxDtls><Refs><AcctSvcrRef>{statement_id}-{number}</AcctSvcrRef></Refs>"
            f"<RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{statement_id}</MsgId><CreDtTm>{last.isoformat()}T18:00:00</CreDtTm>"
        f"</GrpHdr><Stmt><Id>{statement_id}</Id><CreDtTm>{last.isoformat()}T18:00:00</CreDtTm>"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        + balance("OPBD", opening, first - datetime.timedelta(days=1))
        + balance("CLBD", closing, last)
        + "".join(rows)
        + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


@tagged("abc_enterprise")
class TestNextToEnterprise(ImportMixin, BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        skip_without_enterprise(cls.env)
        cls.Line = cls.env["account.bank.statement.line"]
        euro = cls.env.ref("base.EUR")
        euro.active = True
        (cls.kbc_journal | cls.belfius_journal).currency_id = euro

    def setUp(self):
        super().setUp()
        self.reset_sandbox()

    def odoo_linked_journal(self, name="ING Zichtrekening", code="INGT"):
        """A bank journal that Odoo's own bank synchronization links (as its tests make
        one: a link and an online account, no call to Odoo's proxy)."""
        journal = self._bank_journal(name, code, "BE68539007547034")
        link = self.env["account.online.link"].create(
            {"name": "ING (Odoo)", "client_id": "client", "refresh_token": "token"}
        )
        self.env["account.online.account"].create(
            {
                "name": "ING current",
                "account_online_link_id": link.id,
                "journal_ids": [Command.set(journal.ids)],
            }
        )
        return journal, link

    # --- install -----------------------------------------------------------------------

    def test_no_field_of_ours_on_a_journal_shares_its_label_with_another(self):
        """Odoo warns at install about two fields of a model with one label; ours say whose
        state they are (make test's install check fails on any warning of ours)."""
        Journal = self.env["account.journal"]
        labels = {}
        for name, field in Journal._fields.items():
            labels.setdefault(field.string, []).append(name)
        ours = [name for name in Journal._fields if name.startswith("bank_conn")]
        self.assertIn("bank_connection_state", ours)
        for name in ours:
            self.assertEqual(
                labels[Journal._fields[name].string],
                [name],
                f"{name} shares its label {Journal._fields[name].string!r}",
            )
        self.assertNotEqual(
            Journal._fields["bank_connection_state"].string,
            Journal._fields["account_online_link_state"].string,
        )

    # --- one connector per journal -------------------------------------------------------

    def test_our_connect_is_refused_on_a_journal_odoos_synchronization_links(self):
        journal, link = self.odoo_linked_journal()
        self.assertIn(link.name, journal.bank_connect_refusal)
        with self.assertRaises(UserError) as caught:
            journal.action_bank_connect()
        self.assertIn("Odoo's bank synchronization", str(caught.exception))
        self.assertIn(link.name, str(caught.exception))
        # An account of ours is not linked to it by its IBAN either, nor by hand.
        connection = self.connected(account_ibans=[KBC_CURRENT])
        with self.assertRaises(UserError) as caught:
            connection.account_ids[:1].journal_id = journal
        self.assertIn(link.name, str(caught.exception))
        self.assertFalse(journal.bank_connection_id)

    def test_odoos_synchronization_cannot_link_a_journal_we_feed(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        journal = self.kbc_journal
        self.assertEqual(journal.bank_connection_id, connection)
        link = self.env["account.online.link"].create({"name": "KBC (Odoo)"})
        with self.assertRaises(UserError) as caught:
            self.env["account.online.account"].create(
                {
                    "name": "KBC current",
                    "account_online_link_id": link.id,
                    "journal_ids": [Command.set(journal.ids)],
                }
            )
        self.assertIn(connection.display_name, str(caught.exception))
        self.assertIn("Salt Edge", str(caught.exception))
        # Its connect is not offered on the card of a journal we feed; it still is on an
        # unlinked journal's card.
        dashboard = json.loads(journal.kanban_dashboard)
        self.assertIs(dashboard["display_connect_bank_in_dashboard"], False)
        self.assertTrue(
            json.loads(self.belfius_journal.kanban_dashboard)["display_connect_bank_in_dashboard"]
        )

    def test_bank_feeds_says_ours_while_we_feed_the_journal_and_comes_back_after(self):
        journal = self.kbc_journal
        journal.bank_statements_source = "file_import"
        connection = self.connected(account_ibans=[KBC_CURRENT])
        self.assertEqual(journal.bank_statements_source, const.JOURNAL_SOURCE)
        # Enterprise's scheduled synchronization and its views leave it alone.
        self.assertNotIn(
            journal,
            self.env["account.journal"].search([("bank_statements_source", "=", "online_sync")]),
        )
        # A file import sets its own source meanwhile: it is what comes back.
        journal.sudo().bank_statements_source = "undefined"
        self.assertEqual(journal.bank_statements_source, const.JOURNAL_SOURCE)
        connection.action_disconnect()
        self.assertFalse(journal.bank_connection_id)
        self.assertEqual(journal.bank_statements_source, "undefined")

    def test_one_set_of_renewal_reminders_per_journal(self):
        """Each connector reminds only the journals it links: our journal gets our
        reminder only, and the journal Odoo's synchronization links gets none of ours."""
        connection = self.connected(account_ibans=[KBC_CURRENT])
        odoo_journal, link = self.odoo_linked_journal()
        today = datetime.date.today()
        connection.sudo().connected_until = today + datetime.timedelta(days=15)
        link.sudo().expiring_synchronization_date = today + datetime.timedelta(days=15)
        self.env["account.journal"]._cron_send_reminder_email()
        self.env["account.bank.connection"]._cron_send_renewal_reminders()
        renewal = self.env.ref("account_online_synchronization.bank_sync_consent_renewal")
        odoo_reminders = self.env["mail.message"].search(
            [("model", "=", "account.journal"), ("subtype_id", "=", renewal.id)]
        )
        self.assertEqual(odoo_reminders.mapped("res_id"), odoo_journal.ids)
        self.assertEqual(len(connection.reminder_ids), 1)
        self.assertEqual(connection.journal_ids, self.kbc_journal)

    # --- Enterprise's reconciliation right after the import ------------------------------

    def test_an_invoice_paid_with_its_structured_reference_is_reconciled_by_the_import(self):
        company = self.env.company
        if not company.chart_template:
            self.env["account.chart.template"].try_loading("generic_coa", company, False)
        connection = self.connected(account_ibans=[KBC_CURRENT])
        account = connection.account_ids
        payment = next(
            transaction
            for transaction in self.remote_transactions(connection, account)
            if transaction["amount"] > 0
            and find_structured_communication(
                " ".join(
                    str(value or "")
                    for value in (
                        transaction.get("description"),
                        (transaction.get("extra") or {}).get("information"),
                        (transaction.get("extra") or {}).get("additional"),
                    )
                )
            )
        )
        reference = find_structured_communication(
            " ".join(
                str(value or "")
                for value in (
                    payment.get("description"),
                    (payment.get("extra") or {}).get("information"),
                    (payment.get("extra") or {}).get("additional"),
                )
            )
        )
        customer = self.env["res.partner"].create({"name": "Klant met referentie"})
        made_on = datetime.date.fromisoformat(payment["made_on"])
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": customer.id,
                "currency_id": self.env.ref("base.EUR").id,
                "invoice_date": made_on - datetime.timedelta(days=14),
                "payment_reference": reference,
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Advies",
                            "quantity": 1,
                            "price_unit": payment["amount"],
                            "tax_ids": [Command.clear()],
                        }
                    )
                ],
            }
        )
        invoice.action_post()
        self.assertEqual(invoice.payment_state, "not_paid")

        self.import_now(connection, "first")

        line = self.Line.search([("saltedge_transaction_id", "=", str(payment["id"]))])
        self.assertEqual(len(line), 1)
        self.assertTrue(line.is_reconciled, "reconciled by the import, nobody clicked")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        # Every line of the run was looked at by the reconciliation, matched or not.
        self.assertFalse(
            self.imported(self.kbc_journal).filtered(
                lambda line: not line.is_reconciled and not line.cron_last_check
            )
        )

    # --- a bank file into a journal we feed --------------------------------------------

    def test_a_camt_file_does_not_double_the_lines_we_imported(self):
        connection = self.connected(account_ibans=[KBC_CURRENT])
        self.import_now(connection, "first")
        ours = self.imported(self.kbc_journal).sorted(lambda line: (line.date, line.id))
        self.assertGreater(len(ours), 3)
        first, second, third = ours[:3]
        new_day = ours[0].date - datetime.timedelta(days=40)
        entries = [
            (first.date, first.amount, "first"),
            (second.date, second.amount, "second"),
            (third.date, third.amount, "third"),
            # The same payment twice on one day in the file, once in ours: one is new.
            (third.date, third.amount, "third again"),
            # A day the connection never imported.
            (new_day, 123.45, "older than the connection"),
        ]
        attachment = self.env["ir.attachment"].create(
            {"name": "kbc.camt.xml", "raw": camt_053(KBC_CURRENT, entries)}
        )
        before = len(self.Line.search([("journal_id", "=", self.kbc_journal.id)]))

        self.kbc_journal.with_context(skip_pdf_attachment_generation=True)._import_bank_statement(
            attachment
        )

        after = self.Line.search([("journal_id", "=", self.kbc_journal.id)])
        self.assertEqual(len(after), before + 2, "only the line of the new day and the extra one")
        self.assertEqual(len(after.filtered(lambda line: line.date == new_day)), 1)
        self.assertEqual(
            len(
                after.filtered(lambda line: line.date == third.date and line.amount == third.amount)
            ),
            2,
        )
        # Ours carry the file's ids now, and sit in the file's statement with the new ones.
        self.assertTrue(all((first | second | third).mapped("unique_import_id")))
        statement = (first | second | third).statement_id
        self.assertEqual(len(statement), 1)
        self.assertEqual(len(statement.line_ids), 5)
        self.assertTrue(statement.is_complete)
        self.assertTrue(
            self.messages_of(connection, "3 transactions of"),
            "the import said how many it left out",
        )
        # The same file again: Odoo's own check knows every line of it now.
        again = self.env["ir.attachment"].create(
            {"name": "kbc.camt.xml", "raw": camt_053(KBC_CURRENT, entries)}
        )
        with self.assertRaises(UserError):
            self.kbc_journal.with_context(
                skip_pdf_attachment_generation=True
            )._import_bank_statement(again)
        lines = self.Line.search([("journal_id", "=", self.kbc_journal.id)])
        self.assertEqual(len(lines), len(after))

    def test_a_bank_files_statement_leaves_out_the_lines_we_imported(self):
        """Every statement import (Enterprise's CODA, CAMT, CSV and CodaBox, OCA's file
        imports) creates its statement with the file's lines, each with its
        ``unique_import_id`` (a field those modules add): here in that shape. The lines we imported
        are left out, counted (two equal payments in the file, one of ours: one is new),
        and join the file's statement; a day we never imported is created."""
        connection = self.connected(account_ibans=[KBC_CURRENT])
        self.import_now(connection, "first")
        journal = self.kbc_journal
        ours = self.imported(journal).sorted(lambda line: (line.date, line.id))
        first, second = ours[:2]
        older = first.date - datetime.timedelta(days=30)
        file_lines = [
            (first.date, first.amount),
            (second.date, second.amount),
            (second.date, second.amount),
            (older, 42.0),
        ]
        before = self.Line.search_count([("journal_id", "=", journal.id)])
        statement = self.env["account.bank.statement"].create(
            {
                "name": "CODA 001",
                "reference": "kbc-001.coda",
                "journal_id": journal.id,
                "line_ids": [
                    Command.create(
                        {
                            "journal_id": journal.id,
                            "date": day,
                            "amount": amount,
                            "payment_ref": f"file line {number}",
                            "unique_import_id": f"BE73735012345660-{journal.id}-{number}",
                        }
                    )
                    for number, (day, amount) in enumerate(file_lines, start=1)
                ],
            }
        )
        self.assertEqual(
            self.Line.search_count([("journal_id", "=", journal.id)]),
            before + 2,
            "the second payment of that day and the older day's are new",
        )
        self.assertEqual(len(statement.line_ids), 4)
        self.assertEqual(first.statement_id, statement)
        self.assertEqual(second.statement_id, statement)
        self.assertEqual(first.unique_import_id, f"BE73735012345660-{journal.id}-1")
        self.assertEqual(second.unique_import_id, f"BE73735012345660-{journal.id}-2")
        self.assertTrue(self.messages_of(connection, "2 transactions of kbc-001.coda"))
        # A file of the days we imported and nothing else: only ours in its statement.
        third = ours[2]
        again = self.env["account.bank.statement"].create(
            {
                "name": "CODA 002",
                "journal_id": journal.id,
                "line_ids": [
                    Command.create(
                        {
                            "journal_id": journal.id,
                            "date": third.date,
                            "amount": third.amount,
                            "payment_ref": "file line",
                            "unique_import_id": f"BE73735012345660-{journal.id}-9",
                        }
                    )
                ],
            }
        )
        self.assertEqual(again.line_ids, third)
        self.assertEqual(self.Line.search_count([("journal_id", "=", journal.id)]), before + 2)

"""The Accounting dashboard next to Odoo's Enterprise accounting, in headless Chromium: our
Connect bank on every bank journal no connector links (a new empty one too, where
Enterprise shows its own bank widget instead of the card's buttons), the refusal on a
journal Odoo's synchronization links, and Connected until on a journal we feed that has
no line yet. Run by the Enterprise pass only; skipped elsewhere."""

import datetime

from odoo import Command
from odoo.tests import HttpCase, tagged

from .common import skip_without_enterprise

CHECK_CARDS = """
(async () => {
    const card = (name) => [...document.querySelectorAll('.o_kanban_record')]
        .find((c) => c.textContent.includes(name));
    const until = async (check, what) => {
        for (let i = 0; i < 300; i++) {
            const value = check();
            if (value) return value;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
        throw new Error('Timed out waiting for ' + what);
    };
    const fresh = await until(
        () => card('Nieuwe bank')?.querySelector('.bank_configure_container')
            && card('Nieuwe bank'),
        "Enterprise's bank widget on the new empty journal's card",
    );
    if (!fresh.querySelector('button.o_bank_connect')) {
        throw new Error('No Connect bank next to Enterprise\\'s widget on the new journal');
    }
    const odoo = card('ING Zichtrekening');
    if (odoo.querySelector('.o_bank_connect')) {
        throw new Error('Connect bank offered on a journal Odoo\\'s synchronization links');
    }
    const refused = odoo.querySelector('.o_bank_connect_refused');
    if (!refused || !refused.title.includes('ING (Odoo)')) {
        throw new Error('No refusal naming the link on the ING card');
    }
    const ours = card('KBC Zichtrekening');
    const status = ours.querySelector('.o_bank_connection_status');
    if (!status || !status.textContent.includes('Connected until')) {
        throw new Error('No Connected until on the empty journal we feed');
    }
    if (ours.querySelector('.bank_configure_container')) {
        throw new Error('Enterprise\\'s bank widget on a journal we feed');
    }
    console.log('test successful');
})().catch((error) => console.error(error.message));
"""


@tagged("post_install", "-at_install", "abc_enterprise_dashboard")
class TestDashboardNextToEnterprise(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        skip_without_enterprise(cls.env)

    def test_connect_bank_on_every_unlinked_card_and_refused_on_a_linked_one(self):
        Journal = self.env["account.journal"]
        Journal.create({"name": "Nieuwe bank", "code": "NIEU", "type": "bank"})
        ing = Journal.create(
            {
                "name": "ING Zichtrekening",
                "code": "INGZ",
                "type": "bank",
                "bank_acc_number": "BE68539007547034",
            }
        )
        link = self.env["account.online.link"].create({"name": "ING (Odoo)"})
        self.env["account.online.account"].create(
            {
                "name": "ING current",
                "account_online_link_id": link.id,
                "journal_ids": [Command.set(ing.ids)],
            }
        )
        kbc = Journal.create(
            {
                "name": "KBC Zichtrekening",
                "code": "KBCZ",
                "type": "bank",
                "bank_acc_number": "BE73735012345660",
            }
        )
        connection = (
            self.env["account.bank.connection"]
            .sudo()
            .create(
                {
                    "name": "KBC",
                    "state": "connected",
                    "connected_until": datetime.date.today() + datetime.timedelta(days=90),
                }
            )
        )
        kbc.bank_connection_id = connection
        self.assertFalse(
            self.env["account.bank.statement.line"].search_count(
                [("journal_id", "in", (kbc | ing).ids)]
            )
        )
        self.browser_js(
            "/odoo/action-account.open_account_journal_dashboard_kanban",
            CHECK_CARDS,
            ready="!!document.querySelector('.o_kanban_record')",
            login="admin",
            timeout=120,
        )

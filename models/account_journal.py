import json

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL
from odoo.tools.misc import format_date

from ..saltedge_client import SaltEdgeError
from . import const


class AccountJournal(models.Model):
    _inherit = "account.journal"

    bank_connection_id = fields.Many2one(
        "account.bank.connection",
        string="Bank connection",
        copy=False,
        index="btree_not_null",
        check_company=True,
    )
    # Labelled as ours: Enterprise's bank synchronization has its own "State" on journals.
    bank_connection_state = fields.Selection(
        related="bank_connection_id.state", string="Bank connection state (Salt Edge)"
    )
    bank_connected_until = fields.Date(
        related="bank_connection_id.connected_until", string="Connected until"
    )
    bank_connection_last_sync = fields.Datetime(
        related="bank_connection_id.last_sync", string="Last bank update"
    )
    bank_connected_until_label = fields.Char(compute="_compute_bank_connection_display")
    bank_connection_level = fields.Selection(related="bank_connection_id.expiry_level")
    bank_connection_previous_source = fields.Char(
        string="Bank feeds before the bank connection",
        copy=False,
        readonly=True,
        help="What Bank Feeds said before a bank connection fed this journal: put back when "
        "it is disconnected.",
    )
    bank_connect_refusal = fields.Char(
        string="Linked by another connector",
        compute="_compute_bank_connect_refusal",
        help="Why Connect bank is refused here: another connector links this journal.",
    )

    def __get_bank_statements_available_sources(self):
        # Name-mangled like account's own (and Enterprise's): the selection of Bank Feeds.
        return [
            *super().__get_bank_statements_available_sources(),
            (const.JOURNAL_SOURCE, self.env._("Salt Edge bank connection")),
        ]

    def init(self):
        """Journals linked before their source said so get it now (the previous value is
        kept, to be put back at disconnect)."""
        result = super().init()
        self.env.execute_query(
            SQL(
                "UPDATE account_journal SET bank_connection_previous_source = "
                "bank_statements_source, bank_statements_source = %s "
                "WHERE bank_connection_id IS NOT NULL "
                "AND bank_statements_source IS DISTINCT FROM %s",
                const.JOURNAL_SOURCE,
                const.JOURNAL_SOURCE,
            )
        )
        return result

    def _compute_bank_connect_refusal(self):
        """Odoo's own bank synchronization (Enterprise) links the journal: one connector per
        journal. The field is looked up by name, so Community never needs it."""
        linked_by_odoo = const.ODOO_SYNC_FIELD in self._fields
        for journal in self:
            account = linked_by_odoo and journal[const.ODOO_SYNC_FIELD]
            # Named by its link (the bank, as Enterprise shows it), else by its account.
            link = account and (account.account_online_link_id or account)
            journal.bank_connect_refusal = (
                self.env._(
                    "This journal is linked to its bank by Odoo's bank synchronization "
                    "(%(link)s). Disconnect it there before connecting it through Salt Edge.",
                    link=link.display_name,
                )
                if link
                else False
            )

    def _bank_linked_by_us_sentence(self):
        return self.env._(
            "This journal is linked to its bank by the Salt Edge bank connection "
            "%(connection)s. Disconnect it there before linking it to Odoo's bank "
            "synchronization.",
            connection=self.bank_connection_id.display_name,
        )

    @api.model_create_multi
    def create(self, vals_list):
        """A journal created linked to a connection is fed by it from the start (see
        ``write``)."""
        for vals in vals_list:
            if vals.get("bank_connection_id"):
                if vals.get(const.ODOO_SYNC_FIELD):
                    raise UserError(
                        self.env._("A journal is linked to its bank by one connector only.")
                    )
                previous = vals.get("bank_statements_source")
                vals["bank_statements_source"] = const.JOURNAL_SOURCE
                vals["bank_connection_previous_source"] = (
                    previous if previous != const.JOURNAL_SOURCE else False
                )
        return super().create(vals_list)

    def write(self, vals):
        """One connector per journal, and Bank Feeds says ours while we feed the journal.

        Linking another connector (Enterprise's bank synchronization sets its account on
        the journal) is refused on a journal we feed, and ours on a journal it links. A
        journal we start to feed keeps its former Bank Feeds value, put back when it is
        unlinked; a value written meanwhile (a file import sets its own) becomes the one to
        put back."""
        if vals.get(const.ODOO_SYNC_FIELD):
            for journal in self.filtered("bank_connection_id"):
                raise UserError(journal._bank_linked_by_us_sentence())
        if "bank_connection_id" not in vals and "bank_statements_source" not in vals:
            return super().write(vals)
        for journal in self:
            super(AccountJournal, journal).write(journal._bank_source_vals(vals))
        return True

    def _bank_source_vals(self, vals):
        """``vals`` as written on this journal: the Bank Feeds value follows our link."""
        vals = dict(vals)
        before = self.bank_connection_id
        after = bool(vals["bank_connection_id"]) if "bank_connection_id" in vals else bool(before)
        written = vals.get("bank_statements_source")
        if after and not before:
            if self.bank_connect_refusal:
                raise UserError(self.bank_connect_refusal)
            previous = written or self.bank_statements_source
            vals["bank_statements_source"] = const.JOURNAL_SOURCE
            vals["bank_connection_previous_source"] = (
                previous if previous != const.JOURNAL_SOURCE else False
            )
        elif after:
            if written and written != const.JOURNAL_SOURCE:
                vals["bank_statements_source"] = const.JOURNAL_SOURCE
                vals["bank_connection_previous_source"] = written
        elif before:
            sources = dict(self._get_bank_statements_available_sources())
            previous = self.bank_connection_previous_source
            if not written or written == const.JOURNAL_SOURCE:
                vals["bank_statements_source"] = (
                    previous
                    if previous in sources and previous != const.JOURNAL_SOURCE
                    else "undefined"
                )
            vals["bank_connection_previous_source"] = False
        return vals

    def _kanban_dashboard(self):
        """A journal we feed offers no other connector's connect on its card: Enterprise's
        bank synchronization reads ``display_connect_bank_in_dashboard`` (absent on
        Community, where nothing changes)."""
        result = super()._kanban_dashboard()
        for journal in self.filtered("bank_connection_id"):
            data = json.loads(journal.kanban_dashboard or "{}")
            if data.get("display_connect_bank_in_dashboard"):
                data["display_connect_bank_in_dashboard"] = False
                journal.kanban_dashboard = json.dumps(data)
        return result

    @api.depends("bank_connection_id.connected_until")
    @api.depends_context("lang")
    def _compute_bank_connection_display(self):
        for journal in self:
            until = journal.bank_connection_id.connected_until
            journal.bank_connected_until_label = (
                format_date(self.env, until, date_format="d MMM y") if until else False
            )

    def action_bank_connect(self):
        """Bank verbinden: open the bank picker for this journal."""
        self.ensure_one()
        self.env["account.bank.connection"]._check_manager()
        if self.type != "bank":
            raise UserError(self.env._("Only bank journals can be connected to a bank."))
        if self.bank_connect_refusal:
            raise UserError(self.bank_connect_refusal)
        params = self.env["ir.config_parameter"].sudo()
        include_sandboxes = bool(params.get_param(const.PARAM_INCLUDE_SANDBOXES))
        country = self.company_id.country_id.code or "BE"
        try:
            self.env["account.bank.provider"]._refresh_country(country, include_sandboxes)
        except SaltEdgeError as error:
            raise self.env["account.bank.connection"]._saltedge_user_error(error) from None
        countries = [country] + ([const.SANDBOX_COUNTRY] if include_sandboxes else [])
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Connect a bank"),
            "res_model": "account.bank.provider",
            "view_mode": "kanban",
            "views": [
                (
                    self.env.ref("account_bank_connection.account_bank_provider_view_kanban").id,
                    "kanban",
                )
            ],
            "search_view_id": self.env.ref(
                "account_bank_connection.account_bank_provider_view_search"
            ).id,
            "domain": [("country_code", "in", countries)],
            "target": "new",
            "context": {"bank_connect_journal_id": self.id, "create": False},
        }

    def action_bank_fetch(self):
        """Fetch transactions of this journal's bank now (dashboard card, journal form)."""
        self.ensure_one()
        if not self.bank_connection_id:
            raise UserError(self.env._("This journal is not connected to a bank."))
        return self.bank_connection_id.action_fetch_transactions()

    def action_bank_renew(self):
        self.ensure_one()
        return self.bank_connection_id.action_renew()

    def action_open_bank_connection(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.bank.connection",
            "res_id": self.bank_connection_id.id,
            "view_mode": "form",
        }

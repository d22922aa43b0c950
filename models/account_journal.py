from odoo import api, fields, models
from odoo.exceptions import UserError
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
    bank_connection_state = fields.Selection(related="bank_connection_id.state")
    bank_connected_until = fields.Date(
        related="bank_connection_id.connected_until", string="Connected until"
    )
    bank_connection_last_sync = fields.Datetime(
        related="bank_connection_id.last_sync", string="Last bank update"
    )
    bank_connected_until_label = fields.Char(compute="_compute_bank_connection_display")
    bank_connection_level = fields.Selection(related="bank_connection_id.expiry_level")

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

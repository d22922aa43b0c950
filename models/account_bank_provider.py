from datetime import timedelta

from odoo import api, fields, models

from ..odoo_series import Constraint
from . import const


class AccountBankProvider(models.Model):
    """A bank Salt Edge can connect to, kept for a day so the bank picker opens fast."""

    _name = "account.bank.provider"
    _description = "Bank Provider (Salt Edge)"
    _order = "country_code, name"

    code = fields.Char(required=True, index=True)
    name = fields.Char(required=True)
    country_code = fields.Char(required=True, index=True)
    logo_url = fields.Char()
    status = fields.Char()
    max_consent_days = fields.Integer()
    is_sandbox = fields.Boolean()
    fetched_at = fields.Datetime(required=True)

    _code_unique = Constraint(
        "unique(code)",
        "A provider code is listed once.",
    )

    @api.model
    def _refresh_country(self, country_code, include_sandboxes=False, force=False):
        """Make sure the providers of ``country_code`` (and XF, Salt Edge's fake banks, when
        sandboxes are included) are at most a day old, asking Salt Edge when they are not."""
        countries = [country_code] + ([const.SANDBOX_COUNTRY] if include_sandboxes else [])
        fresh_after = fields.Datetime.now() - timedelta(seconds=const.PROVIDER_CACHE_SECONDS)
        for code in countries:
            known = self.sudo().search([("country_code", "=", code)])
            if known and not force and min(known.mapped("fetched_at")) > fresh_after:
                continue
            client = self.env["account.bank.connection"]._saltedge_client(interactive=True)
            now = fields.Datetime.now()
            by_code = {provider.code: provider for provider in known}
            seen = set()
            for item in client.list_providers(
                country_code=code, include_sandboxes=include_sandboxes
            ):
                vals = {
                    "code": item["code"],
                    "name": item.get("name") or item["code"],
                    "country_code": item.get("country_code") or code,
                    "logo_url": item.get("logo_url"),
                    "status": item.get("status"),
                    "max_consent_days": item.get("max_consent_days") or 0,
                    # Salt Edge's fake banks are the ones of the fake country XF.
                    "is_sandbox": (item.get("country_code") or code) == const.SANDBOX_COUNTRY,
                    "fetched_at": now,
                }
                seen.add(item["code"])
                if item["code"] in by_code:
                    by_code[item["code"]].write(vals)
                else:
                    existing = self.sudo().search([("code", "=", item["code"])])
                    if existing:
                        existing.write(vals)
                    else:
                        self.sudo().create(vals)
            known.filtered(lambda p, seen=seen: p.code not in seen).unlink()

    def action_connect(self):
        """Verbinden: start a connect session at Salt Edge for this bank and send the browser
        to Salt Edge's screens. The journal comes from the picker's context."""
        self.ensure_one()
        journal = (
            self.env["account.journal"]
            .browse(self.env.context.get("bank_connect_journal_id"))
            .exists()
        )
        company = journal.company_id or self.env.company
        return self.env["account.bank.connection"]._saltedge_start_connect(
            company, self.code, journal=journal
        )

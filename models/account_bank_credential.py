from odoo import api, fields, models
from odoo.tools import SQL

from ..odoo_series import Constraint
from . import const

# The credentials kept here, by their old parameter names.
CREDENTIAL_KEYS = (const.PARAM_SECRET, const.PARAM_PRIVATE_KEY)


class AccountBankCredential(models.Model):
    """The Salt Edge Secret and the app's private key.

    Not system parameters: system administrators read those in the browser (Settings ›
    Technical › Parameters). No user may read or write this model (its access row grants
    nothing); the module's own code reads it as superuser, the settings write it, and
    neither value ever goes to a browser.
    """

    _name = "account.bank.credential"
    _description = "Salt Edge Credential"

    key = fields.Char(required=True, index=True)
    value = fields.Text()

    _key_unique = Constraint(
        "unique(key)",
        "A credential is stored once.",
    )

    def init(self):
        """Databases that kept the credentials as system parameters move them here."""
        self.env.execute_query(
            SQL(
                "INSERT INTO account_bank_credential (key, value) "
                "SELECT key, value FROM ir_config_parameter WHERE key IN %s "
                "ON CONFLICT (key) DO NOTHING",
                CREDENTIAL_KEYS,
            )
        )
        self.env.execute_query(
            SQL("DELETE FROM ir_config_parameter WHERE key IN %s", CREDENTIAL_KEYS)
        )

    @api.model
    def _get(self, key):
        """The value of ``key`` (one of CREDENTIAL_KEYS), or False."""
        return self._get_all(key)[key]

    @api.model
    def _get_all(self, *keys):
        """{key: value or False} for ``keys``, in one query (the client of every import
        run needs both)."""
        self.flush_model(["key", "value"])
        values = dict(
            self.env.execute_query(
                SQL("SELECT key, value FROM account_bank_credential WHERE key IN %s", keys)
            )
        )
        return {key: values.get(key) or False for key in keys}

    @api.model
    def _set(self, key, value):
        """Store ``value`` for ``key``; an empty value removes it."""
        record = self.sudo().search([("key", "=", key)], limit=1)
        if not value:
            record.unlink()
        elif record:
            record.value = value
        else:
            self.sudo().create({"key": key, "value": value})

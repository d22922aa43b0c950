"""Install and uninstall hooks."""

from .models import const


def uninstall_hook(env):
    """Uninstalling removes the Salt Edge credentials (App id, Secret, private key) and every
    other setting of the module: nothing of them stays behind in the database."""
    params = env["ir.config_parameter"].sudo().search([("key", "=like", const.PARAM_PREFIX + "%")])
    params.filtered(lambda param: param.key.startswith(const.PARAM_PREFIX)).unlink()
    # Odoo drops the credentials' table with the model; emptied first all the same.
    env["account.bank.credential"].sudo().search([]).unlink()

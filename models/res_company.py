from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    saltedge_customer_id = fields.Char(
        string="Salt Edge customer ID",
        copy=False,
        readonly=True,
        groups="base.group_system",
        help="The Salt Edge customer that owns this company's bank connections. "
        "Created on the first connection.",
    )

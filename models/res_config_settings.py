from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..odoo_series import field_is_readable
from ..saltedge_client import DEFAULT_BASE_URL
from . import const
from .utils import parse_reminder_days

# The settings' fields of the credentials typed in, and their keys in
# account.bank.credential.
TYPED_CREDENTIALS = (
    ("saltedge_secret", const.PARAM_SECRET),
    ("saltedge_private_key", const.PARAM_PRIVATE_KEY),
)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    saltedge_base_url = fields.Char(
        string="Salt Edge API URL",
        config_parameter=const.PARAM_BASE_URL,
        default=DEFAULT_BASE_URL,
        groups="base.group_system",
    )
    saltedge_app_id = fields.Char(
        string="Salt Edge App ID", config_parameter=const.PARAM_APP_ID, groups="base.group_system"
    )
    # Write-only: never read from the database into the form (so never sent to a browser,
    # an administrator's included); a value typed here replaces the stored one on save.
    # Stored only from the form's save to its ``execute`` (two requests: a field that is
    # not stored would be gone by then), which copies it to account.bank.credential and
    # clears the column (see _clear_typed_credentials).
    saltedge_secret = fields.Char(
        string="New Salt Edge Secret",
        groups="base.group_system",
        help="Type the Secret to set or replace it; it is never shown again.",
    )
    saltedge_secret_is_set = fields.Boolean(
        string="Salt Edge Secret set",
        compute="_compute_saltedge_keys_set",
        groups="base.group_system",
    )
    saltedge_private_key = fields.Char(
        string="New app private key (PEM)",
        groups="base.group_system",
        help="Signs every request to Salt Edge. Paste it to set or replace it; it is never "
        "shown again. Upload its public half in Salt Edge's dashboard.",
    )
    saltedge_private_key_is_set = fields.Boolean(
        string="App private key set",
        compute="_compute_saltedge_keys_set",
        groups="base.group_system",
    )
    saltedge_public_key = fields.Char(
        string="Salt Edge public key (PEM)",
        config_parameter=const.PARAM_PUBLIC_KEY,
        groups="base.group_system",
        help="Verifies the callbacks Salt Edge sends. Copy it from Salt Edge's documentation.",
    )
    saltedge_consent_days = fields.Integer(
        string="Consent period (days)",
        config_parameter=const.PARAM_CONSENT_DAYS,
        default=const.DEFAULT_CONSENT_DAYS,
        groups="base.group_system",
    )
    saltedge_include_sandboxes = fields.Boolean(
        string="Show sandbox banks",
        config_parameter=const.PARAM_INCLUDE_SANDBOXES,
        groups="base.group_system",
    )
    saltedge_automatic_refresh = fields.Boolean(
        string="Salt Edge refreshes by itself",
        config_parameter=const.PARAM_AUTOMATIC_REFRESH,
        groups="base.group_system",
        help="Connections ask Salt Edge to fetch from the bank by itself every day (it then "
        "calls Odoo back). Without it, the hourly import asks for a background refresh at "
        "most every few hours, within the bank's four a day.",
    )
    bank_connection_reminder_days = fields.Char(
        string="Renewal reminders (days before)",
        config_parameter=const.PARAM_REMINDER_DAYS,
        default=const.DEFAULT_REMINDER_DAYS,
        help="The renewal contacts get an e-mail this many days before a bank's consent runs "
        "out, each once; separate the days with commas.",
    )
    saltedge_callback_url = fields.Char(
        string="Callback URL to register at Salt Edge",
        compute="_compute_saltedge_callback_url",
        groups="base.group_system",
    )

    @api.model
    def default_get(self, fields_list):
        # Odoo's default_get reads the parameters as superuser for any caller: a field
        # restricted to a group (the Secret, the private key) is left out for the others.
        readable = [
            name
            for name in fields_list
            if name not in self._fields or field_is_readable(self, name)
        ]
        return super().default_get(readable)

    @api.depends("company_id")
    def _compute_saltedge_keys_set(self):
        credentials = self.env["account.bank.credential"]
        secret_set = bool(credentials._get(const.PARAM_SECRET))
        key_set = bool(credentials._get(const.PARAM_PRIVATE_KEY))
        for settings in self:
            settings.saltedge_secret_is_set = secret_set
            settings.saltedge_private_key_is_set = key_set

    def set_values(self):
        """Store a new Secret or private key when one was typed; an empty field keeps the
        stored one. Either way the settings' table keeps neither (see
        ``_clear_typed_credentials``)."""
        result = super().set_values()
        if self.env.user.has_group("base.group_system"):
            credentials = self.env["account.bank.credential"]
            for settings in self:
                for name, key in TYPED_CREDENTIALS:
                    value = (settings.sudo()[name] or "").strip()
                    if value:
                        credentials._set(key, value)
        self._clear_typed_credentials()
        return result

    def _clear_typed_credentials(self):
        """Empty the typed Secret and private key in the settings' table: in these
        settings, applied now, and in any row older than UNAPPLIED_SETTINGS_MINUTES (a save
        whose ``execute`` failed or never came). Otherwise they would stay there until
        Odoo's vacuum of transient records, readable by a system administrator and in any
        copy or backup of the database. Another administrator's save under way (written a
        moment ago, its ``execute`` to come) keeps what it typed."""
        columns = [name for name, _key in TYPED_CREDENTIALS]
        # Whatever the ORM still holds of these columns is written first, then emptied.
        self.flush_model(columns)
        self.env.execute_query(
            SQL(
                """
                UPDATE res_config_settings
                   SET saltedge_secret = NULL, saltedge_private_key = NULL
                 WHERE (saltedge_secret IS NOT NULL OR saltedge_private_key IS NOT NULL)
                   AND (id IN %s
                        OR create_date < (now() at time zone 'UTC') - %s * interval '1 minute')
                """,
                tuple(self.ids) or (None,),
                const.UNAPPLIED_SETTINGS_MINUTES,
            )
        )
        self.invalidate_model(columns, flush=False)

    @api.constrains("bank_connection_reminder_days")
    def _check_bank_connection_reminder_days(self):
        for settings in self:
            try:
                parse_reminder_days(settings.bank_connection_reminder_days)
            except ValueError:
                raise ValidationError(
                    self.env._(
                        "Renewal reminders: give whole days between 1 and 366, separated by "
                        "commas, for example “15, 3, 1”."
                    )
                ) from None

    @api.depends("company_id")
    def _compute_saltedge_callback_url(self):
        url = self.env["account.bank.connection"]._callback_url()
        for settings in self:
            settings.saltedge_callback_url = url

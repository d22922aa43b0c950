"""Which connections the hourly import reads: only the ones that may have something new.

With Salt Edge's automatic refresh on (the default), Salt Edge fetches every connection by
itself and calls Odoo back; the hourly run is there for the callback that was lost. It
reads each company's list of connections from Salt Edge once (``GET
/connections?customer_id=``, page by page) and imports only the connections whose entry
moved since the last run that imported everything, or that need a run anyway. An idle
connection then costs no request of its own and no query of its own.
"""

import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..saltedge_client import SaltEdgeError
from . import const

_logger = logging.getLogger(__name__)


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    saltedge_idle_key = fields.Char(
        string="Salt Edge data imported",
        copy=False,
        readonly=True,
        help="What Salt Edge said of this connection (its last attempt, its last change) "
        "when its last import took everything: while Salt Edge's list says the same, the "
        "hourly import has nothing to read.",
    )

    @api.model
    def _saltedge_idle_key(self, remote):
        """What ``remote`` (a connection as Salt Edge shows it, in its list or alone) says
        of its data, or None when it lacks what would tell (its last attempt or its
        ``updated_at``): such a connection is read in full.

        Why an unchanged entry means nothing new: Salt Edge changes a connection's data
        (new transactions, a pending one posted or gone, a balance, an account) only
        through an attempt, its own automatic refresh included, and an attempt is a new
        ``last_attempt`` whose stages and end show in the entry; and the connection's
        ``updated_at`` moves "when the connection's balance was changed, new accounts were
        imported or new transactions added/removed" (Salt Edge's words). The status and
        the consent are in the key as well: a consent that ends or is renewed is a change.
        Salt Edge does not say whether its list shows each connection whole or in part;
        whatever is missing from an entry, the key is None and the connection is read."""
        attempt = remote.get("last_attempt")
        updated_at = remote.get("updated_at")
        if not isinstance(attempt, dict) or not attempt.get("id") or not updated_at:
            return None
        return "|".join(
            (
                self._saltedge_fetch_key(remote),
                str(attempt.get("updated_at") or attempt.get("finished_at") or "")[:64],
                str(updated_at)[:64],
                str(remote.get("status") or "")[:32],
                str(remote.get("last_consent_id") or "")[:64],
            )
        )

    def _needs_a_run(self, automatic_refresh, refresh_before):
        """Imported whatever Salt Edge's list says: a callback asked for it, a run is to be
        resumed, the last one did not import everything (a failure, a fetch under way),
        or a refresh is due (automatic refresh off, see ``_request_refresh``)."""
        self.ensure_one()
        return bool(
            self.import_requested
            or self.resume_run_id
            or self.state != "connected"
            or not self.fetch_finished
            or not self.saltedge_idle_key
            or not self.saltedge_connection_id
            or (
                not automatic_refresh
                and (not self.last_refresh_request or self.last_refresh_request <= refresh_before)
            )
        )

    @api.model
    def _connections_to_import(self, connections):
        """Of ``connections`` (the hourly run's), the ones to import now: those that need a
        run anyway, and those whose entry in their company's list of connections at Salt
        Edge moved since their last full import (or says the user is needed, or is not
        there). One listing per company, none when every connection needs a run; when
        the list cannot be read, every connection of that company is imported, as
        before."""
        params = self.env["ir.config_parameter"].sudo()
        automatic_refresh = bool(params.get_param(const.PARAM_AUTOMATIC_REFRESH))
        hours = float(
            params.get_param(const.PARAM_REFRESH_INTERVAL_HOURS)
            or const.DEFAULT_REFRESH_INTERVAL_HOURS
        )
        refresh_before = fields.Datetime.now() - timedelta(hours=hours)
        chosen = connections.filtered(lambda c: c._needs_a_run(automatic_refresh, refresh_before))
        rest = connections - chosen
        if not rest:
            return chosen
        try:
            client = self._saltedge_client()
        except UserError as error:
            _logger.warning("Salt Edge's list of connections not read: %s", error)
            return connections
        for company, group in rest.grouped("company_id").items():
            customer_id = company.sudo().saltedge_customer_id
            if not customer_id:
                chosen |= group
                continue
            try:
                entries = {
                    str(entry.get("id")): entry
                    for entry in client.list_connections(customer_id)
                    if isinstance(entry, dict)
                }
            except SaltEdgeError as error:
                _logger.warning(
                    "Salt Edge's list of connections of company %s not read (%s): each of "
                    "its connections is read.",
                    company.id,
                    error,
                )
                chosen |= group
                continue
            chosen |= group.filtered(
                lambda c, entries=entries: (entry := entries.get(c.saltedge_connection_id)) is None
                or entry.get("status") in const.STATUS_NEEDS_USER
                or self._saltedge_idle_key(entry) != c.saltedge_idle_key
            )
        _logger.info(
            "Hourly import: %s of %s bank connections have something new at Salt Edge.",
            len(chosen),
            len(connections),
        )
        return chosen

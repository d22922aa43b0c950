import logging
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL, consteq
from odoo.tools.misc import hmac

from ..odoo_series import commit_progress
from . import const

_logger = logging.getLogger(__name__)

STATE_SCOPE = "account_bank_connection.connect_state"


class ConnectStateError(Exception):
    """A connect state that cannot be used; the message is shown to the user as is."""


class ConnectStateUsed(ConnectStateError):
    """A valid state of this user that was already handled (a refresh, a double click):
    ``session`` says where the first return went."""

    def __init__(self, message, session):
        super().__init__(message)
        self.session = session


# A first import claimed by a request that died is given to the next one after this long.


class AccountBankConnectSession(models.Model):
    """One trip to Salt Edge's connect screens and back.

    Its token is the ``state`` of the ``return_to`` URL: signed with the database secret,
    bound to the user, the company and the journal, valid one hour and usable once.
    """

    _name = "account.bank.connect.session"
    _description = "Bank Connect Session"
    _order = "id desc"

    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade")
    journal_id = fields.Many2one("account.journal", ondelete="set null")
    connection_id = fields.Many2one("account.bank.connection", ondelete="cascade")
    provider_code = fields.Char()
    nonce = fields.Char(required=True, readonly=True, copy=False)
    expires_at = fields.Datetime(required=True)
    used_at = fields.Datetime(readonly=True)
    connect_url = fields.Char(readonly=True)
    # Our reference of this connect at Salt Edge (attempt.custom_fields, echoed in every
    # callback): how the connection is found when the user never comes back.
    reference = fields.Char(readonly=True, copy=False, index=True)
    saltedge_connection_hint = fields.Char(
        string="Salt Edge connection (hint)",
        readonly=True,
        copy=False,
        help="The connection a success callback named for this connect.",
    )
    linked = fields.Boolean(
        readonly=True, copy=False, help="The connection this session made is recorded."
    )
    # The first import after the return, run by the waiting page (one request at a time).
    import_state = fields.Selection(
        [("waiting", "Waiting"), ("running", "Running"), ("done", "Done")], readonly=True
    )
    import_started_at = fields.Datetime(readonly=True)
    import_run_id = fields.Many2one("account.bank.import.run", ondelete="set null", readonly=True)

    @api.model
    def _start(self, company, journal=None, connection=None, provider_code=None):
        """Create the session of the current user and return it with its state token."""
        session = self.sudo().create(
            {
                "user_id": self.env.uid,
                "company_id": company.id,
                "journal_id": journal.id if journal else False,
                "connection_id": connection.id if connection else False,
                "provider_code": provider_code,
                "nonce": secrets.token_urlsafe(24),
                "reference": secrets.token_urlsafe(16),
                "expires_at": fields.Datetime.now()
                + timedelta(seconds=const.CONNECT_SESSION_LIFETIME),
            }
        )
        return session

    def _token(self):
        self.ensure_one()
        payload = f"{self.id}.{self.nonce}"
        return f"{payload}.{self._signature(payload)}"

    def _signature(self, payload):
        return hmac(
            self.env(su=True),
            STATE_SCOPE,
            f"{payload}.{self.user_id.id}.{self.company_id.id}.{self.journal_id.id or 0}",
        )

    @api.model
    def _consume(self, token):
        """Check ``token`` for the current user and mark its session used (once).

        :raises ConnectStateError: with a sentence for the user when the token is forged,
            reused, expired, or belongs to another user or a company the user has no access to.
        """
        invalid = ConnectStateError(
            self.env._(
                "This link to Odoo is not valid. Start again with “Connect bank” on the journal."
            )
        )
        parts = (token or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            raise invalid
        session = self.sudo().browse(int(parts[0])).exists()
        if not session or not consteq(session.nonce, parts[1]):
            raise invalid
        if not consteq(session._signature(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise invalid
        if session.user_id != self.env.user:
            raise ConnectStateError(
                self.env._(
                    "This bank connection was started by another user. "
                    "Log in as that user or start again with “Connect bank”."
                )
            )
        if session.company_id not in self.env.user.company_ids:
            raise ConnectStateError(
                self.env._("This bank connection belongs to a company you have no access to.")
            )
        if session.expires_at < fields.Datetime.now():
            raise ConnectStateError(
                self.env._(
                    "This bank connection was started more than an hour ago and has expired. "
                    "Start again with “Connect bank”."
                )
            )
        # Atomic: of two concurrent returns with the same state, only one gets the row.
        claimed = self.env.execute_query(
            SQL(
                "UPDATE account_bank_connect_session SET used_at = now() at time zone 'UTC' "
                "WHERE id = %s AND used_at IS NULL RETURNING id",
                session.id,
            )
        )
        if not claimed:
            raise ConnectStateUsed(
                self.env._(
                    "This return from the bank was already handled. "
                    "Look at the bank connection, or start again with “Connect bank”."
                ),
                session,
            )
        session.invalidate_recordset(["used_at"])
        return session

    def _claim_first_import(self):
        """Take the first import of this session for the current request. False when
        another request has it (a second tab, a refresh), when it is done already, or when
        the last slice began less than FIRST_SLICE_MIN_INTERVAL_SECONDS ago: the page polls
        every second, and each slice asks Salt Edge (whose rate limit all companies of the
        database share), so between two slices the page only reads the count."""
        self.ensure_one()
        # The clock, not now() (the start of the transaction, which a test's requests
        # share and a long request's may be older than the other request's slice).
        claimed = self.env.execute_query(
            SQL(
                "UPDATE account_bank_connect_session "
                "SET import_state = 'running', "
                "    import_started_at = clock_timestamp() at time zone 'UTC' "
                "WHERE id = %s AND ("
                "  (import_state = 'waiting' AND (import_started_at IS NULL"
                "   OR import_started_at"
                "      <= clock_timestamp() at time zone 'UTC' - make_interval(secs => %s)))"
                "  OR (import_state = 'running' AND import_started_at"
                "      < clock_timestamp() at time zone 'UTC' - make_interval(mins => %s))"
                ") RETURNING id",
                self.id,
                const.FIRST_SLICE_MIN_INTERVAL_SECONDS,
                const.FIRST_IMPORT_STALE_MINUTES,
            )
        )
        self.invalidate_recordset(["import_state", "import_started_at"])
        return bool(claimed)

    def _imported_count(self):
        """The bank's transactions this connect brought into the journals: statement lines
        of the connection's accounts created since the connect began, counted in the
        journals (whichever run made them: the page's slices, a callback's import, the
        scheduled action), so it grows while they import and is right when they are done.
        Lines matched to earlier ones (a file, a former connection) and the opening line
        are not counted: they were in the journal before."""
        self.ensure_one()
        connection = self.connection_id.sudo()
        if not connection:
            return 0
        accounts = connection.account_ids.filtered("journal_id")
        if not accounts:
            return 0
        return (
            self.env["account.bank.statement.line"]
            .sudo()
            .search_count(
                [
                    ("journal_id", "in", accounts.journal_id.ids),
                    ("saltedge_account_id", "in", accounts.mapped("saltedge_account_id")),
                    ("create_date", ">=", self.create_date),
                ]
            )
        )

    # ------------------------------------------------------------------------------------
    # The waiting page: its states and sentences (the controller only serves them)
    # ------------------------------------------------------------------------------------

    def _waiting_state(self):
        """What the waiting page shows while the first import runs: Salt Edge's stage in
        words and the count of transactions this connect brought so far."""
        self.ensure_one()
        return {
            "done": False,
            "stage": self.connection_id.sudo()._fetch_stage_sentence(),
            "count": self._imported_count(),
        }

    def _import_slice(self):
        """One request of the waiting page: a slice of the first import (FIRST_SLICE_SECONDS
        of pages, committed page by page) unless another request or the scheduled action is
        at it, so the first lines Salt Edge has are in the journal within seconds, whatever
        the length of the history; the rest follows in the background (see
        ``_saltedge_first_import_run``). Done once everything Salt Edge has is in and its
        fetch has finished, or after FIRST_FETCH_WAIT_SECONDS (the rest then keeps
        arriving by itself). Returns ``{"done": bool, "stage": str, "count": int}``."""
        self.ensure_one()
        connection = self.connection_id.sudo()
        previous = self.import_run_id
        if previous and previous.state != "running" and not connection.resume_run_id:
            # A run in the background (a callback's, the scheduled one) finished what the
            # page's slices began.
            self.write({"import_state": "done"})
            return {"done": True}
        waited = fields.Datetime.now() - (self.used_at or self.create_date)
        patience_left = waited < timedelta(seconds=const.FIRST_FETCH_WAIT_SECONDS)
        if not self._claim_first_import():
            return self._waiting_state()
        # The claim must be seen by the other requests while this one imports.
        commit = commit_progress(self.env)
        try:
            # As the person waiting (the run itself is the module's, as superuser).
            run = self.connection_id.sudo(False)._saltedge_first_import_run(
                commit=commit,
                seconds=const.FIRST_SLICE_SECONDS,
                keep_open=patience_left,
            )
        except Exception:  # the claim is committed: it must not stay "running"
            self.env.cr.rollback()
            _logger.exception(
                "Bank connection %s: a slice of the waiting page's import failed",
                self.connection_id.id,
            )
            # The next poll tries again (the run resumes from its cursors); once the
            # page's patience is over it shows what is in the journal, and the scheduled
            # import goes on.
            self.write({"import_state": "waiting" if patience_left else "done"})
            if patience_left:
                return self._waiting_state()
            return {"done": True}
        if not run and connection.state == "connected":
            # The scheduled import holds the connection: ask again in a moment.
            self.write({"import_state": "waiting"})
            return self._waiting_state()
        if run.state == "running":
            # More pages to import, or Salt Edge is still fetching: go on at the next call.
            self.write({"import_state": "waiting", "import_run_id": run.id})
            return self._waiting_state()
        self.write({"import_state": "done", "import_run_id": run.id})
        return {"done": True}

    def _result_sentence(self):
        """What the page says once the first import is done: the bank, Connected until and
        the count, or why the transactions could not be loaded yet."""
        self.ensure_one()
        connection = self.connection_id.sudo()
        run = self.import_run_id
        # Salt Edge's callbacks may have imported some before the page did.
        count = self._imported_count()
        message = self.env._(
            "%(bank)s is connected until %(date)s. %(count)s transactions imported.",
            bank=connection.name,
            date=connection._format_connected_until(),
            count=count,
        )
        if run and run.state != "failed" and not run.fetch_finished:
            message += " " + self.env._(
                "Salt Edge is still loading the bank's older transactions: they keep "
                "arriving in the journal by themselves."
            )
        if run.state == "failed":
            message = self.env._(
                "%(bank)s is connected until %(date)s, but the transactions could not be "
                "loaded yet: %(error)s The hourly import tries again.",
                bank=connection.name,
                date=connection._format_connected_until(),
                error=run.error or "",
            )
        if connection.unlinked_account_count:
            message += " " + self.env._(
                "Some accounts have no journal yet: choose one or create it on the connection."
            )
        return message

    @api.autovacuum
    def _gc_old_sessions(self):
        """Sessions are only needed for the hour they are valid, keep a week for support."""
        self.sudo().search(
            [("expires_at", "<", fields.Datetime.now() - timedelta(days=7))]
        ).unlink()

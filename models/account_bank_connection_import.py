"""The transaction import of a bank connection: its entry points (Fetch, the scheduled
actions), the loop over connections, and one run: its lock, its steps and how it resumes,
and its errors. What a run does between its first and last step is in
``account_bank_connection_run``; one account's pages in
``account_bank_connection_account_import``.

A run imports one connection. Runs of the same connection never overlap: each takes a
transaction-level advisory lock, so a second worker moves on instead of waiting. Each page
is one all-or-nothing step (its own transaction in the scheduled action, its own savepoint
elsewhere) in which the lines are created and the account's cursor moves: a run that dies
halfway loses nothing and doubles nothing, and the database's unique constraint on
(journal, Salt Edge transaction id) stands behind it all.
"""

import contextlib
import logging
import time

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as PG_CONCURRENCY_EXCEPTIONS
from odoo.tools import SQL

from ..odoo_series import commit_progress
from ..saltedge_client import SaltEdgeError, without_request_id
from ..saltedge_transactions import ImportCounts
from . import const

_logger = logging.getLogger(__name__)


class ImportHandedOver(Exception):
    """Between two pages another run took the connection's lock; it goes on from the cursor
    this run committed."""


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    balance_mismatch_note = fields.Text(string="Balance difference", copy=False, readonly=True)

    import_run_ids = fields.One2many(
        "account.bank.import.run", "connection_id", string="Import history", readonly=True
    )

    resume_run_id = fields.Many2one(
        "account.bank.import.run",
        string="Run to resume",
        copy=False,
        readonly=True,
        ondelete="set null",
        check_company=True,
        help="A run that stopped after its time slice (the waiting page's first import): the "
        "next run of this connection, scheduled or not, goes on with it from the cursors.",
    )

    last_skip_run_id = fields.Many2one(
        "account.bank.import.run",
        string="Last import with skipped transactions",
        compute="_compute_last_skip",
        help="The last import that met transactions Salt Edge sent but that could not become "
        "statement lines.",
    )

    skipped_note = fields.Text(string="Transactions not imported", compute="_compute_last_skip")

    @api.depends("import_run_ids.skipped_count", "import_run_ids.skipped_note")
    def _compute_last_skip(self):
        # Read from the runs, not written on the connection: the import never writes the
        # connection's row for it.
        Run = self.env["account.bank.import.run"]
        for connection in self:
            run = (
                Run.search(
                    [("connection_id", "=", connection._origin.id), ("skipped_count", ">", 0)],
                    limit=1,
                )
                if connection._origin.id
                else Run
            )
            connection.last_skip_run_id = run
            connection.skipped_note = run.skipped_note

    def action_fetch_transactions(self):
        """Fetch transactions: import what Salt Edge has now (asking it to refresh when the
        last request is old enough), and say how many arrived or why none could."""
        self.ensure_one()
        # An accounting administrator need not have "Show Full Accounting Features".
        if not self.env.user.has_group("account.group_account_user") and not (
            self.env.user.has_group("account.group_account_manager")
        ):
            raise AccessError(self.env._("Only accountants can fetch bank transactions."))
        self.check_access("read")
        if self.state != "connected":
            raise UserError(self.env._("Only a connected bank can fetch transactions."))
        run, error = self.sudo()._run_import("manual")
        if not run:
            kind = "warning"
            message = self.env._(
                "Transactions of %(bank)s are being imported right now. Try again in a minute.",
                bank=self.name,
            )
        elif error:
            kind = "danger"
            message = self._import_error_sentence(error)
        else:
            kind = "success"
            message = self.env._(
                "%(count)s new transactions from %(bank)s.", count=run.created_count, bank=self.name
            )
            if not self.fetch_finished:
                message += " " + self.env._(
                    "Salt Edge is fetching from the bank: more may arrive by themselves in a "
                    "few minutes."
                )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": kind,
                "message": message,
                "sticky": kind == "danger",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _saltedge_first_import_run(self, commit=False, seconds=None, keep_open=False):
        """The first import; returns its ``account.bank.import.run`` (empty when the
        connection is not connected or another run holds it). With ``commit`` (the waiting
        page's request) each page is committed like in the scheduled import, so the
        request's memory does not grow with the consent's history.

        With ``seconds`` (the waiting page) it is a slice: pages are imported until the time
        is up, then the run stays open (``resume_run_id``) and the requested-import
        scheduled action is asked to go on in the background; the page's next request, or
        any later run, resumes it from the cursors. The first lines are in the journal
        within seconds whatever the length of the history. With ``keep_open`` the run also
        stays open while Salt Edge is still fetching, so the waiting page's requests make
        one run in the history, not one each."""
        self.ensure_one()
        if self.state != "connected":
            return self.env["account.bank.import.run"]
        deadline = time.monotonic() + seconds if seconds is not None else None
        run, _error = self.sudo()._run_import(
            "first", commit=commit, deadline=deadline, keep_open=keep_open
        )
        return run

    @api.model
    def _cron_import_transactions(self):
        """Scheduled, hourly: link the connections of connects the user never came back
        from, then import the live banks that have something new at Salt Edge (one list of
        connections per company tells, see ``_connections_to_import``). With Salt Edge's
        automatic refresh on, this imports what Salt Edge fetched by itself when its
        callback was lost; without it, it also asks for a background refresh now and then
        (see ``_request_refresh``)."""
        self._saltedge_link_unreturned()
        connections = self.sudo().search(
            ["|", ("state", "in", ("connected", "error")), ("import_requested", "=", True)]
        )
        return self._import_each(self._connections_to_import(connections), "cron")

    @api.model
    def _cron_import_requested(self):
        """Triggered by Salt Edge's callbacks: link what a ``success`` callback named, then
        import only the connections a callback asked for."""
        self._saltedge_link_unreturned(hinted_only=True)
        connections = self.sudo().search([("import_requested", "=", True)])
        return self._import_each(connections, "callback")

    @api.model
    def _import_each(self, connections, trigger):
        """Import ``connections``, each in a transaction of its own (a savepoint in tests),
        so one failing connection never stops the others. Several workers may run this
        together: each connection is imported by one of them."""
        connections = connections.filtered(lambda c: c.state != "disconnected")
        # Each connection's transaction must start with its lock (see _lock_for_import).
        commit = commit_progress(self.env, remaining=len(connections))
        for connection in connections:
            try:
                if commit:
                    connection._run_import(trigger, commit=True)
                else:
                    with self.env.cr.savepoint():
                        connection._run_import(trigger)
            except Exception as error:  # contained: the other banks go on
                if commit:
                    self.env.cr.rollback()
                _logger.exception("Import of bank connection %s failed", connection.id)
                if connection._lock_for_import():
                    connection._record_import_error(error)
            if commit:
                commit_progress(self.env, processed=1)
        return True

    def _lock_for_import(self):
        """Take this connection's import lock; False when another run holds it.

        A transaction-level advisory lock on the connection's id: it ends with the
        transaction, so no crash can leave it behind, and a second worker moves on at once.
        It is not a lock of the connection's row: a callback, the waiting page or a person
        writes that row while a run waits for Salt Edge's next page, and neither waits for
        the run nor makes its next lock fail (a row lock made both happen).
        """
        self.ensure_one()
        [(locked,)] = self.env.execute_query(
            SQL("SELECT pg_try_advisory_xact_lock(%s, %s)", const.IMPORT_LOCK_KEY, self.id)
        )
        return locked

    @contextlib.contextmanager
    def _import_step(self, commit, last=False):
        """One all-or-nothing step of a run: committed (then the lock taken again) with
        ``commit``, else a savepoint. A failed step leaves nothing behind. The ``last``
        step is a savepoint either way: the run's closing write commits it at once."""
        if not commit or last:
            with self.env.cr.savepoint():
                yield
            return
        try:
            yield
        except Exception:
            self.env.cr.rollback()
            raise
        commit_progress(self.env)
        if not self._lock_for_import():
            raise ImportHandedOver()

    def _run_import(self, trigger, commit=False, deadline=None, keep_open=False):
        """Import every linked account of this connection, once at a time.

        Returns ``(run, error)``: the ``account.bank.import.run`` (empty when another run
        holds the connection, or it is not live) and the exception that stopped it, if
        any; the error is on the run, on ``last_error``, in the log and (once) on the
        chatter.

        With ``deadline`` (a ``time.monotonic()`` value) the run stops between two pages
        once it has passed, and stays open for the next run to resume (see
        ``_saltedge_first_import_run``); with ``keep_open`` it also stays open when it
        imported all Salt Edge has but Salt Edge's fetch is not finished.

        With ``commit``, a step that meets a concurrent writer of the same rows (a
        callback writing the connection while the run asked Salt Edge something: a
        serialization failure) is rolled back and the run goes on again from its
        committed cursors, up to IMPORT_CONCURRENCY_TRIES times. Without ``commit`` the
        error is the request's (Odoo runs a request again after one).
        """
        self.ensure_one()
        Run = self.env["account.bank.import.run"].sudo()
        if not self._lock_for_import():
            _logger.info("Bank connection %s: an import is already running, skipped.", self.id)
            return Run, None
        if self.state in ("draft", "disconnected") or (
            self.state == "expired" and not self.import_requested
        ):
            # Disconnected or expired since the run was planned; an expired one comes back
            # only through a reconnect, whose success callback asks for this import.
            return Run, None
        run = self.resume_run_id
        resumed = bool(run) and run.state == "running"
        if resumed:
            counts = ImportCounts.of_run(run)
        else:
            if trigger == "first":
                # The connect itself just fetched the bank's data: no refresh needed now.
                # Written under the lock, like everything a run writes on the connection.
                self.last_refresh_request = fields.Datetime.now()
            # Committed with the first step; a first step that fails takes it with its
            # rollback, and it is made again (below) to hold the failure.
            run = Run.create({"connection_id": self.id, "trigger": trigger})
            counts = ImportCounts()
        started = run.date_start
        # A waiting page's slice that resumes its run goes on with the pages, as long as
        # Salt Edge's fetch has not moved since the run read the accounts (see _import_all).
        light = resumed and deadline is not None and bool(run.saltedge_fetch_key)
        for attempt in range(1, const.IMPORT_CONCURRENCY_TRIES + 1):
            try:
                result = self._run_import_once(
                    run, counts, (trigger, started), commit, deadline, keep_open, resumed, light
                )
                self._hand_to_odoo_reconciliation(commit)
                return result
            except PG_CONCURRENCY_EXCEPTIONS as caught:
                if not commit or attempt == const.IMPORT_CONCURRENCY_TRIES:
                    raise
                # What the failed step wrote is gone with the rollback; the committed
                # pages stay, and the run goes on from their cursors.
                self.env.cr.rollback()
                _logger.info(
                    "Bank connection %s: a concurrent write (%s); the import goes on from "
                    "its cursors.",
                    self.id,
                    type(caught).__name__,
                )
                if not self._lock_for_import():
                    return run, None
                run = self._saltedge_keep_run(run, trigger, started)
                light = False
        return run, None

    def _hand_to_odoo_reconciliation(self, commit):
        """With Enterprise's accounting (``account_accountant``), the lines this connection
        imported go through its automatic reconciliation right away, by the entry points
        Odoo's own bank synchronization calls after its imports: the lines at once when
        they are few, else its batched, time-limited scheduled pass (which commits between
        batches and leaves the rest to its scheduled action).

        The lines are those of the connection's journals that came from Salt Edge and that
        the reconciliation never looked at (it marks each line it tries with
        ``cron_last_check``): this run's, and any an earlier run imported before Enterprise
        was there. Nothing of Enterprise is imported; on Community nothing happens.
        A failure is logged and leaves the lines to Enterprise's scheduled pass."""
        Line = self.env["account.bank.statement.line"].sudo()
        if not self.journal_ids or not hasattr(Line, "_try_auto_reconcile_statement_lines"):
            return
        lines = Line.search(
            [
                ("journal_id", "in", self.journal_ids.ids),
                ("saltedge_transaction_id", "!=", False),
                ("is_reconciled", "=", False),
                ("cron_last_check", "=", False),
            ],
            order="id",
        )
        if not lines:
            return
        try:
            if len(lines) <= const.ODOO_RECONCILE_AT_ONCE:
                with self.env.cr.savepoint():
                    lines._try_auto_reconcile_statement_lines()
            else:
                lines._cron_try_auto_reconcile_statement_lines(
                    batch_size=const.ODOO_RECONCILE_BATCH
                )
        except Exception as error:  # the scheduled pass tries them again
            _logger.warning(
                "Bank connection %s: Odoo's automatic reconciliation of %s new lines failed "
                "(%s); its scheduled action will try them again.",
                self.id,
                len(lines),
                type(error).__name__,
            )
        if commit:
            commit_progress(self.env)

    def _saltedge_keep_run(self, run, trigger, started):
        """``run`` as it is in the database after a rollback, or made again when the
        rollback took it (it was created in the step that failed): a failed run stays in
        the history."""
        if run.exists():
            return run
        return (
            self.env["account.bank.import.run"]
            .sudo()
            .create({"connection_id": self.id, "trigger": trigger, "date_start": started})
        )

    @api.model
    def _import_error_text(self, error):
        if isinstance(error, SaltEdgeError):
            text = str(error)
        elif isinstance(error, UserError):
            text = error.args[0]
        else:
            text = f"{type(error).__name__}: {error}"
        return text[: const.ERROR_TEXT_LIMIT]

    @api.model
    def _import_error_sentence(self, error):
        """What the accountant reads about a failed import."""
        if isinstance(error, SaltEdgeError):
            reason = self._saltedge_user_error(error).args[0]
        elif isinstance(error, UserError):
            reason = error.args[0]
        else:
            reason = self.env._(
                "an unexpected error (%s); see the server log.", type(error).__name__
            )
        return self.env._("The import failed: %s", reason)

    def _record_import_error(self, error):
        """On ``last_error`` and in the log every time, on the chatter once per distinct
        error; an expired or withdrawn consent also marks the connection expired."""
        self.ensure_one()
        text = self._import_error_text(error)
        if isinstance(error, (SaltEdgeError, UserError)):
            _logger.warning("Import of bank connection %s failed: %s", self.id, text)
        else:
            _logger.error("Import of bank connection %s failed: %s", self.id, text, exc_info=error)
        # Said once per distinct error: two requests' same error differ by their id only.
        if without_request_id(self.last_error) != without_request_id(text):
            self.message_post(body=self._import_error_sentence(error))
        self.last_error = text
        if isinstance(error, SaltEdgeError) and error.is_consent_expired:
            self._mark_expired(revoked=error.is_consent_revoked)

"""The transaction import of a bank connection: the seam between Salt Edge's transaction
dicts and Odoo's statement lines.

A run imports one connection. Runs of the same connection never overlap: each takes a row
lock on the connection with SKIP LOCKED, so a second worker moves on instead of waiting.
Each page is one all-or-nothing step (its own transaction in the scheduled action, its
own savepoint elsewhere) in which the lines are created and the account's cursor moves:
a run that dies halfway loses nothing and doubles nothing, and the database's unique
constraint on (journal, Salt Edge transaction id) stands behind it all.
"""

import contextlib
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as PG_CONCURRENCY_EXCEPTIONS
from odoo.tools import SQL
from odoo.tools.misc import formatLang

from ..saltedge_client import SaltEdgeError
from ..saltedge_transactions import (
    NO_AMOUNT,
    NO_DATE,
    NO_ID,
    InvalidTransaction,
    clean_id,
    clean_transaction,
    display,
    is_marked_duplicate,
    is_pending,
)
from . import const
from .account_bank_connection import parse_saltedge_datetime
from .utils import commits_allowed

_logger = logging.getLogger(__name__)

# The opening line's key in place of a Salt Edge transaction id: the unique constraint per
# journal then also keeps it single.
OPENING_KEY = "opening:%s"
IBAN_PATTERN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}$")
ERROR_TEXT_LIMIT = 1000
# The waiting page's first lines: this many are committed before the rest of the first page.
FIRST_CHUNK = 20
# What the database raises for a value it refuses (a NUL: psycopg2's ValueError; a
# constraint, a type, a length: DataError, IntegrityError): a line it refuses is skipped.
# Anything else (a lock, a lost connection, a setup error) fails the page as it is.
REFUSED_VALUE_ERRORS = (
    ValueError,
    psycopg2.DataError,
    psycopg2.errors.CheckViolation,
    psycopg2.errors.UniqueViolation,
)


class ImportHandedOver(Exception):
    """Between two pages another run took the connection's lock; it goes on from the cursor
    this run committed."""


@dataclass
class ImportCounts:
    fetched: int = 0
    created: int = 0
    duplicates: int = 0
    matched: int = 0
    pending: int = 0
    # Transactions that cannot become a line, and a line of text for each (the first
    # SKIPPED_NOTE_LINES of them; the count holds them all).
    skipped: int = 0
    skipped_notes: tuple = ()
    # The opening lines booked by the run's last step, set (not added) by it: that step
    # is committed with the run's closing write, and done again if that write meets a
    # concurrent one (see _run_import).
    openings: int = 0

    def add(self, other):
        self.fetched += other.fetched
        self.created += other.created
        self.duplicates += other.duplicates
        self.matched += other.matched
        self.pending += other.pending
        self.skipped += other.skipped
        self.skipped_notes = (self.skipped_notes + other.skipped_notes)[: const.SKIPPED_NOTE_LINES]

    def skip(self, note):
        """Count one skipped transaction, said by ``note``."""
        self.skipped += 1
        if len(self.skipped_notes) < const.SKIPPED_NOTE_LINES:
            self.skipped_notes += (note,)

    def as_vals(self):
        return {
            "fetched_count": self.fetched,
            "created_count": self.created + self.openings,
            "duplicate_count": self.duplicates,
            "matched_count": self.matched,
            "pending_count": self.pending,
            "skipped_count": self.skipped,
            "skipped_note": "\n".join(self.skipped_notes) or False,
        }

    @classmethod
    def of_run(cls, run):
        """The counts a run already holds (a run resumed after a slice)."""
        return cls(
            run.fetched_count,
            run.created_count,
            run.duplicate_count,
            run.matched_count,
            run.pending_count,
            run.skipped_count,
            tuple((run.skipped_note or "").splitlines()),
        )


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

    last_refresh_request = fields.Datetime(
        string="Last refresh asked",
        copy=False,
        readonly=True,
        help="When Odoo last asked Salt Edge to fetch new data from the bank. Salt Edge allows "
        "a few background fetches a day, so Odoo asks at most every few hours (system "
        "parameter account_bank_connection.refresh_interval_hours, 6 by default) and imports "
        "what Salt Edge already has in between.",
    )
    next_refresh_possible_at = fields.Datetime(
        copy=False,
        readonly=True,
        help="Salt Edge allows the next background refresh from then on.",
    )
    balance_mismatch = fields.Boolean(
        copy=False,
        readonly=True,
        help="After the last import a journal's balance differed from the bank's.",
    )
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

    # ------------------------------------------------------------------------------------
    # Entry points: the button, the return from the bank, the scheduled action
    # ------------------------------------------------------------------------------------

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

    def _saltedge_first_import(self):
        """Right after the return from the bank; a failure here is recorded, not fatal.
        Returns the number of statement lines created."""
        return self._saltedge_first_import_run().created_count

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

    def _import_transactions(self):
        """Import this connection now (without committing); returns the number of statement
        lines created. Failures are recorded on the connection and its run."""
        self.ensure_one()
        run, _error = self.sudo()._run_import("manual")
        return run.created_count

    @api.model
    def _cron_import_transactions(self):
        """Scheduled, hourly: link the connections of connects the user never came back
        from, then import every live bank. With Salt Edge's automatic refresh on, this
        imports what Salt Edge fetched by itself; without it, it also asks for a
        background refresh now and then (see ``_request_refresh``)."""
        self._saltedge_link_unreturned()
        connections = self.sudo().search(
            ["|", ("state", "in", ("connected", "error")), ("import_requested", "=", True)]
        )
        return self._import_each(connections, "cron")

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
        commit = commits_allowed()
        if commit:
            # Each connection's transaction must start with its lock (see _lock_for_import).
            self.env.cr.commit()  # pylint: disable=invalid-commit
        for connection in connections.filtered(lambda c: c.state != "disconnected"):
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
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return True

    # ------------------------------------------------------------------------------------
    # One run
    # ------------------------------------------------------------------------------------

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
        self.env.cr.commit()  # pylint: disable=invalid-commit
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
                return self._run_import_once(
                    run, counts, (trigger, started), commit, deadline, keep_open, resumed, light
                )
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

    def _run_import_once(self, run, counts, origin, commit, deadline, keep_open, resumed, light):
        """The body of ``_run_import`` (see there), done again after a concurrent write.
        ``origin``: the run's trigger and start, to make it again if a rollback took it."""
        trigger, started = origin
        error = refresh_error = None
        stopped = False
        locked = True
        try:
            refresh_error, stopped = self._import_all(
                counts, commit, trigger, run, deadline, light=light
            )
        except ImportHandedOver:
            locked = False
            _logger.info("Bank connection %s: another run took over between two pages.", self.id)
        except PG_CONCURRENCY_EXCEPTIONS:
            raise
        except Exception as caught:  # recorded below, never lost
            error = caught
            if commit:
                # The failed step was rolled back, and with a committed one the lock and,
                # when it was the first, the run itself.
                locked = self._lock_for_import()
                run = self._saltedge_keep_run(run, trigger, started)
        held = (
            locked
            and not error
            and (stopped or (keep_open and self.state == "connected" and not self.fetch_finished))
        )
        if resumed and not locked and not error:
            # Handed over between two pages: the run that took the lock goes on with this
            # same run (still the one to resume) and writes it.
            return run, None
        run.write(
            {
                **counts.as_vals(),
                "date_end": fields.Datetime.now(),
                "state": "failed" if error else "running" if held else "done",
                "fetch_finished": self.fetch_finished,
                "error": self._import_error_text(error or refresh_error)
                if error or refresh_error
                else False,
            }
        )
        if held:
            # Whichever run of this connection comes next resumes this one.
            if self.resume_run_id != run:
                self.resume_run_id = run
            if stopped:
                # The rest follows in the background, page or no page.
                if not self.import_requested:
                    self.import_requested = True
                self._trigger_requested_import()
        elif locked:
            if self.resume_run_id:
                self.resume_run_id = False
            if error:
                self._record_import_error(error)
            elif self.state == "connected":
                # A failed refresh stays visible: what was imported may not be all the
                # bank has. The next run asks again (last_refresh_request did not move).
                self.write(
                    {
                        "last_sync": fields.Datetime.now(),
                        "last_error": self._import_error_text(refresh_error)
                        if refresh_error
                        else False,
                    }
                )
        if commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit
        return run, error

    def _import_all(self, counts, commit, trigger, run, deadline=None, light=False):
        """Confirm the connection with Salt Edge, then import every linked account.
        Returns ``(refresh_error, stopped)``: the error of a failed refresh (the run went
        on with what Salt Edge had) or None, and whether the ``deadline`` stopped the run
        before the last page (then nothing is finished: the run is resumed later).

        Salt Edge fetches from the bank asynchronously: recent transactions first, older
        history minutes later, accounts that appear on the way. So every run reads the
        accounts again, and the opening balance and the balance check wait until the
        connection's last attempt has finished, and is still the same attempt after the
        transactions were read.

        A ``light`` run (the waiting page's next slice of the same run) neither confirms
        the connection nor reads its accounts again: the slice before did, seconds ago,
        and noted where Salt Edge's fetch was then (``saltedge_fetch_key``). It reads the
        pages, then the connection once; if the fetch has moved since, the next slice reads
        everything again before anything is final.

        One account's failure (its page rolled back) does not stop the others: they are
        imported and finished, then the first failure is raised, so the run ends failed
        with it and the failed account goes on from its cursor at the next run. A failure
        that is the connection's (consent, setup) stops the run at once.
        """
        # A person waits on Fetch and on the waiting page: short timeouts and one retry,
        # but no budget for the whole run (a long history takes its time, page by page).
        client = self._saltedge_client(interactive=trigger in ("manual", "first"), budget=False)
        refresh_error = None
        if not light:
            with self._import_step(commit):
                # This run takes the request that started it; one made while it runs (a
                # callback of newer data) stays for the next run.
                if self.import_requested:
                    self.import_requested = False
                remote = self._saltedge_confirm(client)
                if self.state != "connected":
                    return None, False
                refresh_error = self._request_refresh(client, trigger)
                if not self.fetch_finished:
                    # A refresh was just asked, or a fetch runs: where is it before reading?
                    remote = client.get_connection(self.saltedge_connection_id)
                    self._saltedge_note_fetch(remote)
                finished_before = self.fetch_finished
                key = self._saltedge_fetch_key(remote)
                if run.saltedge_fetch_key != key:
                    run.saltedge_fetch_key = key
                self._saltedge_sync_accounts(client, journal=self._saltedge_started_from)
        failures = {}
        skipped_before, listed_before = counts.skipped, len(counts.skipped_notes)
        try:
            for index, account in enumerate(self.account_ids.filtered("journal_id")):
                # Each slice imports a page at least, however short its time.
                if index and deadline is not None and time.monotonic() >= deadline:
                    return refresh_error, True
                try:
                    if account._import_pages(client, counts, commit, run, deadline):
                        return refresh_error, True
                except (ImportHandedOver, *PG_CONCURRENCY_EXCEPTIONS):
                    # Another run goes on, or this one goes on again from the cursors.
                    raise
                except Exception as error:  # contained: the other accounts go on
                    if not self._import_goes_on_after(account, error, commit):
                        raise
                    failures[account] = error
        finally:
            # Said once per run (per slice on the waiting page), however the run ends.
            self._post_skipped_transactions(
                counts.skipped - skipped_before, counts.skipped_notes[listed_before:]
            )
        openings = 0
        with self._import_step(commit, last=True):
            after = client.get_connection(self.saltedge_connection_id)
            finished = self._saltedge_note_fetch(after)
            if light:
                # Final only if the fetch stands where it stood when the accounts were read.
                finished_before = same_attempt = self._saltedge_fetch_key(after) == (
                    run.saltedge_fetch_key
                )
                if not same_attempt:
                    run.saltedge_fetch_key = False
            else:
                same_attempt = (after.get("last_attempt") or {}).get("id") == (
                    (remote.get("last_attempt") or {}).get("id")
                )
            if not (finished_before and finished and same_attempt):
                # Salt Edge is still fetching (or began again): balances are not final.
                self.fetch_finished = False
            else:
                notes = []
                for account in self.account_ids.filtered("journal_id"):
                    if account in failures:
                        # Finished by the run that imports it whole.
                        continue
                    created, balanced = account._finish_first_sync()
                    openings += created
                    note = not balanced and account._balance_difference_note()
                    if note:
                        notes.append(note)
                if not failures:
                    # With an account imported halfway the balances say nothing new.
                    self._flag_balance_mismatch(notes)
        counts.openings = openings
        if failures:
            raise next(iter(failures.values()))
        return refresh_error, False

    @api.model
    def _saltedge_fetch_key(self, remote):
        """Where Salt Edge's fetch of ``remote`` (a connection it answered) stands: its
        last attempt, how many stages it went through, and whether it is finished. Equal
        keys: nothing Salt Edge fetched since (no new account, no new stage)."""
        attempt = remote.get("last_attempt") or {}
        stages = attempt.get("stages") if isinstance(attempt.get("stages"), list) else []
        return f"{attempt.get('id')}:{len(stages)}:{bool(attempt.get('finished'))}"

    def _import_goes_on_after(self, account, error, commit):
        """Whether the run goes on with the other accounts after ``account`` failed with
        ``error`` (logged here; its failed page was rolled back by its step). Not when the
        error is the connection's (every account would fail the same way), nor when
        another run took the connection's lock after the rollback."""
        if isinstance(error, (SaltEdgeError, UserError)):
            _logger.warning(
                "Bank connection %s: the import of account %s failed: %s",
                self.id,
                account.id,
                self._import_error_text(error),
            )
        else:
            _logger.warning(
                "Bank connection %s: the import of account %s failed.",
                self.id,
                account.id,
                exc_info=error,
            )
        if isinstance(error, SaltEdgeError) and (error.needs_user or error.is_configuration_error):
            return False
        # A committed step that failed rolled its transaction back, and the lock with it:
        # take it again before the next account, as after any failed step. (Held still when
        # the failure came between two steps: taking it again is then a no-op.)
        return not commit or self._lock_for_import()

    def _saltedge_started_from(self):
        """The journal the last connect of this connection was started from: accounts that
        Salt Edge lists only after the return are linked to it as at the return."""
        session = (
            self.env["account.bank.connect.session"]
            .sudo()
            .search(
                [("connection_id", "=", self.id), ("journal_id", "!=", False)],
                order="id desc",
                limit=1,
            )
        )
        return session.journal_id

    def _saltedge_confirm(self, client):
        """Read the connection from Salt Edge before importing: it must still be the
        company's customer's, its status and consent decide the state (a failed fetch
        alone never does), and its last attempt says where the fetch is. Returns it."""
        remote = client.get_connection(self.saltedge_connection_id)
        self._saltedge_check_customer(remote)
        if (
            self.state != "connected"
            or remote.get("status") in const.STATUS_NEEDS_USER
            or str(remote.get("last_consent_id") or "") != (self.saltedge_consent_id or "")
        ):
            self._saltedge_update_consent(client, remote)
        possible = parse_saltedge_datetime(remote.get("next_refresh_possible_at"))
        if (self.next_refresh_possible_at or None) != possible:
            self.next_refresh_possible_at = possible
        self._saltedge_note_fetch(remote)
        return remote

    def _request_refresh(self, client, trigger):
        """Ask Salt Edge for a background refresh when it makes sense, never more than the
        bank allows (PSD2: four a day without the user).

        Not when Salt Edge refreshes by itself (automatic refresh, the default) and this
        is a scheduled run; not within the refresh interval (6 h), which alone keeps Odoo
        within four a day. Salt Edge's ``next_refresh_possible_at`` is kept on the
        connection and shown, but not compared with Odoo's clock (it is Salt Edge's); a
        refresh asked before it is refused with ConnectionCannotBeRefreshed, quietly.
        "Not now" and "a fetch is running" answers are no error: the run imports what
        Salt Edge has, and the ``success`` callback of the fetch asks for the next import.
        Returns the error of a refresh that failed otherwise (the run goes on too), else
        None.
        """
        params = self.env["ir.config_parameter"].sudo()
        if trigger != "manual" and (
            params.get_param(const.PARAM_AUTOMATIC_REFRESH) or trigger in ("callback", "first")
        ):
            return None
        hours = float(
            params.get_param(const.PARAM_REFRESH_INTERVAL_HOURS)
            or const.DEFAULT_REFRESH_INTERVAL_HOURS
        )
        now = fields.Datetime.now()
        if self.last_refresh_request and self.last_refresh_request > now - timedelta(hours=hours):
            return None
        try:
            client.background_refresh(self.saltedge_connection_id)
        except SaltEdgeError as error:
            if error.is_in_progress:
                self.fetch_finished = False
                return None
            if error.needs_user:
                if error.needs_reconnect or error.is_connection_not_found:
                    raise
                # The bank wants the user: offer Refresh at the bank, import what is there.
                self.refresh_needs_user = True
                return error
            if error.is_configuration_error:
                raise
            if error.is_refresh_not_now:
                _logger.info(
                    "Bank connection %s: Salt Edge cannot refresh now (%s, next possible at %s); "
                    "importing what it has.",
                    self.id,
                    error.error_class,
                    error.next_refresh_possible_at or "?",
                )
                self.next_refresh_possible_at = parse_saltedge_datetime(
                    error.next_refresh_possible_at
                )
                if error.error_class == "BackgroundFetchLimitExceeded":
                    self.last_refresh_request = now
                return None
            _logger.warning(
                "Bank connection %s: the refresh failed (%s); importing what Salt Edge has.",
                self.id,
                error,
            )
            return error
        self.write(
            {"last_refresh_request": now, "fetch_finished": False, "refresh_needs_user": False}
        )
        return None

    def _flag_balance_mismatch(self, notes):
        """Say on the connection (and once on the chatter) that a journal and the bank
        disagree, or that they agree again."""
        note = "\n".join(notes) or False
        if note == (self.balance_mismatch_note or False):
            return
        if note:
            _logger.warning("Bank connection %s: balance mismatch: %s", self.id, note)
            self.message_post(
                body=self.env._(
                    "After the import the journal balance differs from the bank's: %s", note
                )
            )
        elif self.balance_mismatch:
            self.message_post(body=self.env._("The journal balances match the bank's again."))
        self.write({"balance_mismatch": bool(note), "balance_mismatch_note": note})

    def _post_skipped_transactions(self, count, notes):
        """Say on the chatter, once for the ``count`` transactions a run skipped, which
        they are (``notes``: the first of them, a line each)."""
        if not count:
            return
        listed = "; ".join(notes[: const.SKIPPED_MESSAGE_LINES])
        if count == 1:
            body = self.env._("1 transaction could not be imported: %(list)s.", list=listed)
        else:
            body = self.env._(
                "%(count)s transactions could not be imported: %(list)s.",
                count=count,
                list=listed,
            )
        if count > const.SKIPPED_MESSAGE_LINES:
            body += " " + self.env._("The import history lists them.")
        body += " " + self.env._(
            "They are not in the journal: book them by hand if the bank did book them."
        )
        self.message_post(body=body)

    # ------------------------------------------------------------------------------------
    # Errors
    # ------------------------------------------------------------------------------------

    @api.model
    def _import_error_text(self, error):
        if isinstance(error, SaltEdgeError):
            text = str(error)
        elif isinstance(error, UserError):
            text = error.args[0]
        else:
            text = f"{type(error).__name__}: {error}"
        return text[:ERROR_TEXT_LIMIT]

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
        if self.last_error != text:
            self.message_post(body=self._import_error_sentence(error))
        self.last_error = text
        if isinstance(error, SaltEdgeError) and error.is_consent_expired:
            self._mark_expired(revoked=error.is_consent_revoked)


class AccountBankConnectionAccount(models.Model):
    _inherit = "account.bank.connection.account"

    first_sync_done = fields.Boolean(
        copy=False,
        readonly=True,
        help="The whole history the consent covers was imported once and the opening "
        "balance set.",
    )
    journal_had_lines = fields.Boolean(
        string="Journal had its own lines",
        copy=False,
        readonly=True,
        help="The journal already had statement lines when this account was linked to it: "
        "no opening line is booked then, a difference shows as a balance mismatch.",
    )
    opening_line_id = fields.Many2one(
        "account.bank.statement.line",
        string="Opening line",
        copy=False,
        readonly=True,
        ondelete="set null",
        help="The line that makes the journal's balance the bank's on the first import.",
    )

    def _import_pages(self, client, counts, commit, run, deadline=None):
        """Stream this account's posted transactions into its journal, page by page from
        the cursor (from the consent's start the first time). Each page's step also writes
        the run's counts, so a long run shows its progress (the waiting page's count).
        Returns True when the ``deadline`` stopped it before the last page."""
        self.ensure_one()
        connection = self.connection_id
        # Foreign currencies met so far (code: res.currency), kept from one page to the
        # next once the page that found them is in: a page rolled back takes its
        # currency's activation with it.
        currencies = {}
        for items, next_id in client.iter_transaction_pages(
            connection.saltedge_connection_id,
            self.saltedge_account_id,
            from_id=self.last_transaction_id or None,
        ):
            if deadline is not None and not counts.fetched:
                # The very first page of a waiting page's import: its first lines are
                # committed on their own, on screen at once.
                chunks = [items[:FIRST_CHUNK], items[FIRST_CHUNK:]]
            else:
                chunks = [items]
            for chunk in filter(None, chunks):
                # A chunk's counts (and the currencies it found) count once it is in.
                page = ImportCounts()
                found = dict(currencies)
                try:
                    with connection._import_step(commit):
                        self._import_page(chunk, page, found)
                        total = ImportCounts(**vars(counts))
                        total.add(page)
                        run.write(total.as_vals())
                except ImportHandedOver:
                    counts.add(page)
                    raise
                counts.add(page)
                currencies = found
            if next_id and deadline is not None and time.monotonic() >= deadline:
                return True
        return False

    def _import_page(self, items, counts, currencies):
        """Create the lines of one page that the journal does not have yet, and move the
        cursor past the page. Pending transactions wait until they are posted.

        Only cleaned values reach the database (see saltedge_transactions): a transaction
        that cannot become a line (no usable id, date or amount, or a line the database
        refuses) is skipped and said on the run, and the cursor moves past it all the
        same, so that it never blocks the account."""
        counts.fetched += len(items)
        # Salt Edge sends the cursor's own transaction again, first: skipped, it was said
        # when it was read the first time.
        previous_cursor = self.last_transaction_id
        posted = {}
        for item in items:
            if is_pending(item):
                counts.pending += 1
            elif is_marked_duplicate(item):
                counts.duplicates += 1
            else:
                try:
                    transaction = clean_transaction(item)
                except InvalidTransaction as invalid:
                    if previous_cursor and invalid.transaction_id == previous_cursor:
                        counts.duplicates += 1
                    else:
                        self._skip(counts, invalid.shown_id, invalid.shown_date, invalid.reason)
                    continue
                if transaction["id"] in posted:
                    counts.duplicates += 1
                else:
                    posted[transaction["id"]] = transaction
        known = self._known_transaction_ids(list(posted))
        fresh = {key: transaction for key, transaction in posted.items() if key not in known}
        counts.duplicates += len(posted) - len(fresh)
        matched = self._match_earlier_lines(fresh)
        counts.matched += len(matched)
        vals_list = [
            self._statement_line_vals(transaction, currencies)
            for key, transaction in fresh.items()
            if key not in matched
        ]
        if vals_list:
            self._create_lines(vals_list, counts)
        cursor = self._page_cursor(items)
        if cursor:
            self.last_transaction_id = cursor

    def _create_lines(self, vals_list, counts):
        """Create the statement lines of one page: one ``create()`` for the page.

        When the database refuses a value that passed every check, the page is created
        again line by line, each in a savepoint, and only the lines it refuses are skipped
        (with its reason). When it refuses every line of a page of several, the cause is no
        value but the setup: the page fails, nothing is skipped."""
        journal = self.journal_id
        Line = self.env["account.bank.statement.line"].sudo().with_company(journal.company_id)
        try:
            # The savepoint's flush makes the database's refusal happen here, not later.
            with self.env.cr.savepoint():
                Line.create(vals_list)
        except REFUSED_VALUE_ERRORS:
            _logger.info(
                "Bank connection %s, account %s: the database refused a page of %s lines; "
                "creating them one by one.",
                self.connection_id.id,
                self.id,
                len(vals_list),
            )
        else:
            counts.created += len(vals_list)
            return
        refused = []
        for vals in vals_list:
            try:
                with self.env.cr.savepoint():
                    Line.create(vals)
            except psycopg2.errors.UniqueViolation as error:
                if error.diag.constraint_name != const.LINE_UNIQUE_CONSTRAINT:
                    refused.append((vals, error))
                else:
                    # Another transaction created it meanwhile: it is in the journal once.
                    counts.duplicates += 1
            except REFUSED_VALUE_ERRORS as error:
                refused.append((vals, error))
            else:
                counts.created += 1
        if len(vals_list) > 1 and len(refused) == len(vals_list):
            raise refused[0][1]
        for vals, error in refused:
            self._skip(
                counts, vals["saltedge_transaction_id"], vals["date"], None, database_error=error
            )

    def _skip(self, counts, shown_id, shown_date, reason, database_error=None):
        """Count a transaction that cannot become a line, with a line of text that names it
        (its Salt Edge id and date as received) and says why (``reason``: one of
        saltedge_transactions' NO_*, or the database's ``database_error``)."""
        if database_error is not None:
            reason_text = self.env._(
                "refused by the database: %s", self._database_reason(database_error)
            )
        else:
            reason_text = {
                NO_ID: self.env._("no valid id"),
                NO_DATE: self.env._("no valid date"),
                NO_AMOUNT: self.env._("no valid amount"),
            }.get(reason) or self.env._("not a transaction")
        note = self.env._(
            "%(id)s of %(date)s (%(reason)s)", id=shown_id, date=shown_date, reason=reason_text
        )
        _logger.warning(
            "Bank connection %s, account %s: transaction skipped: %s",
            self.connection_id.id,
            self.id,
            note,
        )
        counts.skip(note)

    @api.model
    def _database_reason(self, error):
        """The database's reason for refusing a line, without the refused row (which its
        DETAIL repeats)."""
        diag = getattr(error, "diag", None)
        text = (diag and diag.message_primary) or str(error).split("\n", 1)[0]
        return display(text, const.DATABASE_REASON_LIMIT)

    def _match_earlier_lines(self, transactions):
        """Match ``transactions`` (Salt Edge id -> transaction, none known in the journal)
        to the journal's lines that came from elsewhere: a file import (CODA, CSV), a manual
        line, a former connection of the same bank account (whose Salt Edge ids differ).

        By date and amount, and by counts: each earlier line matches one transaction at
        most, so two equal payments on one day are two lines, and a third equal one that
        the journal did not have is created. A matched line takes the transaction's Salt
        Edge id, so later runs know it. Returns {Salt Edge id: line id}.
        """
        if not transactions:
            return {}
        # Lines matched or created earlier in this transaction must be seen by the query
        # (plain SQL carries no field metadata for execute_query to flush by itself).
        self.env["account.bank.statement.line"].flush_model()
        self.env["account.move"].flush_model(["date"])
        days = sorted({transaction["made_on"] for transaction in transactions.values()})
        # Rows fetched with the query, before anything else may use the cursor: the ORM
        # reading a cold record (the journal's currency below) runs its own query on it.
        rows = self.env.execute_query(
            SQL(
                "SELECT line.id, move.date, line.amount FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id "
                "WHERE line.journal_id = %s AND move.date = ANY(%s::date[]) "
                "AND (line.saltedge_account_id IS NULL OR line.saltedge_account_id != %s) "
                "AND (line.saltedge_transaction_id IS NULL "
                "     OR line.saltedge_transaction_id NOT LIKE %s) "
                "ORDER BY line.id",
                self.journal_id.id,
                days,
                self.saltedge_account_id,
                OPENING_KEY % "%",
            )
        )
        currency = self._journal_currency()
        pools = {}
        for line_id, day, amount in rows:
            pools.setdefault((day.isoformat(), currency.round(amount)), []).append(line_id)
        matched = {}
        for key, transaction in transactions.items():
            amount = currency.round(float(transaction.get("amount") or 0.0))
            pool = pools.get((transaction["made_on"], amount))
            if pool:
                matched[key] = pool.pop(0)
        if matched:
            Line = self.env["account.bank.statement.line"].sudo()
            for key, line_id in matched.items():
                Line.browse(line_id).write(
                    {
                        "saltedge_transaction_id": key,
                        "saltedge_account_id": self.saltedge_account_id,
                    }
                )
        return matched

    def _known_transaction_ids(self, transaction_ids):
        if not transaction_ids:
            return set()
        self.env["account.bank.statement.line"].flush_model(["saltedge_transaction_id"])
        rows = self.env.execute_query(
            SQL(
                "SELECT saltedge_transaction_id FROM account_bank_statement_line "
                "WHERE journal_id = %s AND saltedge_transaction_id = ANY(%s)",
                self.journal_id.id,
                transaction_ids,
            )
        )
        return {row[0] for row in rows}

    @api.model
    def _page_cursor(self, items):
        """The largest id of the page (Salt Edge's ids grow), where the next run resumes."""
        ids = [clean_id(item.get("id")) for item in items if isinstance(item, dict)]
        ids = [value for value in ids if value]
        if not ids:
            return None
        if all(value.isdigit() for value in ids):
            return max(ids, key=int)
        return ids[-1]

    def _statement_line_vals(self, transaction, currencies):
        """The statement line of one Salt Edge transaction, as ``clean_transaction``
        returns it: every value was checked and cleaned there."""
        extra = transaction["extra"]
        amount = transaction["amount"]
        # Money in comes from the payer, money out goes to the payee.
        side = "payer" if amount > 0 else "payee"
        vals = {
            "journal_id": self.journal_id.id,
            "date": transaction["made_on"],
            "amount": amount,
            "payment_ref": self._payment_ref(transaction, extra),
            "partner_name": extra[side] or False,
            "account_number": self._counterparty_account(extra, side),
            "saltedge_transaction_id": transaction["id"],
            "saltedge_account_id": self.saltedge_account_id,
        }
        # A code is three letters (or None): nothing else is looked up.
        code = extra["original_currency_code"]
        original = extra["original_amount"]
        journal_currency = self.journal_id.currency_id or self.journal_id.company_id.currency_id
        if code and original is not None and code != journal_currency.name:
            if code not in currencies:
                currencies[code] = self._foreign_currency(code)
            if currencies[code]:
                vals["foreign_currency_id"] = currencies[code].id
                vals["amount_currency"] = math.copysign(abs(original), amount or 1.0)
        return vals

    def _foreign_currency(self, code):
        """The currency ``code``, activated when it is not: Odoo posts no line in an
        inactive currency, and without it the original amount would be lost. Said once on
        the connection's chatter."""
        currency = (
            self.env["res.currency"]
            .sudo()
            .with_context(active_test=False)
            .search([("name", "=", code)], limit=1)
        )
        if currency and not currency.active:
            currency.active = True
            _logger.info(
                "Currency %s activated for bank connection %s", code, self.connection_id.id
            )
            self.connection_id.message_post(
                body=self.env._(
                    "The bank sent transactions in %s: that currency was activated to keep "
                    "their original amounts.",
                    code,
                )
            )
        return currency.with_env(self.env)

    @api.model
    def _payment_ref(self, transaction, extra):
        """The bank's description as it is: a Belgian structured communication
        (+++123/4567/89012+++) must stay intact for the reconciliation to find the invoice.
        The remittance information is added when the description lacks it."""
        description = transaction["description"]
        information = extra["information"]
        if information and information not in description and "+++" in information:
            description = f"{description} {information}".strip()
        return description or information or "/"

    def _counterparty_account(self, extra, side):
        """The counterparty's IBAN: Salt Edge puts it in payer/payee_information or in
        account_number; our own account's IBAN is never the counterparty. ``extra`` is a
        cleaned one (see ``_statement_line_vals``): text, "" when missing."""
        own = self._normalize_iban(self.iban)
        for candidate in (extra[f"{side}_information"], extra["account_number"]):
            value = self._normalize_iban(candidate)
            if value and value != own and IBAN_PATTERN.match(value):
                return value
        return False

    # ------------------------------------------------------------------------------------
    # Balances
    # ------------------------------------------------------------------------------------

    def _journal_balance(self):
        """The sum of the journal's posted statement lines, in the journal's currency."""
        self.env.flush_all()
        [(balance,)] = self.env.execute_query(
            SQL(
                "SELECT COALESCE(SUM(line.amount), 0) FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id "
                "WHERE line.journal_id = %s AND move.state = 'posted'",
                self.journal_id.id,
            )
        )
        return balance

    def _journal_currency(self):
        return self.journal_id.currency_id or self.journal_id.company_id.currency_id

    def _finish_first_sync(self):
        """After the first complete import: an opening line for what the bank had before
        the oldest imported transaction, so the journal's balance is the bank's. Returns
        ``(created, balanced)``: the number of lines created (0 or 1), and whether the
        journal's balance is the bank's by construction now (then the balance check has
        nothing to sum again)."""
        self.ensure_one()
        if self.first_sync_done:
            return 0, False
        self.first_sync_done = True
        if self.journal_had_lines:
            # The journal has its own history (file imports, a former connection): an
            # opening line would silently absorb any difference. A difference shows as the
            # balance mismatch instead.
            return 0, False
        currency = self._journal_currency()
        difference = currency.round(self.balance - self._journal_balance())
        if currency.is_zero(difference):
            return 0, True
        [(oldest,)] = self.env.execute_query(
            SQL(
                "SELECT MIN(move.date) FROM account_bank_statement_line line "
                "JOIN account_move move ON move.id = line.move_id WHERE line.journal_id = %s",
                self.journal_id.id,
            )
        )
        line = (
            self.env["account.bank.statement.line"]
            .sudo()
            .with_company(self.journal_id.company_id)
            .create(
                {
                    "journal_id": self.journal_id.id,
                    "date": (oldest - timedelta(days=1)) if oldest else fields.Date.today(),
                    "amount": difference,
                    "payment_ref": self.env._("Opening balance (%s)", self.connection_id.name),
                    "saltedge_transaction_id": OPENING_KEY % self.saltedge_account_id,
                }
            )
        )
        self.opening_line_id = line
        return 1, True

    def _balance_difference_note(self):
        """A sentence when the journal's balance is not the bank's, else False."""
        self.ensure_one()
        if not self.first_sync_done:
            return False
        currency = self._journal_currency()
        journal_balance = self._journal_balance()
        if not currency.compare_amounts(journal_balance, self.balance):
            return False
        return self.env._(
            "%(journal)s shows %(odoo)s, the bank %(bank)s (difference %(difference)s).",
            journal=self.journal_id.display_name,
            odoo=formatLang(self.env, journal_balance, currency_obj=currency),
            bank=formatLang(self.env, self.balance, currency_obj=currency),
            difference=formatLang(self.env, self.balance - journal_balance, currency_obj=currency),
        )

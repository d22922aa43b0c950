"""What one import run of a bank connection does between its first and its last step:
confirm the connection with Salt Edge, import every linked account, then (once Salt
Edge's fetch has finished) the opening lines and the balance check; and what the run says
on the chatter. The run itself (lock, steps, resume, errors) is in
``account_bank_connection_import``.
"""

import logging
import time

from odoo import fields, models
from odoo.exceptions import UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as PG_CONCURRENCY_EXCEPTIONS

from ..odoo_series import commit_progress
from ..saltedge_client import SaltEdgeError
from . import const
from .account_bank_connection_import import ImportHandedOver
from .utils import write_changed

_logger = logging.getLogger(__name__)


class AccountBankConnection(models.Model):
    _inherit = "account.bank.connection"

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
            # Whichever run of this connection comes next resumes this one; when stopped,
            # the rest follows in the background, page or no page.
            write_changed(
                self, {"resume_run_id": run.id, **({"import_requested": True} if stopped else {})}
            )
            if stopped:
                self._trigger_requested_import()
        elif locked:
            write_changed(self, {"resume_run_id": False})
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
            commit_progress(self.env)
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
                # Until this run has imported everything, the next hourly run reads it.
                write_changed(self, {"import_requested": False, "saltedge_idle_key": False})
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
                write_changed(run, {"saltedge_fetch_key": key})
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
                    # The history is whole now: its lines go into their statements.
                    account._saltedge_file_statements()
                    note = not balanced and account._balance_difference_note()
                    if note:
                        notes.append(note)
                if not failures:
                    # With an account imported halfway the balances say nothing new.
                    self._flag_balance_mismatch(notes)
                    if not light:
                        # Everything Salt Edge had when the run read it: the hourly run
                        # reads the connection again once its entry says otherwise.
                        write_changed(self, {"saltedge_idle_key": self._saltedge_idle_key(remote)})
        counts.openings = openings
        if failures:
            raise next(iter(failures.values()))
        return refresh_error, False

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
        elif self.balance_mismatch_note:
            self.message_post(body=self.env._("The journal balances match the bank's again."))
        self.balance_mismatch_note = note

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

"""make bench: one phase of the benchmark, on a database of one size (scripts/bench.sh).

Run through scripts/odoo_script.py (``env`` is given), once per phase and repetition, each
a process of its own so that one phase's memory never counts in another's peak. The
database holds ten connections to the sandbox's ``fakebank_oauth_with_n_transactions_xf``
(one account of ``BENCH_N``/10 transactions each, pages of 100). ``BENCH_PHASE``:

``setup``
    the ten connections, made once;
``import``
    the scheduled import (``_cron_import_transactions``: HTTP, signatures, deduplication,
    a commit per page, the opening lines and the balance checks) of the ten accounts, each
    into a new journal;
``baseline``
    the same shape of work without our code: the same line dicts (made by the import's own
    ``_statement_line_vals`` from the same transactions, outside the timer), ten new
    journals, one ``create()`` per page of 100 with a commit after each, and the same
    opening line per journal that the import books (one ``create()`` and a commit each),
    so that both leave the same lines in the journals;
``reimport``
    right after ``import``: the same N again from the consent's start (cursors reset), all
    duplicates;
``first``
    the first import as the waiting page runs it after a connect: the page's first slice
    of each connection (``FIRST_SLICE_SECONDS``, a commit per page), while another
    connection to the database watches for the first committed line (the time to first
    line on screen), then the rest in the background (the requested-import scheduled
    action), into new journals;
``single``
    for reference only, one ``create()`` of all N line dicts into one new journal.

Each timed phase writes ``<phase>-<repetition>.json`` (seconds, queries, peak memory, and
the CPU seconds of this Odoo process, of PostgreSQL and of the sandbox over the timed
part); scripts/bench_report.py reads them all.
"""

import cProfile
import ctypes
import gc
import json
import os
import sys
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import odoo
from odoo import fields

from odoo.addons.account_bank_connection.models import const
from odoo.addons.account_bank_connection.saltedge_client import SaltEdgeClient
from odoo.addons.account_bank_connection.saltedge_transactions import clean_transaction
from odoo.addons.account_bank_connection.sandbox import complete_connect

PROVIDER = "fakebank_oauth_with_n_transactions_xf"
ACCOUNTS = 10
PAGE_SIZE = 100

env = globals()["env"]  # given by odoo_script.py
N = int(os.environ["BENCH_N"])
RESULTS = os.environ["BENCH_RESULTS"]
PHASE = os.environ["BENCH_PHASE"]
REPETITION = os.environ.get("BENCH_REPETITION", "1")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def say(text):
    print(text, flush=True)


def save(**values):
    with open(os.path.join(RESULTS, f"{PHASE}-{REPETITION}.json"), "w") as handle:
        json.dump({"phase": PHASE, "repetition": int(REPETITION), "n": N, **values}, handle)


# --- what the machine spent ----------------------------------------------------------


def reset_peak_memory():
    """Start a new peak (VmHWM) from what the process holds now; Linux only."""
    env.invalidate_all()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        say("note: cannot reset the memory peak; it covers the whole process")


def peak_memory_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def count_queries():
    # Odoo counts every query of every cursor of this thread here.
    return threading.current_thread().query_count


def proc_stat(pid):
    """(parent pid, own CPU seconds, CPU seconds of its reaped children) of a process."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # After the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return int(fields[1]), own, reaped


def postgres_cpu():
    """CPU seconds of the private PostgreSQL cluster: the postmaster, its live children
    (the backends, the writers) and the children it reaped. None with another server."""
    postmaster = os.environ.get("BENCH_PG_PID")
    if not postmaster:
        return None
    postmaster = int(postmaster)
    _ppid, total, reaped = proc_stat(postmaster)
    total += reaped
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid, own, _reaped = proc_stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue
            if ppid == postmaster:
                total += own
    return total


def sandbox_cpu():
    pid = os.environ.get("BENCH_SANDBOX_PID")
    if not pid:
        return None
    _ppid, own, reaped = proc_stat(int(pid))
    return own + reaped


class Meter:
    """Wall time, this process's CPU, PostgreSQL's and the sandbox's, and queries."""

    def __enter__(self):
        reset_peak_memory()
        self.profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
        self.queries = count_queries()
        self.cpu = (time.process_time(), postgres_cpu(), sandbox_cpu())
        self.started = time.perf_counter()
        if self.profile:
            self.profile.enable()
        return self

    def __exit__(self, *exc):
        if self.profile:
            self.profile.disable()
            self.profile.dump_stats(os.path.join(RESULTS, f"{PHASE}-{REPETITION}.prof"))
        self.seconds = time.perf_counter() - self.started
        after = (time.process_time(), postgres_cpu(), sandbox_cpu())
        self.queries = count_queries() - self.queries
        self.peak = peak_memory_mb()
        names = ("odoo", "postgresql", "sandbox")
        self.cpu_seconds = {
            name: (round(end - start, 2) if start is not None and end is not None else None)
            for name, start, end in zip(names, self.cpu, after, strict=True)
        }

    def values(self):
        return {
            "seconds": self.seconds,
            "queries": self.queries,
            "peak_mb": self.peak,
            "cpu_seconds": self.cpu_seconds,
        }


# --- the database ----------------------------------------------------------------------


def client():
    with open(os.environ["BENCH_PRIVATE_KEY"]) as handle:
        private_key = handle.read()
    return SaltEdgeClient(
        os.environ["BENCH_API_URL"],
        os.environ["BENCH_APP_ID"],
        os.environ["BENCH_SECRET"],
        private_key_pem=private_key,
    )


def new_journals(prefix):
    """Ten new bank journals, one per account, named for the phase and repetition."""
    Journal = env["account.journal"]
    return [
        Journal.create(
            {
                "name": f"Bench {PHASE} {REPETITION}.{index}",
                "code": f"{prefix}{REPETITION}{index - 1}",
                "type": "bank",
            }
        )
        for index in range(1, ACCOUNTS + 1)
    ]


def bench_accounts():
    connections = env["account.bank.connection"].search([("provider_code", "=", PROVIDER)])
    return connections.account_ids.sorted("id")


def fresh_start(prefix):
    """Point the ten accounts at new journals, from the consent's start, as just linked."""
    accounts = bench_accounts()
    for account, journal in zip(accounts, new_journals(prefix), strict=False):
        account.write(
            {
                "journal_id": journal.id,
                "last_transaction_id": False,
                "first_sync_done": False,
                "journal_had_lines": False,
            }
        )
    accounts.connection_id.write({"resume_run_id": False, "import_requested": False})
    env.cr.commit()
    return accounts


def lines_in(journals):
    return env["account.bank.statement.line"].search_count(
        [("journal_id", "in", journals.ids), ("saltedge_transaction_id", "not like", "opening:%")]
    )


def check_all_in(accounts, what):
    imported = lines_in(accounts.journal_id)
    if imported != N:
        say(f"error: {what} made {imported} lines, not {N}")
        sys.exit(2)


# --- the phases ------------------------------------------------------------------------


def setup():
    """Odoo talking to the sandbox, ten connections of one account each."""
    saltedge = client()
    params = env["ir.config_parameter"].sudo()
    params.set_param(const.PARAM_BASE_URL, os.environ["BENCH_API_URL"])
    params.set_param(const.PARAM_APP_ID, os.environ["BENCH_APP_ID"])
    env["account.bank.credential"]._set(const.PARAM_SECRET, os.environ["BENCH_SECRET"])
    with open(os.environ["BENCH_PRIVATE_KEY"]) as handle:
        env["account.bank.credential"]._set(const.PARAM_PRIVATE_KEY, handle.read())
    params.set_param(const.PARAM_INCLUDE_SANDBOXES, "True")
    customer_id = saltedge.create_customer(f"bench-{os.getpid()}")["id"]
    # The import confirms each connection belongs to the company's Salt Edge customer.
    env.company.sudo().saltedge_customer_id = str(customer_id)
    Connection = env["account.bank.connection"]
    for index in range(1, ACCOUNTS + 1):
        answer = saltedge.create_connect_session(
            customer_id, "http://localhost/bench-return", provider_code=PROVIDER
        )
        back = parse_qs(urlparse(complete_connect(answer["connect_url"])).query)
        connection = Connection.create(
            {
                "name": f"Bench bank {index}",
                "saltedge_connection_id": back["connection_id"][0],
                "saltedge_customer_id": str(customer_id),
                "provider_code": PROVIDER,
                "state": "connected",
            }
        )
        connection._saltedge_update_consent(saltedge)
        connection._saltedge_sync_accounts(saltedge)
    env.cr.commit()
    say(f"{len(bench_accounts())} accounts of {N // ACCOUNTS} transactions each")


def run_import():
    accounts = fresh_start("BI")
    before = env["account.bank.import.run"].search([]).ids
    with Meter() as meter:
        env["account.bank.connection"]._cron_import_transactions()
    runs = env["account.bank.import.run"].search([("id", "not in", before)])
    if set(runs.mapped("state")) != {"done"}:
        say(f"error: the import failed: {runs.mapped('error')}")
        sys.exit(2)
    check_all_in(accounts, "the import")
    say(f"import: {N} lines in {meter.seconds:.2f} s, {meter.queries} queries")
    save(**meter.values())


def transaction_pages(accounts):
    """The line dicts the import makes, page by page as Salt Edge sends them."""
    saltedge = client()
    pages = []
    currencies = {}
    for account in accounts:
        for items, _next_id in saltedge.iter_transaction_pages(
            account.connection_id.saltedge_connection_id, account.saltedge_account_id
        ):
            pages.append(
                (
                    account,
                    [
                        account._statement_line_vals(clean_transaction(item), currencies)
                        for item in items
                    ],
                )
            )
    return pages


def opening_vals(account, lines):
    """The opening line the import books after an account's first complete import (the
    bank's balance less the lines, the day before the oldest), or None when they agree."""
    currency = account._journal_currency()
    difference = currency.round(account.balance - sum(vals["amount"] for vals in lines))
    if currency.is_zero(difference):
        return None
    oldest = min(fields.Date.to_date(vals["date"]) for vals in lines)
    return {
        "journal_id": lines[0]["journal_id"],
        "date": oldest - timedelta(days=1),
        "amount": difference,
        "payment_ref": env._("Opening balance (%s)", account.connection_id.name),
        "saltedge_transaction_id": const.OPENING_KEY % account.saltedge_account_id,
    }


def baseline():
    """The import's shape without the import: the same lines (the transactions, and each
    journal's opening line), the same pages, journals and commits."""
    accounts = bench_accounts()
    journal_of = dict(zip(accounts, new_journals("BB"), strict=False))
    pages, lines_of = [], {}
    for account, page in transaction_pages(accounts):
        page = [{**vals, "journal_id": journal_of[account].id} for vals in page]
        pages.append(page)
        lines_of.setdefault(account, []).extend(page)
    # As the import books them: one create each, after the last page, with a commit.
    openings = [opening_vals(account, lines) for account, lines in lines_of.items()]
    pages += [[vals] for vals in openings if vals]
    env.cr.commit()
    Line = env["account.bank.statement.line"].sudo().with_company(env.company)
    with Meter() as meter:
        for page in pages:
            Line.create(page)
            env.cr.commit()
    created = sum(len(page) for page in pages) - len(list(filter(None, openings)))
    if created != N:
        say(f"error: the baseline made {created} lines, not {N}")
        sys.exit(2)
    say(f"baseline: {created} lines in {meter.seconds:.2f} s, {meter.queries} queries")
    save(**meter.values())


def reimport():
    accounts = bench_accounts()
    accounts.write({"last_transaction_id": False})
    env.cr.commit()
    before = env["account.bank.import.run"].search([]).ids
    with Meter() as meter:
        env["account.bank.connection"]._cron_import_transactions()
    again = env["account.bank.import.run"].search([("id", "not in", before)])
    created = sum(again.mapped("created_count"))
    duplicates = sum(again.mapped("duplicate_count"))
    say(f"re-import: {duplicates} duplicates skipped, {created} created, in {meter.seconds:.2f} s")
    if created or lines_in(accounts.journal_id) != N:
        say("error: the re-import created lines")
        sys.exit(2)
    save(**meter.values())


class FirstLineWatcher(threading.Thread):
    """Another database connection, as the accountant's screen: when does the first line of
    the journals become visible (committed)?"""

    def __init__(self, journal_ids, started):
        super().__init__(daemon=True)
        self.journal_ids = journal_ids
        self.started = started
        self.seen_after = None
        self.stop = threading.Event()

    def run(self):
        connection = odoo.sql_db.db_connect(env.cr.dbname)
        with connection.cursor() as cr:
            while not self.stop.is_set():
                cr.execute(
                    "SELECT 1 FROM account_bank_statement_line WHERE journal_id = ANY(%s) "
                    "AND saltedge_transaction_id NOT LIKE %s LIMIT 1",
                    [self.journal_ids, "opening:%"],
                )
                if cr.fetchone():
                    self.seen_after = time.perf_counter() - self.started
                    return
                cr.rollback()
                time.sleep(0.01)


def first_import():
    """The waiting page's first slice of each connection, then the rest in the background."""
    accounts = fresh_start("BF")
    connections = accounts.connection_id
    with Meter() as meter:
        watcher = FirstLineWatcher(accounts.journal_id.ids, meter.started)
        watcher.start()
        first_connection = connections[0]
        first_connection._saltedge_first_import_run(
            commit=True, seconds=const.FIRST_SLICE_SECONDS, keep_open=True
        )
        first_slice_seconds = time.perf_counter() - meter.started
        watcher.join(timeout=60)
        watcher.stop.set()
        slice_peak = peak_memory_mb()
        for connection in connections[1:]:
            connection._saltedge_first_import_run(
                commit=True, seconds=const.FIRST_SLICE_SECONDS, keep_open=True
            )
        # The rest, in the background, as the requested-import scheduled action does.
        env["account.bank.connection"]._cron_import_requested()
    check_all_in(accounts, "the first import")
    if watcher.seen_after is None:
        say("error: no line was seen after the first slice")
        sys.exit(2)
    say(
        f"first import: first line after {watcher.seen_after:.2f} s, the first slice "
        f"{first_slice_seconds:.2f} s (peak {slice_peak:.0f} MB), all {N} in "
        f"{meter.seconds:.2f} s"
    )
    save(
        **meter.values(),
        first_line_seconds=watcher.seen_after,
        first_slice_seconds=first_slice_seconds,
        first_slice_peak_mb=slice_peak,
    )


def single_create():
    """For reference: one create of all N line dicts into one journal, then a commit."""
    accounts = bench_accounts()
    journal = new_journals("BS")[0]
    vals_list = [
        {**vals, "journal_id": journal.id}
        for _account, page in transaction_pages(accounts)
        for vals in page
    ]
    env.cr.commit()
    Line = env["account.bank.statement.line"].sudo().with_company(env.company)
    with Meter() as meter:
        Line.create(vals_list)
        env.cr.commit()
    say(f"single create: {len(vals_list)} lines in {meter.seconds:.2f} s")
    save(**meter.values())


threading.current_thread().query_count = 0
threading.current_thread().query_time = 0.0
{
    "setup": setup,
    "import": run_import,
    "baseline": baseline,
    "reimport": reimport,
    "first": first_import,
    "single": single_create,
}[PHASE]()

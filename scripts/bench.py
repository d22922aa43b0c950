"""make bench: the transaction import against a bare ORM create, on a fresh database.

Run by scripts/bench.sh through scripts/odoo_script.py (``env`` is given), once per phase
(``BENCH_PHASE``), each phase a process of its own so that one phase's memory never counts
in another's peak:

``setup``
    ten connections to the sandbox's ``fakebank_oauth_with_n_transactions_xf`` (one
    account of N/10 transactions each, pages of 100), each account linked to a fresh
    bank journal;
``import``
    the import: the scheduled action itself (a commit per page, HTTP, signatures,
    deduplication, opening lines, balance checks included), timed, its queries counted;
``first``
    the first import as the waiting page runs it after a connect (a commit per page), of
    the same ten accounts into fresh journals: its time and its peak memory, which must not
    grow with N;
``baseline``
    one bare ``account.bank.statement.line.create()`` of the same N line dicts into
    another fresh journal, timed with its commit;
``reimport``
    the same N again from the consent's start (cursors reset: all duplicates), timed;
    then the one JSON object, as the last line printed.

``peak_rss_mb`` is the highest resident memory of the import and re-import processes
(Odoo's registry included); the baseline, which holds all N records at once by design,
is only logged.
"""

import cProfile
import ctypes
import gc
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

from odoo.addons.account_bank_connection.models import const
from odoo.addons.account_bank_connection.saltedge_client import SaltEdgeClient
from odoo.addons.account_bank_connection.sandbox import complete_connect

PROVIDER = "fakebank_oauth_with_n_transactions_xf"
ACCOUNTS = 10
MAX_RATIO = 1.30
MAX_REIMPORT_SHARE = 0.10

env = globals()["env"]  # given by odoo_script.py
N = int(os.environ["BENCH_N"])
RESULTS = os.environ["BENCH_RESULTS"]


def say(text):
    print(text, flush=True)


def save(phase, **values):
    with open(os.path.join(RESULTS, f"{phase}.json"), "w") as handle:
        json.dump(values, handle)


def load(phase):
    with open(os.path.join(RESULTS, f"{phase}.json")) as handle:
        return json.load(handle)


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


def client():
    with open(os.environ["BENCH_PRIVATE_KEY"]) as handle:
        private_key = handle.read()
    return SaltEdgeClient(
        os.environ["BENCH_API_URL"],
        os.environ["BENCH_APP_ID"],
        os.environ["BENCH_SECRET"],
        private_key_pem=private_key,
    )


def bank_journal(name, code):
    return env["account.journal"].create({"name": name, "code": code, "type": "bank"})


def bench_accounts():
    connections = env["account.bank.connection"].search([("provider_code", "=", PROVIDER)])
    return connections.account_ids


def lines_in(journals):
    return env["account.bank.statement.line"].search_count(
        [("journal_id", "in", journals.ids), ("saltedge_transaction_id", "not like", "opening:%")]
    )


def timed_cron(phase):
    """The scheduled action as a worker runs it; returns (seconds, queries, peak MB).
    With BENCH_PROFILE=1 a cProfile of it lands in the work folder (slower)."""
    reset_peak_memory()
    queries = count_queries()
    profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
    started = time.perf_counter()
    if profile:
        profile.enable()
    env["account.bank.connection"]._cron_import_transactions()
    if profile:
        profile.disable()
        profile.dump_stats(os.path.join(RESULTS, f"{phase}.prof"))
    seconds = time.perf_counter() - started
    return seconds, count_queries() - queries, peak_memory_mb()


def setup():
    """Odoo talking to the sandbox, ten connections, their accounts each in a new journal."""
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
        connection.account_ids.journal_id = bank_journal(f"Bench {index}", f"BN{index:02d}")
    env.cr.commit()
    accounts = bench_accounts()
    say(f"{len(accounts)} accounts of {N // ACCOUNTS} transactions each, each in a new journal")


def run_import():
    journals = bench_accounts().journal_id
    seconds, queries, peak = timed_cron("import")
    imported = lines_in(journals)
    runs = env["account.bank.import.run"].search([])
    say(f"import: {imported} lines in {seconds:.2f} s, {queries} queries, peak {peak:.0f} MB")
    if imported != N or set(runs.mapped("state")) != {"done"}:
        say(f"error: the import made {imported} lines, not {N}: {runs.mapped('error')}")
        sys.exit(2)
    save("import", seconds=seconds, queries=queries, peak=peak)


def first_import():
    """The first import of each connection as the waiting page runs it, into new journals."""
    accounts = bench_accounts()
    for index, account in enumerate(accounts, 1):
        account.write(
            {
                "journal_id": bank_journal(f"Bench first {index}", f"BF{index:02d}").id,
                "last_transaction_id": False,
                "first_sync_done": False,
                "opening_line_id": False,
            }
        )
    env.cr.commit()
    reset_peak_memory()
    started = time.perf_counter()
    for connection in accounts.connection_id:
        connection._saltedge_first_import_run(commit=True)
    seconds = time.perf_counter() - started
    peak = peak_memory_mb()
    imported = lines_in(accounts.journal_id)
    say(f"first import: {imported} lines in {seconds:.2f} s, peak {peak:.0f} MB")
    if imported != N:
        say(f"error: the first import made {imported} lines, not {N}")
        sys.exit(2)
    save("first", seconds=seconds, peak=peak)


def baseline():
    """One bare create of the same N line dicts, in a fresh journal."""
    saltedge = client()
    journal = bank_journal("Bench baseline", "BNBL")
    currencies = {}
    vals_list = []
    for account in bench_accounts():
        for transaction in saltedge.list_transactions(
            account.connection_id.saltedge_connection_id, account.saltedge_account_id
        ):
            vals = account._statement_line_vals(transaction, currencies)
            vals["journal_id"] = journal.id
            vals_list.append(vals)
    env.cr.commit()
    reset_peak_memory()
    queries = count_queries()
    profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
    started = time.perf_counter()
    if profile:
        profile.enable()
    env["account.bank.statement.line"].create(vals_list)
    env.cr.commit()  # flushes, as the import's commits do
    if profile:
        profile.disable()
        profile.dump_stats(os.path.join(RESULTS, "baseline.prof"))
    seconds = time.perf_counter() - started
    queries = count_queries() - queries
    say(
        f"baseline: {len(vals_list)} lines in {seconds:.2f} s, {queries} queries, "
        f"peak {peak_memory_mb():.0f} MB"
    )
    save("baseline", seconds=seconds)


def reimport():
    accounts = bench_accounts()
    accounts.write({"last_transaction_id": False})
    env.cr.commit()
    before = env["account.bank.import.run"].search([]).ids
    seconds, _queries, peak = timed_cron("reimport")
    again = env["account.bank.import.run"].search([("id", "not in", before)])
    say(
        f"re-import: {sum(again.mapped('duplicate_count'))} duplicates skipped, "
        f"{sum(again.mapped('created_count'))} created, in {seconds:.2f} s, peak {peak:.0f} MB"
    )
    if lines_in(accounts.journal_id) != N or sum(again.mapped("created_count")):
        say("error: the re-import created lines")
        sys.exit(2)
    first, bare, waiting_page = load("import"), load("baseline"), load("first")
    result = {
        "transactions": N,
        "seconds": round(first["seconds"], 2),
        "baseline_seconds": round(bare["seconds"], 2),
        "ratio": round(first["seconds"] / bare["seconds"], 3),
        "queries_per_1000": round(first["queries"] * 1000 / N, 1),
        "reimport_seconds": round(seconds, 2),
        "peak_rss_mb": round(max(first["peak"], peak), 1),
        "first_import_seconds": round(waiting_page["seconds"], 2),
        "first_import_peak_rss_mb": round(waiting_page["peak"], 1),
    }
    missed = []
    if result["ratio"] > MAX_RATIO:
        missed.append(f"ratio {result['ratio']} > {MAX_RATIO}")
    if seconds > MAX_REIMPORT_SHARE * bare["seconds"]:
        missed.append(f"re-import {seconds:.2f} s > 10% of the baseline")
    for goal in missed:
        say(f"missed: {goal}")
    print(json.dumps(result), flush=True)
    if missed:
        sys.exit(1)


threading.current_thread().query_count = 0
threading.current_thread().query_time = 0.0
{
    "setup": setup,
    "import": run_import,
    "first": first_import,
    "baseline": baseline,
    "reimport": reimport,
}[os.environ["BENCH_PHASE"]]()

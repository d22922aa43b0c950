"""make loadtest: the CPU cost of a signed Salt Edge callback, as a ratio to a bare request.

Run by scripts/loadtest.sh once per phase (``LOADTEST_PHASE``):

``setup`` (through scripts/odoo_script.py, ``env`` given)
    the Salt Edge public key and the callback URL in the settings, ``LOADTEST_CONNECTIONS``
    connected bank connections with Salt Edge ids, the counters the check starts from, and
    the PID of PostgreSQL's postmaster (found from this cursor's backend), whose processes
    are measured;
``send`` (plain Python, Odoo running with ``LOADTEST_WORKERS`` workers)
    phases of ``LOADTEST_RATE`` requests a second for ``LOADTEST_SECONDS`` seconds each,
    against the same running server:

    - *callback* phases: each callback distinct and signed as Salt Edge signs them
      (RSA-SHA256 over ``"<callback URL>|<raw body>"``, with the sandbox's signer, written
      apart from the addon's verifier), to ``LOADTEST_CALLBACK_URL``. Each connection gets
      Salt Edge's real sequence, in order: notify start, connect, fetch_accounts,
      fetch_recent, finish, then success;
    - *bare* phases: the same number of Odoo's own ``/web/webclient/version_info``
      (``LOADTEST_BARE_URL``, a JSON-RPC call that reads no record), which must answer 200
      with a result: what any request to this server costs (the registry's check, the
      route's match, a transaction, the log line), and no more.

    First one second of each, not measured (the workers' caches fill), then bare,
    callbacks, bare, callbacks, ... bare: ``LOADTEST_REPEAT`` callback phases, each between
    two bare phases, so a server that warms up or a machine whose load drifts favours
    neither side. Every phase is sent by the same code, open loop: request ``i`` is due at
    ``start + i / rate`` whatever the answers before it, and its latency runs from that
    moment, so a slow server shows as latency, never as a gentler load. Around each phase
    the CPU time of Odoo's processes (the server's whole process tree: master, workers,
    the gevent process, and through their ``cutime``/``cstime`` the children already
    reaped) and of PostgreSQL's (the postmaster's tree: backends and background
    processes) is read from ``/proc``, right before the first request is sent and right
    after the last answer arrives. Between phases, one idle second is measured the same
    way. Then a replay of every tenth callback, which must all answer "duplicate";
``check`` (through odoo_script.py)
    the ledger holds one row per callback sent and nothing more, each with the handler's
    result; each success queued exactly one import trigger; no chatter line was written;
    every bare request answered a result; the CPU per callback (Odoo and PostgreSQL) is at
    most ``CPU_RATIO_GOAL`` times the CPU per bare request; then the one JSON object, as
    the last line printed. The rate served and the latencies are printed as information:
    they depend on the machine's cores and its other load; the ratio compares two kinds of
    request on the same server in the same minutes. Exit 1 when a check failed.
"""

import datetime
import http.client
import json
import os
import queue
import sys
import threading
import time
import urllib.parse

RESULTS = os.environ["LOADTEST_RESULTS"]
STAGES = ("start", "connect", "fetch_accounts", "fetch_recent", "finish")
# Salt Edge's sequence for one refresh of one connection: five notify, then success.
SEQUENCE = [("notify", stage) for stage in STAGES] + [("success", "finish")]
CUSTOMER_ID = "900001"
REPLAY_EVERY = 10
# The goal: a callback costs at most twice the CPU of a request that touches no record.
CPU_RATIO_GOAL = 2.0
IDLE_SECONDS = 1.0
# Before the first phase, the server must be idle: under 5 % of one core, Odoo and
# PostgreSQL together, over one second (Odoo starts its gevent process after /web/health
# answers, and that one loads for seconds). At most SETTLE_LIMIT seconds are waited.
SETTLE_SHARE = 0.05
SETTLE_LIMIT = 60.0
# What each kind of request must answer (with status 200).
EXPECTED = {"callback": "ok", "replay": "duplicate", "bare": "result"}
BARE_BODY = json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}}).encode()
# As many connections at once as Odoo's prefork server queues (listen(8 × workers)): more
# overflow the kernel's accept queue, whose dropped packets make a worker wait past its
# 2 s socket timeout and hang up without answering. A late send still counts its wait.
WORKERS = int(os.environ.get("LOADTEST_WORKERS") or 0)
CLIENT_THREADS = int(os.environ.get("LOADTEST_CLIENT_THREADS") or (8 * WORKERS or 64))


def say(text):
    print(text, flush=True)


def save(name, values):
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as handle:
        json.dump(values, handle)


def load(name):
    with open(os.path.join(RESULTS, f"{name}.json")) as handle:
        return json.load(handle)


def remote_id(index):
    return f"7{index:05d}"


# --- CPU of process trees, from /proc -----------------------------------------------------


def proc_stat(pid):
    """(ppid, utime + stime, cutime + cstime) in clock ticks, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: the fields follow the last ")".
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return None


class CpuMeter:
    """CPU seconds used so far by the process trees under the given roots.

    A tree's total is the sum, over its root and every living descendant, of the CPU the
    process used itself (utime + stime) and of what its children used that it reaped
    (cutime + cstime): a worker that exits between two readings moves from its own count
    to its parent's, so recycled workers and closed PostgreSQL backends stay counted.
    """

    def __init__(self, **roots):
        self.roots = roots
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self):
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = proc_stat(int(name))
                if stat:
                    stats[int(name)] = stat
        children = {}
        for pid, (ppid, _own, _reaped) in stats.items():
            children.setdefault(ppid, []).append(pid)
        totals = {}
        for label, root in self.roots.items():
            if root not in stats:
                raise RuntimeError(f"the {label} process {root} is gone")
            ticks, todo = 0, [root]
            while todo:
                pid = todo.pop()
                ticks += stats[pid][1] + stats[pid][2]
                todo.extend(children.get(pid, ()))
            totals[label] = ticks / self.tick
        totals["at"] = time.perf_counter()
        return totals


def cpu_used(before, after):
    return {label: round(after[label] - before[label], 4) for label in before}


def settle(meter):
    """Wait until the server is idle; the seconds waited, or None when it never was."""
    first = last = meter.read()
    while last["at"] - first["at"] < SETTLE_LIMIT:
        time.sleep(1.0)
        now = meter.read()
        used = cpu_used(last, now)
        if used["odoo"] + used["postgres"] < SETTLE_SHARE * used["at"]:
            return round(now["at"] - first["at"], 1)
        last = now
    return None


# --- setup (inside Odoo) ----------------------------------------------------------------


def postmaster_pid(env):
    """The PID of the PostgreSQL server this environment talks to, if it runs here."""
    from odoo.tools import SQL

    [(backend,)] = env.execute_query(SQL("SELECT pg_backend_pid()"))
    stat = proc_stat(backend)
    if not stat or proc_comm(backend) != "postgres" or proc_comm(stat[0]) != "postgres":
        raise SystemExit(
            f"PostgreSQL's backend {backend} is not a process of this machine: the CPU"
            " PostgreSQL spends cannot be measured (use the private cluster, unset PGHOST)."
        )
    return stat[0]


def setup(env):
    from odoo.tools import SQL

    from odoo.addons.account_bank_connection.models import const
    from odoo.addons.account_bank_connection.sandbox import signing

    with open(os.environ["LOADTEST_KEY"], "rb") as handle:
        private_key = signing.load_private_key(handle.read())
    params = env["ir.config_parameter"].sudo()
    params.set_param(const.PARAM_PUBLIC_KEY, signing.public_pem(private_key).decode())
    params.set_param(const.PARAM_CALLBACK_URL, os.environ["LOADTEST_CALLBACK_URL"])
    count = int(os.environ["LOADTEST_CONNECTIONS"])
    env["account.bank.connection"].create(
        [
            {
                "name": f"Load bank {index}",
                "saltedge_connection_id": remote_id(index),
                "saltedge_customer_id": CUSTOMER_ID,
                "provider_code": "fakebank_simple_xf",
                "state": "connected",
            }
            for index in range(count)
        ]
    )
    env.flush_all()
    [(last_trigger,)] = env.execute_query(SQL("SELECT coalesce(max(id), 0) FROM ir_cron_trigger"))
    [(last_message,)] = env.execute_query(SQL("SELECT coalesce(max(id), 0) FROM mail_message"))
    postmaster = postmaster_pid(env)
    save(
        "setup",
        {"last_trigger": last_trigger, "last_message": last_message, "postmaster": postmaster},
    )
    url = params.get_param(const.PARAM_CALLBACK_URL)
    say(f"{count} connections of customer {CUSTOMER_ID}; callbacks to {url}/<kind>")
    say(f"PostgreSQL's postmaster: process {postmaster}")


# --- send (outside Odoo) ----------------------------------------------------------------


def plan(rate, count, connections):
    """The callbacks to send, in order: (kind, connection's remote id, stage, time)."""
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    callbacks = []
    for index in range(count):
        kind, stage = SEQUENCE[(index // connections) % len(SEQUENCE)]
        moment = started + datetime.timedelta(seconds=index / rate)
        callbacks.append((kind, remote_id(index % connections), stage, moment))
    return callbacks


def signed_requests(callbacks, base_url, private_key):
    """Each callback as Salt Edge sends it: (kind, path, body, headers), signed up front
    so the generator's own RSA work does not eat the CPU the server is measured with."""
    from sandbox import signing

    prepared = []
    for kind, connection_id, stage, moment in callbacks:
        document = {
            "data": {
                "connection_id": connection_id,
                "customer_id": CUSTOMER_ID,
                "custom_fields": {},
                "stage": stage,
            },
            "meta": {"version": "6", "time": moment.isoformat(timespec="milliseconds")[:-6] + "Z"},
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        url = f"{base_url}/{kind}"
        headers = {
            "Content-Type": "application/json",
            "Signature": signing.sign(private_key, signing.callback_message(url, body)),
        }
        prepared.append((kind, urllib.parse.urlsplit(url).path, body, headers))
    return prepared


def bare_requests(url, count):
    """``count`` calls of Odoo's version_info, a JSON-RPC route that reads no record."""
    path = urllib.parse.urlsplit(url).path
    return [("bare", path, BARE_BODY, {"Content-Type": "application/json"})] * count


def answer_of(kind, text):
    """What an answer said: a callback's "status"; "result" for a bare call that got one."""
    try:
        document = json.loads(text)
        if kind == "bare":
            if "result" in document:
                return "result"
            return str((document.get("error") or {}).get("message"))[:200]
        return document.get("status")
    except (ValueError, AttributeError, TypeError):
        return text[:200].decode("utf-8", "replace")


def fire(prepared, rate, host, port, meter):
    """Send ``prepared`` open loop at ``rate`` a second.

    Returns one result dict per request, and the server's CPU seconds from right before
    the first request is handed to a sender to right after the last answer is read.
    """
    results = [None] * len(prepared)
    due = queue.Queue()
    lock = threading.Lock()
    cpu = {}
    pending = [len(prepared)]
    start = time.perf_counter() + 0.2

    def client():
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            index = due.get()
            if index is None:
                break
            kind, path, body, headers = prepared[index]
            scheduled = start + index / rate
            sent_at = time.perf_counter()
            result = {"kind": kind, "status": None, "answer": None, "error": None}
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                text = response.read()
                result["status"] = response.status
                result["answer"] = answer_of(kind, text)
            except (OSError, http.client.HTTPException) as error:
                result["error"] = f"{type(error).__name__}: {error}"
                connection.close()
            done = time.perf_counter()
            result["latency"] = done - scheduled
            result["lag"] = sent_at - scheduled
            result["done"] = done - start
            results[index] = result
            with lock:
                pending[0] -= 1
                if not pending[0]:
                    cpu["after"] = meter.read()
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for index in range(len(prepared)):
        pause = start + index / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if not index:
            cpu["before"] = meter.read()
        due.put(index)
    for _ in threads:
        due.put(None)
    for thread in threads:
        thread.join()
    used = cpu_used(cpu["before"], cpu["after"])
    used["seconds"] = round(used.pop("at"), 3)
    return results, used


def send():
    from sandbox import signing

    rate = int(os.environ["LOADTEST_RATE"])
    seconds = int(os.environ["LOADTEST_SECONDS"])
    repeat = int(os.environ["LOADTEST_REPEAT"])
    base_url = os.environ["LOADTEST_CALLBACK_URL"]
    split = urllib.parse.urlsplit(base_url)
    meter = CpuMeter(
        odoo=int(os.environ["LOADTEST_ODOO_PID"]), postgres=load("setup")["postmaster"]
    )
    count = rate * seconds
    warm = min(rate, count)
    with open(os.environ["LOADTEST_KEY"], "rb") as handle:
        private_key = signing.load_private_key(handle.read())
    callbacks = plan(rate, warm + repeat * count, int(os.environ["LOADTEST_CONNECTIONS"]))
    prepared = signed_requests(callbacks, base_url, private_key)
    bare = bare_requests(os.environ["LOADTEST_BARE_URL"], count)
    say(f"{len(prepared)} callbacks signed; phases of {count} requests, {rate} a second")
    settled = settle(meter)
    say(
        f"the server was idle after {settled} s"
        if settled is not None
        else f"the server was still busy after {SETTLE_LIMIT:.0f} s: measuring anyway"
    )

    phases, idle = [], {"odoo": 0.0, "postgres": 0.0, "seconds": 0.0}

    def run(kind, requests, measured=True, label=None):
        if phases:
            # The server idle between two phases, measured as a phase is.
            before = meter.read()
            time.sleep(IDLE_SECONDS)
            used = cpu_used(before, meter.read())
            used["seconds"] = used.pop("at")
            for key, value in used.items():
                idle[key] += value
        client_cpu = time.process_time()
        results, used = fire(requests, rate, split.hostname, split.port, meter)
        phase = {"kind": kind, "measured": measured, "requests": len(results)}
        phase.update(used, client=round(time.process_time() - client_cpu, 4), results=results)
        phases.append(phase)
        good = sum(1 for r in results if r["status"] == 200 and r["answer"] == EXPECTED[kind])
        say(
            f"{label or kind}: {good} of {len(results)} answered {EXPECTED[kind]},"
            f" the last after {max(r['done'] for r in results):.2f} s;"
            f" CPU {used['odoo'] * 1000 / len(results):.2f} ms a request Odoo,"
            f" {used['postgres'] * 1000 / len(results):.2f} ms PostgreSQL"
        )

    run("bare", bare[:warm], measured=False, label="bare (warm-up)")
    run("callback", prepared[:warm], measured=False, label="callback (warm-up)")
    run("bare", bare)
    for round_ in range(repeat):
        run("callback", prepared[warm + round_ * count : warm + (round_ + 1) * count])
        run("bare", bare)
    run("replay", prepared[::REPLAY_EVERY], measured=False)
    save(
        "send",
        {
            "rate": rate,
            "seconds": seconds,
            "repeat": repeat,
            "callbacks": [[kind, connection_id] for kind, connection_id, _s, _m in callbacks],
            "phases": phases,
            "idle": idle,
            "settled_s": settled,
        },
    )


# --- check (inside Odoo) ----------------------------------------------------------------


def percentile(values, share):
    ordered = sorted(values)
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_ms(results):
    latencies = [r["latency"] * 1000 for r in results if r["status"] == 200]
    if not latencies:
        return None
    return {
        "p50": round(percentile(latencies, 0.50), 1),
        "p95": round(percentile(latencies, 0.95), 1),
        "p99": round(percentile(latencies, 0.99), 1),
        "max": round(max(latencies), 1),
    }


def cost(phases):
    """CPU ms per request of ``phases`` together: Odoo, PostgreSQL, both, the sender."""
    requests = sum(phase["requests"] for phase in phases)
    cpu = {key: sum(phase[key] for phase in phases) for key in ("odoo", "postgres", "client")}
    return {
        "odoo": round(cpu["odoo"] * 1000 / requests, 2),
        "postgres": round(cpu["postgres"] * 1000 / requests, 2),
        "total": round((cpu["odoo"] + cpu["postgres"]) * 1000 / requests, 2),
        "client": round(cpu["client"] * 1000 / requests, 2),
    }


def served(phases, answer):
    """Requests answered ``answer`` a second, over each phase's first send to last answer."""
    good = sum(
        1
        for phase in phases
        for r in phase["results"]
        if r["status"] == 200 and r["answer"] == answer
    )
    window = sum(max(r["done"] for r in phase["results"]) for phase in phases)
    return round(good / window, 1)


def check(env):
    from odoo.tools import SQL

    sent = load("send")
    before = load("setup")
    phases = sent["phases"]
    kinds = [kind for kind, _connection in sent["callbacks"]]
    failed = []

    def of(kind, only_measured=True):
        return [p for p in phases if p["kind"] == kind and (p["measured"] or not only_measured)]

    results = [r for phase in of("callback", only_measured=False) for r in phase["results"]]
    replayed = of("replay", only_measured=False)[0]["results"]
    bare = [r for phase in of("bare", only_measured=False) for r in phase["results"]]
    acknowledged = sum(1 for r in results if r["status"] == 200 and r["answer"] == "ok")
    answers = {}
    for result in results + replayed + bare:
        if not (result["status"] == 200 and result["answer"] in ("ok", "duplicate", "result")):
            key = result["error"] or f"{result['kind']}: {result['status']} {result['answer']}"
            answers[key] = answers.get(key, 0) + 1
    if acknowledged != len(kinds):
        failed.append(f"{len(kinds) - acknowledged} of {len(kinds)} callbacks not answered 200 ok")
    duplicates = sum(1 for r in replayed if r["status"] == 200 and r["answer"] == "duplicate")
    if duplicates != len(replayed):
        failed.append(f"{len(replayed) - duplicates} of {len(replayed)} replays not 'duplicate'")
    bare_ok = sum(1 for r in bare if r["status"] == 200 and r["answer"] == "result")
    if bare_ok != len(bare):
        failed.append(f"{len(bare) - bare_ok} of {len(bare)} bare requests not answered a result")

    rows = env.execute_query(
        SQL("SELECT kind, result, count(*) FROM account_bank_callback GROUP BY kind, result")
    )
    ledger = {f"{kind}: {result}": count for kind, result, count in rows}
    ledger_rows = sum(ledger.values())
    expected = {
        "notify: noted": kinds.count("notify"),
        "success: import queued": kinds.count("success"),
    }
    if ledger != {key: value for key, value in expected.items() if value}:
        failed.append(f"ledger {ledger} is not the {expected} sent")
    per_connection = dict(
        env.execute_query(
            SQL(
                "SELECT saltedge_connection_id, count(*) FROM account_bank_callback"
                " GROUP BY saltedge_connection_id"
            )
        )
    )
    planned = {}
    for _kind, connection_id in sent["callbacks"]:
        planned[connection_id] = planned.get(connection_id, 0) + 1
    if per_connection != planned:
        failed.append("the ledger's callbacks per connection differ from those sent")

    cron = env.ref("account_bank_connection.ir_cron_import_requested")
    [(triggers,)] = env.execute_query(
        SQL(
            "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
            cron.id,
            before["last_trigger"],
        )
    )
    if triggers != kinds.count("success"):
        failed.append(f"{triggers} import triggers for {kinds.count('success')} success callbacks")
    connections = env["account.bank.connection"].search(
        [("saltedge_customer_id", "=", CUSTOMER_ID)]
    )
    with_success = {c for kind, c in sent["callbacks"] if kind == "success"}
    not_queued = connections.filtered(
        lambda c: c.saltedge_connection_id in with_success and not c.import_requested
    )
    if not_queued:
        failed.append(f"{len(not_queued)} connections had a success but no import requested")
    [(messages,)] = env.execute_query(
        SQL(
            "SELECT count(*) FROM mail_message"
            " WHERE model = 'account.bank.connection' AND id > %s",
            before["last_message"],
        )
    )
    if messages:
        failed.append(f"{messages} chatter lines written; notify and success write none")

    # The goal: CPU per callback over CPU per bare request, the measured phases pooled.
    callback_cost, bare_cost = cost(of("callback")), cost(of("bare"))
    ratio = None
    if bare_cost["total"] > 0:
        ratio = round(callback_cost["total"] / bare_cost["total"], 2)
        if ratio > CPU_RATIO_GOAL:
            failed.append(
                f"a callback costs {ratio}× the CPU of a bare request, not ≤ {CPU_RATIO_GOAL}×"
            )
    else:
        failed.append("the bare requests' CPU could not be measured (0 s)")
    # Each callback phase against the bare phases on either side of it: the spread.
    per_round = []
    measured = [p for p in phases if p["measured"]]
    for index, phase in enumerate(measured):
        if phase["kind"] == "callback" and bare_cost["total"] > 0:
            around = cost([measured[index - 1], measured[index + 1]])["total"]
            per_round.append(round(cost([phase])["total"] / around, 2) if around else None)
    with open(os.path.join(RESULTS, "retries.txt")) as handle:
        retries = int(handle.read().strip() or 0)
    idle = sent["idle"]
    achieved = served(of("callback"), "ok")
    summary = {
        "sent": len(results),
        "acknowledged": acknowledged,
        "replayed": len(replayed),
        "duplicates": duplicates,
        "ledger_rows": ledger_rows,
        "import_triggers": triggers,
        "bare_sent": len(bare),
        "bare_answered": bare_ok,
        # CPU of Odoo's and PostgreSQL's processes per request, the measured phases pooled.
        "cpu_ratio": ratio,
        "cpu_ratio_goal": CPU_RATIO_GOAL,
        "cpu_ratio_per_round": per_round,
        "cpu_ms_per_request": {
            "callback": callback_cost,
            "bare": bare_cost,
            "replay": cost(of("replay", only_measured=False)),
        },
        "settled_s": sent["settled_s"],
        "idle_cpu_ms_per_s": round((idle["odoo"] + idle["postgres"]) * 1000 / idle["seconds"], 2)
        if idle["seconds"]
        else None,
        # Information, not a goal: what this machine served while it was measured.
        "target_rate": sent["rate"],
        "seconds": sent["seconds"],
        "phases": " ".join(p["kind"] for p in measured),
        "requests_per_phase": measured[0]["requests"],
        "achieved_rate": {"callback": achieved, "bare": served(of("bare"), "result")},
        "rate_share": round(achieved / sent["rate"], 3),
        "latency_ms": {
            "callback": latency_ms([r for p in of("callback") for r in p["results"]]),
            "bare": latency_ms([r for p in of("bare") for r in p["results"]]),
        },
        "max_send_lag_ms": round(max(r["lag"] for r in results) * 1000, 1),
        "errors": sum(answers.values()),
        "error_kinds": answers,
        "serialization_retries": retries,
        "odoo": os.environ.get("LOADTEST_ODOO_CONFIG", ""),
        "client_connections": CLIENT_THREADS,
        "connections": len(connections),
        "cpus": os.cpu_count(),
        "failed": failed,
    }
    say(
        f"CPU per request: callback {callback_cost['total']} ms (Odoo {callback_cost['odoo']},"
        f" PostgreSQL {callback_cost['postgres']}), bare {bare_cost['total']} ms"
        f" (Odoo {bare_cost['odoo']}, PostgreSQL {bare_cost['postgres']}):"
        f" ratio {ratio} (goal ≤ {CPU_RATIO_GOAL}), per round {per_round}"
    )
    say(
        f"served (information): {achieved} callbacks a second of {sent['rate']} asked,"
        f" {summary['achieved_rate']['bare']} bare requests a second"
    )
    for reason in failed:
        say(f"failed: {reason}")
    print(json.dumps(summary), flush=True)
    if failed:
        sys.exit(1)


PHASE = os.environ["LOADTEST_PHASE"]
if PHASE == "send":
    send()
else:
    {"setup": setup, "check": check}[PHASE](globals()["env"])

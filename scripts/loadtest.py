"""make loadtest: signed Salt Edge callbacks at a fixed rate against Odoo's HTTP server.

Run by scripts/loadtest.sh once per phase (``LOADTEST_PHASE``):

``setup`` (through scripts/odoo_script.py, ``env`` given)
    the Salt Edge public key and the callback URL in the settings, ``LOADTEST_CONNECTIONS``
    connected bank connections with Salt Edge ids, and the counters the check starts from;
``send`` (plain Python, Odoo running on ``LOADTEST_CALLBACK_URL``)
    ``LOADTEST_RATE`` callbacks a second for ``LOADTEST_SECONDS`` seconds, each distinct and
    signed as Salt Edge signs them (RSA-SHA256 over ``"<callback URL>|<raw body>"``, with
    the sandbox's signer, written apart from the addon's verifier). Each connection gets
    Salt Edge's real sequence, in order: notify start, connect, fetch_accounts,
    fetch_recent, finish, then success. Open loop: callback ``i`` is due at
    ``start + i / rate`` whatever the answers before it, and its latency runs from that
    moment, so a slow server shows as latency, never as a gentler load. Then a replay of
    every tenth callback, which must all answer "duplicate";
``check`` (through odoo_script.py)
    the ledger holds one row per callback sent and nothing more, each with the handler's
    result; each success queued exactly one import trigger; no chatter line was written;
    at least 95 % of the rate was served (acknowledged over the time to the last answer);
    then the one JSON object, as the last line printed. Exit 1 when a check failed.
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
MIN_RATE_SHARE = 0.95
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


# --- setup (inside Odoo) ----------------------------------------------------------------


def setup(env):
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
    env.cr.execute("SELECT coalesce(max(id), 0) FROM ir_cron_trigger")
    last_trigger = env.cr.fetchone()[0]
    env.cr.execute("SELECT coalesce(max(id), 0) FROM mail_message")
    last_message = env.cr.fetchone()[0]
    save("setup", {"last_trigger": last_trigger, "last_message": last_message})
    url = params.get_param(const.PARAM_CALLBACK_URL)
    say(f"{count} connections of customer {CUSTOMER_ID}; callbacks to {url}/<kind>")


# --- send (outside Odoo) ----------------------------------------------------------------


def plan(rate, seconds, connections):
    """The callbacks to send, in order: (kind, connection's remote id, stage, time)."""
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    callbacks = []
    for index in range(rate * seconds):
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


def fire(prepared, rate, host, port):
    """Send ``prepared`` open loop at ``rate`` a second; one result dict per request."""
    results = [None] * len(prepared)
    due = queue.Queue()
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
                try:
                    result["answer"] = json.loads(text).get("status")
                except (ValueError, AttributeError):
                    result["answer"] = text[:200].decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as error:
                result["error"] = f"{type(error).__name__}: {error}"
                connection.close()
            done = time.perf_counter()
            result["latency"] = done - scheduled
            result["lag"] = sent_at - scheduled
            result["done"] = done - start
            results[index] = result
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for index in range(len(prepared)):
        pause = start + index / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        due.put(index)
    for _ in threads:
        due.put(None)
    for thread in threads:
        thread.join()
    return results


def percentile(values, share):
    ordered = sorted(values)
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def send():
    from sandbox import signing

    rate = int(os.environ["LOADTEST_RATE"])
    seconds = int(os.environ["LOADTEST_SECONDS"])
    base_url = os.environ["LOADTEST_CALLBACK_URL"]
    split = urllib.parse.urlsplit(base_url)
    with open(os.environ["LOADTEST_KEY"], "rb") as handle:
        private_key = signing.load_private_key(handle.read())
    callbacks = plan(rate, seconds, int(os.environ["LOADTEST_CONNECTIONS"]))
    prepared = signed_requests(callbacks, base_url, private_key)
    say(f"{len(prepared)} callbacks signed; sending {rate} a second")
    cpu = time.process_time()
    results = fire(prepared, rate, split.hostname, split.port)
    last = max(result["done"] for result in results)
    ok = sum(1 for r in results if r["status"] == 200 and r["answer"] == "ok")
    say(f"first pass: {ok} of {len(results)} answered ok, the last after {last:.2f} s")
    replay = prepared[::REPLAY_EVERY]
    replayed = fire(replay, rate, split.hostname, split.port)
    duplicates = sum(1 for r in replayed if r["status"] == 200 and r["answer"] == "duplicate")
    say(f"replay: {duplicates} of {len(replayed)} answered duplicate")
    cpu = time.process_time() - cpu
    save(
        "send",
        {
            "rate": rate,
            "seconds": seconds,
            "callbacks": [[kind, connection_id] for kind, connection_id, _s, _m in callbacks],
            "results": results,
            "replayed": replayed,
            "client_cpu_s": cpu,
        },
    )


# --- check (inside Odoo) ----------------------------------------------------------------


def check(env):
    sent = load("send")
    before = load("setup")
    results, replayed = sent["results"], sent["replayed"]
    kinds = [kind for kind, _connection in sent["callbacks"]]
    failed = []

    acknowledged = sum(1 for r in results if r["status"] == 200 and r["answer"] == "ok")
    answers = {}
    for result in results + replayed:
        if not (result["status"] == 200 and result["answer"] in ("ok", "duplicate")):
            key = result["error"] or f"{result['status']} {result['answer']}"
            answers[key] = answers.get(key, 0) + 1
    if acknowledged != len(results):
        failed.append(f"{len(results) - acknowledged} of {len(results)} not answered 200 ok")
    duplicates = sum(1 for r in replayed if r["status"] == 200 and r["answer"] == "duplicate")
    if duplicates != len(replayed):
        failed.append(f"{len(replayed) - duplicates} of {len(replayed)} replays not 'duplicate'")

    cr = env.cr
    cr.execute("SELECT kind, result, count(*) FROM account_bank_callback GROUP BY kind, result")
    ledger = {f"{kind}: {result}": count for kind, result, count in cr.fetchall()}
    ledger_rows = sum(ledger.values())
    expected = {
        "notify: noted": kinds.count("notify"),
        "success: import queued": kinds.count("success"),
    }
    if ledger != {key: value for key, value in expected.items() if value}:
        failed.append(f"ledger {ledger} is not the {expected} sent")
    cr.execute(
        "SELECT saltedge_connection_id, count(*) FROM account_bank_callback"
        " GROUP BY saltedge_connection_id"
    )
    per_connection = dict(cr.fetchall())
    planned = {}
    for _kind, connection_id in sent["callbacks"]:
        planned[connection_id] = planned.get(connection_id, 0) + 1
    if per_connection != planned:
        failed.append("the ledger's callbacks per connection differ from those sent")

    cron = env.ref("account_bank_connection.ir_cron_import_requested")
    cr.execute(
        "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
        [cron.id, before["last_trigger"]],
    )
    triggers = cr.fetchone()[0]
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
    cr.execute(
        "SELECT count(*) FROM mail_message WHERE model = 'account.bank.connection' AND id > %s",
        [before["last_message"]],
    )
    messages = cr.fetchone()[0]
    if messages:
        failed.append(f"{messages} chatter lines written; notify and success write none")

    latencies = [r["latency"] * 1000 for r in results if r["status"] == 200]
    lags = [r["lag"] * 1000 for r in results]
    window = max(r["done"] for r in results)
    with open(os.path.join(RESULTS, "retries.txt")) as handle:
        retries = int(handle.read().strip() or 0)
    requests = len(results) + len(replayed)
    odoo_cpu, postgres_cpu = (float(x) for x in os.environ["LOADTEST_SERVER_CPU"].split())
    achieved = acknowledged / window
    # Open loop: the last answer comes within a second of the last send when the server keeps
    # up; later means the callbacks queued, and the rate was not served.
    if achieved < MIN_RATE_SHARE * sent["rate"]:
        failed.append(f"{achieved:.1f} callbacks a second served, not {sent['rate']}")
    summary = {
        "sent": len(results),
        "acknowledged": acknowledged,
        "replayed": len(replayed),
        "duplicates": duplicates,
        "ledger_rows": ledger_rows,
        "import_triggers": triggers,
        "target_rate": sent["rate"],
        "seconds": sent["seconds"],
        "achieved_rate": round(achieved, 1),
        "last_answer_s": round(window, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1) if latencies else None,
            "p95": round(percentile(latencies, 0.95), 1) if latencies else None,
            "p99": round(percentile(latencies, 0.99), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
        "max_send_lag_ms": round(max(lags), 1),
        "errors": sum(answers.values()),
        "error_kinds": answers,
        "serialization_retries": retries,
        # CPU time per request (first pass and replay), measured on the processes.
        "cpu_ms_per_request": {
            "odoo": round(odoo_cpu * 1000 / requests, 2),
            "postgres": round(postgres_cpu * 1000 / requests, 2),
            "client": round(sent["client_cpu_s"] * 1000 / requests, 2),
        },
        "odoo": os.environ.get("LOADTEST_ODOO_CONFIG", ""),
        "client_connections": CLIENT_THREADS,
        "connections": len(connections),
        "cpus": os.cpu_count(),
        "failed": failed,
    }
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

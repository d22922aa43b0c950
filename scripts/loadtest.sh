#!/usr/bin/env bash
# make loadtest [RATE=200] [DURATION=10] [WORKERS=4] [REPEAT=2]: the CPU a signed Salt Edge
# callback costs Odoo and PostgreSQL, as a ratio to a bare request of the same server that
# reads no record (Odoo's /web/webclient/version_info), both measured in the same run against
# the same running Odoo on loopback. Phases of RATE requests a second for DURATION seconds:
# bare, then REPEAT times callbacks and bare, after one unmeasured second of each. Goal: the
# ratio at most 2, and every callback acknowledged and applied exactly once, a replay acting
# not at all. The rate served and the latencies are printed as information (they depend on
# the machine's cores). Prints one JSON object as the last line (see scripts/loadtest.py).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RATE=${RATE:-200}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-4}
REPEAT=${REPEAT:-2}
CONNECTIONS=${CONNECTIONS:-50}
for value in "$RATE" "$DURATION" "$WORKERS" "$REPEAT" "$CONNECTIONS"; do
    [[ "$value" =~ ^[0-9]+$ ]] || die "RATE, DURATION, WORKERS, REPEAT and CONNECTIONS are whole numbers, not '$value'."
done
[ "$RATE" -gt 0 ] && [ "$DURATION" -gt 0 ] && [ "$REPEAT" -gt 0 ] && [ "$CONNECTIONS" -gt 0 ] \
    || die "RATE, DURATION, REPEAT and CONNECTIONS must be positive."

ensure_venv
ensure_addons
ensure_postgres

WORK=$(mktemp -d "${TMPDIR:-/tmp}/abc-load.XXXXXX")
CLEANUP+=("rm -rf '$WORK'")
DB=${LOADTEST_DB:-abc_load_$$}
write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"
# One database served by name, as in production: with a dbfilter Odoo lists the databases
# (a new PostgreSQL connection) for every request without a session, as callbacks are.
sed -i '/^dbfilter/d' "$WORK/odoo.conf"

install_fresh_db "$DB" "$WORK/odoo.conf" "$WORK/install.log"

# Salt Edge's key pair: the generator signs with the private half, Odoo holds the public one.
(cd "$ROOT" && python - "$WORK/saltedge_private.pem" <<'PY'
import sys
from sandbox import signing
with open(sys.argv[1], "wb") as handle:
    handle.write(signing.generate_private_key_pem())
PY
)

HTTP_PORT=$(free_port)
GEVENT_PORT=$(free_port)
export LOADTEST_RESULTS="$WORK" LOADTEST_KEY="$WORK/saltedge_private.pem" \
    LOADTEST_CALLBACK_URL="http://127.0.0.1:$HTTP_PORT/account_bank_connection/saltedge/callback" \
    LOADTEST_BARE_URL="http://127.0.0.1:$HTTP_PORT/web/webclient/version_info" \
    LOADTEST_RATE=$RATE LOADTEST_SECONDS=$DURATION LOADTEST_WORKERS=$WORKERS \
    LOADTEST_REPEAT=$REPEAT LOADTEST_CONNECTIONS=$CONNECTIONS
phase() {
    LOADTEST_PHASE=$1 odoo_script "$ROOT/scripts/loadtest.py" -c "$WORK/odoo.conf" -d "$DB" \
        --log-level=warn >"$WORK/$1.out" 2>"$WORK/$1.log" \
        || { cat "$WORK/$1.out" >&2; tail -n 40 "$WORK/$1.log" >&2; return 1; }
    cat "$WORK/$1.out" >&2
}
log "Set-up: $CONNECTIONS connections, the Salt Edge public key, the callback URL"
phase setup || die "The load test's set-up failed."

# As in production: prefork workers (the gevent port is required with them), no cron
# worker, so the imports the success callbacks queue stay queued and can be counted.
ODOO_ARGS=(--http-interface=127.0.0.1 --http-port="$HTTP_PORT" --workers="$WORKERS"
    --max-cron-threads=0 --log-level=info)
[ "$WORKERS" -gt 0 ] && ODOO_ARGS+=(--gevent-port="$GEVENT_PORT")
log "Starting Odoo on 127.0.0.1:$HTTP_PORT (${ODOO_ARGS[*]})"
odoo_bin -c "$WORK/odoo.conf" -d "$DB" "${ODOO_ARGS[@]}" >"$WORK/odoo.log" 2>&1 &
ODOO_PID=$!
# odoo_bin is a function: $! is its subshell, Odoo's master process is that one's child.
stop_odoo() {
    local master
    master=$(pgrep -P "$ODOO_PID" 2>/dev/null || true)
    if [ -n "$master" ]; then
        kill $master 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 $master 2>/dev/null || break
            sleep 0.2
        done
        # A second signal is Odoo's forced shutdown.
        kill $master 2>/dev/null || true
    fi
    wait "$ODOO_PID" 2>/dev/null || true
}
CLEANUP+=("stop_odoo")
for _ in $(seq 150); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/web/health" >/dev/null 2>&1 && break
    kill -0 "$ODOO_PID" 2>/dev/null || { tail -n 40 "$WORK/odoo.log" >&2; die "Odoo did not start."; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$HTTP_PORT/web/health" >/dev/null 2>&1 \
    || { tail -n 40 "$WORK/odoo.log" >&2; die "Odoo did not answer on port $HTTP_PORT."; }
export LOADTEST_ODOO_CONFIG="workers=$WORKERS max_cron_threads=0 log_level=info"

# The CPU of Odoo's process tree (below $ODOO_PID) and of PostgreSQL's (below the
# postmaster the set-up found) is read from /proc by the sender, around each phase.
export LOADTEST_ODOO_PID=$ODOO_PID

log "Phases of $((RATE * DURATION)) requests, $RATE a second for $DURATION s: bare, then $REPEAT times callbacks and bare, then a replay sample"
rc=0
(cd "$ROOT" && PYTHONPATH="$ROOT:$PYTHONPATH" LOADTEST_PHASE=send python "$ROOT/scripts/loadtest.py") >"$WORK/send.out" || rc=$?
cat "$WORK/send.out" >&2
[ "$rc" = 0 ] || { tail -n 40 "$WORK/odoo.log" >&2; die "The load generator failed."; }

stop_odoo
if grep -E ' (ERROR|CRITICAL) ' "$WORK/odoo.log" >"$WORK/odoo_errors.log"; then
    head -n 20 "$WORK/odoo_errors.log" >&2
fi
grep -cE 'tries left, try again' "$WORK/odoo.log" >"$WORK/retries.txt" || true
log "Checking the ledger and the effects in the database"
phase check || rc=$?
if [ -n "${LOADTEST_KEEP_LOG:-}" ]; then
    cp "$WORK/odoo.log" "$LOADTEST_KEEP_LOG" && log "Odoo's log: $LOADTEST_KEEP_LOG"
fi
tail -n 1 "$WORK/check.out"
[ "$rc" = 0 ] || die "A check of the load test failed (see above)."

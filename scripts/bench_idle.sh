#!/usr/bin/env bash
# make bench-idle (and the end of make bench): what one hourly import costs when nothing is
# new at Salt Edge, for IDLE_SIZES=1,100,1000 connections of one company, REPEAT=3 times
# each, then with one connection changed among the most (scripts/bench_idle.py). Fails
# when a goal is missed.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPEAT=${REPEAT:-3}
export IDLE_SIZES=${IDLE_SIZES:-1,100,1000} REPEAT
# Salt Edge chooses its page size; the sandbox's default (100) is the harder one here: a
# list of 1,000 connections is ten pages.
LIST_PAGE_SIZE=${LIST_PAGE_SIZE:-100}

ensure_venv
ensure_addons
ensure_postgres

WORK=$(mktemp -d "${TMPDIR:-/tmp}/abc-bench-idle.XXXXXX")
CLEANUP+=("rm -rf '$WORK'")
(cd "$ROOT" && python - "$WORK" <<'PY'
import sys
from saltedge_client import generate_key_pair
private_pem, public_pem = generate_key_pair()
with open(f"{sys.argv[1]}/app_private.pem", "w") as handle:
    handle.write(private_pem)
with open(f"{sys.argv[1]}/app_public.pem", "w") as handle:
    handle.write(public_pem)
PY
)

SANDBOX_PORT=$(free_port)
(
    cd "$ROOT"
    SANDBOX_PORT=$SANDBOX_PORT SANDBOX_PAGE_SIZE=$LIST_PAGE_SIZE SANDBOX_N_TRANSACTIONS=10 \
        SANDBOX_FETCH_SECONDS=0 \
        SANDBOX_APP_ID=bench-app-id SANDBOX_SECRET=bench-secret \
        SANDBOX_CLIENT_PUBLIC_KEY="$WORK/app_public.pem" \
        exec python -m sandbox
) >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
wait_for_sandbox "$SANDBOX_PID" "$SANDBOX_PORT" "$WORK/sandbox.log"

DB=${BENCH_DB:-abc_bench_idle_$$}
write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"
install_fresh_db "$DB" "$WORK/odoo.conf" "$WORK/install.log"
mkdir -p "$WORK/results"
log "Idle hourly runs: $IDLE_SIZES connections, $REPEAT times each"
BENCH_API_URL="http://127.0.0.1:$SANDBOX_PORT/api/v6" BENCH_APP_ID=bench-app-id \
    BENCH_SECRET=bench-secret BENCH_PRIVATE_KEY="$WORK/app_private.pem" \
    BENCH_RESULTS="$WORK/results" BENCH_LIST_PAGE_SIZE=$LIST_PAGE_SIZE \
    odoo_script "$ROOT/scripts/bench_idle.py" -c "$WORK/odoo.conf" -d "$DB" --log-level=warn \
    2>"$WORK/idle.log" || { tail -n 60 "$WORK/idle.log" >&2; die "A goal of the idle benchmark was missed, or it failed (see above)."; }
mkdir -p "$CACHE_DIR" && cp "$WORK/results/idle.json" "$CACHE_DIR/last-bench-idle.json"

#!/usr/bin/env bash
# make bench [N=10000] [SMALL=1000] [REPEAT=3]: the import of SMALL and of N transactions
# (10 accounts each, pages of 100) from the Salt Edge sandbox, each size on a fresh
# database, against a baseline of the same shape; every phase REPEAT times, the order of
# import and baseline alternating; then the report (scripts/bench_report.py), whose last
# line is one JSON object. Fails when a goal is missed.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

N=${1:-${N:-10000}}
SMALL=${SMALL:-1000}
REPEAT=${REPEAT:-3}
# The single create of all N lines (for reference) grows faster than linearly with N:
# measured only up to this size.
SINGLE_MAX=${SINGLE_MAX:-2000}
for value in "$N" "$SMALL"; do
    if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$value" -lt 10 ] || [ $((value % 10)) != 0 ]; then
        die "N and SMALL must be multiples of 10 (10 accounts × N/10 transactions), not '$value'."
    fi
done
[[ "$REPEAT" =~ ^[0-9]+$ ]] && [ "$REPEAT" -ge 1 ] || die "REPEAT must be a whole number ≥ 1."
[ "$REPEAT" -ge 3 ] || log "REPEAT=$REPEAT: the goals ask for the median of at least 3."
SIZES=("$SMALL")
[ "$N" != "$SMALL" ] && SIZES+=("$N")

ensure_venv
ensure_addons
ensure_postgres

WORK=$(mktemp -d "${TMPDIR:-/tmp}/abc-bench.XXXXXX")
CLEANUP+=("rm -rf '$WORK'")
# The private cluster's postmaster: its CPU and its backends' are PostgreSQL's share.
PG_PID=
if [ -n "${PG_SOCKET_DIR:-}" ] && [ -f "$PG_SOCKET_DIR/.s.PGSQL.$PGPORT.lock" ]; then
    PG_PID=$(head -n 1 "$PG_SOCKET_DIR/.s.PGSQL.$PGPORT.lock")
fi
[ -n "$PG_PID" ] || log "PostgreSQL is not ours to watch: its CPU is not reported."

# The app's key pair: the sandbox checks every request's signature, as Salt Edge does.
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

start_sandbox() {  # start_sandbox SIZE: a sandbox whose accounts hold SIZE/10 each
    SANDBOX_PORT=$(free_port)
    (
        cd "$ROOT"
        # The bench times Odoo's import of data Salt Edge already has, not Salt Edge's own
        # fetch: the sandbox's fetch is instant here (SANDBOX_FETCH_SECONDS=0).
        SANDBOX_PORT=$SANDBOX_PORT SANDBOX_PAGE_SIZE=100 SANDBOX_N_TRANSACTIONS=$(($1 / 10)) \
            SANDBOX_FETCH_SECONDS=0 \
            SANDBOX_APP_ID=bench-app-id SANDBOX_SECRET=bench-secret \
            SANDBOX_CLIENT_PUBLIC_KEY="$WORK/app_public.pem" \
            exec python -m sandbox
    ) >"$WORK/sandbox-$1.log" 2>&1 &
    SANDBOX_PID=$!
    wait_for_sandbox "$SANDBOX_PID" "$SANDBOX_PORT" "$WORK/sandbox-$1.log"
}

# phase NAME [REPETITION]: one process of its own, so one phase's memory never counts in
# another's peak.
phase() {
    local name=$1 rep=${2:-1}
    log "N=$BENCH_N: $name${2:+ (repetition $rep)}"
    local out="$BENCH_RESULTS/$name-$rep.out"
    BENCH_PHASE=$name BENCH_REPETITION=$rep odoo_script "$ROOT/scripts/bench.py" \
        -c "$WORK/odoo.conf" -d "$DB" --log-level=warn >"$out" 2>"$BENCH_RESULTS/$name-$rep.log" \
        || { cat "$out" >&2; tail -n 60 "$BENCH_RESULTS/$name-$rep.log" >&2; die "The benchmark failed in its $name phase."; }
    sed 's/^/    /' "$out" >&2
}

FOLDERS=()
for size in "${SIZES[@]}"; do
    DB=${BENCH_DB:-abc_bench_$$}_$size
    write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"
    install_fresh_db "$DB" "$WORK/odoo.conf" "$WORK/install-$size.log"
    start_sandbox "$size"
    export BENCH_N=$size BENCH_RESULTS="$WORK/n$size" \
        BENCH_API_URL="http://127.0.0.1:$SANDBOX_PORT/api/v6" \
        BENCH_APP_ID=bench-app-id BENCH_SECRET=bench-secret \
        BENCH_PRIVATE_KEY="$WORK/app_private.pem" \
        BENCH_SANDBOX_PID=$SANDBOX_PID BENCH_PG_PID=$PG_PID
    mkdir -p "$BENCH_RESULTS"
    FOLDERS+=("$BENCH_RESULTS")
    phase setup
    for rep in $(seq "$REPEAT"); do
        # The order of import and baseline alternates: neither always runs on the warmer
        # database. The re-import follows its import (it reads that import's journals).
        if [ $((rep % 2)) = 1 ]; then
            phase import "$rep"; phase reimport "$rep"; phase baseline "$rep"
        else
            phase baseline "$rep"; phase import "$rep"; phase reimport "$rep"
        fi
        phase first "$rep"
    done
    if [ "$size" -le "$SINGLE_MAX" ]; then
        phase single
    fi
    kill "$SANDBOX_PID" 2>/dev/null; wait "$SANDBOX_PID" 2>/dev/null || true
done
if [ -n "${BENCH_PROFILE:-}" ]; then
    mkdir -p "$CACHE_DIR/bench-profile"
    for folder in "${FOLDERS[@]}"; do
        for profile in "$folder"/*.prof; do
            [ -f "$profile" ] && cp "$profile" "$CACHE_DIR/bench-profile/$(basename "$folder")-$(basename "$profile")"
        done
    done
    log "Profiles in $CACHE_DIR/bench-profile/"
fi
python "$ROOT/scripts/bench_report.py" "${FOLDERS[@]}" || die "A goal of the benchmark was missed (see above)."

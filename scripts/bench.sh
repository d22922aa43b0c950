#!/usr/bin/env bash
# make bench [N=10000]: import N transactions (10 accounts × N/10, pages of 100) from the
# Salt Edge sandbox into a fresh database, time a bare create of the same N lines, import
# the same N again, and print one JSON object as the last line (see scripts/bench.py).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

N=${1:-${N:-10000}}
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 10 ] || [ $((N % 10)) != 0 ]; then
    die "N must be a multiple of 10 (10 accounts × N/10 transactions), not '$N'."
fi

ensure_venv
ensure_addons
ensure_postgres

WORK=$(mktemp -d "${TMPDIR:-/tmp}/abc-bench.XXXXXX")
CLEANUP+=("rm -rf '$WORK'")
DB=${BENCH_DB:-abc_bench_$$}
write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"

install_fresh_db "$DB" "$WORK/odoo.conf" "$WORK/install.log"

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

SANDBOX_PORT=$(free_port)
log "Starting the Salt Edge sandbox on port $SANDBOX_PORT (pages of 100, $((N / 10)) transactions an account)"
(
    cd "$ROOT"
    # The bench times Odoo's import of data Salt Edge already has, not Salt Edge's own
    # fetch: the sandbox's fetch is instant here (SANDBOX_FETCH_SECONDS=0).
    SANDBOX_PORT=$SANDBOX_PORT SANDBOX_PAGE_SIZE=100 SANDBOX_N_TRANSACTIONS=$((N / 10)) \
        SANDBOX_FETCH_SECONDS=0 \
        SANDBOX_APP_ID=bench-app-id SANDBOX_SECRET=bench-secret \
        SANDBOX_CLIENT_PUBLIC_KEY="$WORK/app_public.pem" \
        exec python -m sandbox
) >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
CLEANUP+=("kill $SANDBOX_PID 2>/dev/null; wait $SANDBOX_PID 2>/dev/null")
for _ in $(seq 50); do
    curl -fsS "http://127.0.0.1:$SANDBOX_PORT/sandbox/public_key.pem" >/dev/null 2>&1 && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.log" >&2; die "The sandbox did not start."; }
    sleep 0.2
done

# Each phase is a process of its own: one phase's memory never counts in another's peak.
export BENCH_N=$N BENCH_RESULTS="$WORK" BENCH_API_URL="http://127.0.0.1:$SANDBOX_PORT/api/v6" \
    BENCH_APP_ID=bench-app-id BENCH_SECRET=bench-secret BENCH_PRIVATE_KEY="$WORK/app_private.pem"
phase() {
    BENCH_PHASE=$1 odoo_script "$ROOT/scripts/bench.py" -c "$WORK/odoo.conf" -d "$DB" \
        --log-level=warn >"$WORK/$1.out" 2>"$WORK/$1.log"
}
rc=0
for step in setup import first baseline reimport; do
    log "Benchmark: $step"
    phase "$step" || rc=$?
    grep -v '^{' "$WORK/$step.out" >&2 || true
    if [ "$rc" != 0 ] && ! tail -n 1 "$WORK/$step.out" | grep -q '^{'; then
        tail -n 60 "$WORK/$step.log" >&2
        die "The benchmark failed in its $step phase."
    fi
done
if [ -n "${BENCH_PROFILE:-}" ]; then
    mkdir -p "$CACHE_DIR/bench-profile" && cp "$WORK"/*.prof "$CACHE_DIR/bench-profile/" 2>/dev/null
    log "Profiles in $CACHE_DIR/bench-profile/"
fi
tail -n 1 "$WORK/reimport.out"
[ "$rc" = 0 ] || die "A goal of the benchmark was missed (see above)."

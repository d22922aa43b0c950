#!/usr/bin/env bash
# make screenshots: the demo of make run on a throw-away PostgreSQL cluster, database and
# sandbox (free ports, so a running make run is left alone), then every picture of the README
# made again in headless Chromium into docs/screenshots/. Exits non-zero when one is missing.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$ROOT/scripts/demo.sh"

DB=bank_connection_screenshots
OUT="$ROOT/docs/screenshots"
ODOO_PORT=$(free_port)
SANDBOX_PORT=$(free_port)
DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/abc-screenshots.XXXXXX")
CLEANUP+=("rm -rf '$DEMO_DIR'")
SECONDS=0

ensure_venv
ensure_addons
ensure_chromium
ensure_postgres
write_odoo_conf "$DEMO_DIR/odoo.conf" "$DEMO_DIR/data" "$DB"
start_sandbox
prepare_demo_db

log "Starting Odoo on port $ODOO_PORT"
# No cron thread: the pictures show the demo as make run leaves it, the reminder still in
# the outbox.
odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" --http-port="$ODOO_PORT" --max-cron-threads=0 \
    >"$DEMO_DIR/odoo.log" 2>&1 &
ODOO_PID=$!
# odoo_bin runs Odoo as a child of the background shell: stop that child, then the shell.
CLEANUP+=("pkill -TERM -P $ODOO_PID 2>/dev/null; wait $ODOO_PID 2>/dev/null")
for i in $(seq 121); do
    curl -fsS "http://localhost:$ODOO_PORT/web/login" >/dev/null 2>&1 && break
    if [ "$i" = 121 ] || ! kill -0 "$ODOO_PID" 2>/dev/null; then
        tail -n 40 "$DEMO_DIR/odoo.log" >&2
        die "Odoo did not start."
    fi
    sleep 0.5
done

log "Taking the pictures into docs/screenshots/"
rc=0
python "$ROOT/scripts/screenshots.py" "http://localhost:$ODOO_PORT" "$DB" "$OUT" || rc=$?
if [ "$rc" != 0 ]; then
    tail -n 40 "$DEMO_DIR/odoo.log" >&2
    die "Some pictures could not be made (see above)."
fi
log "screenshots: done in ${SECONDS} s"

#!/usr/bin/env bash
# make run: PostgreSQL, the Salt Edge sandbox and Odoo with the demo database. Ctrl-C stops
# everything this script started; the next run reuses the database. Odoo 18.0 unless
# ODOO_VERSION says otherwise (ODOO_VERSION=19.0 make run: its own database and folder).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$ROOT/scripts/demo.sh"

DB=${DEMO_DB:-bank_connection_demo$SERIES_SUFFIX}
ODOO_PORT=${ODOO_PORT:-8069}
SANDBOX_PORT=${SANDBOX_PORT:-8071}
DEMO_DIR=${DEMO_DIR:-$CACHE_DIR/demo$SERIES_SUFFIX}
mkdir -p "$DEMO_DIR"

ensure_venv
ensure_addons
# As root the cluster belongs to the postgres user, who cannot enter root's home folder.
if [ "$(id -u)" = 0 ]; then
    PGDATA_DEMO=${DEMO_PGDATA:-/var/lib/$MODULE/pgdata$SERIES_SUFFIX}
    mkdir -p "$(dirname "$PGDATA_DEMO")"
else
    PGDATA_DEMO=${DEMO_PGDATA:-$DEMO_DIR/pgdata}
fi
ensure_postgres "$PGDATA_DEMO"
write_odoo_conf "$DEMO_DIR/odoo.conf" "$DEMO_DIR/data" "$DB"

start_sandbox
prepare_demo_db

log "Odoo: http://localhost:$ODOO_PORT   login: admin   password: admin   (Ctrl-C stops)"
log "Salt Edge sandbox: http://127.0.0.1:$SANDBOX_PORT/api/v6"
odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" --http-port="$ODOO_PORT" --max-cron-threads=1

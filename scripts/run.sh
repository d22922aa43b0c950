#!/usr/bin/env bash
# make run: PostgreSQL, the Salt Edge sandbox and Odoo with the demo database. Ctrl-C stops
# everything this script started; the next run reuses the database.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DB=${DEMO_DB:-bank_connection_demo}
ODOO_PORT=${ODOO_PORT:-8069}
SANDBOX_PORT=${SANDBOX_PORT:-8071}
DEMO_DIR="$CACHE_DIR/demo"
mkdir -p "$DEMO_DIR"

ensure_venv
ensure_addons
# As root the cluster belongs to the postgres user, who cannot enter root's home folder.
if [ "$(id -u)" = 0 ]; then
    PGDATA_DEMO=${DEMO_PGDATA:-/var/lib/$MODULE/pgdata}
    mkdir -p "$(dirname "$PGDATA_DEMO")"
else
    PGDATA_DEMO=${DEMO_PGDATA:-$DEMO_DIR/pgdata}
fi
ensure_postgres "$PGDATA_DEMO"
write_odoo_conf "$DEMO_DIR/odoo.conf" "$DEMO_DIR/data" "$DB"

# The sandbox signs its callbacks with this key; Odoo is given the public half.
SIGNING_KEY="$DEMO_DIR/sandbox-signing-key.pem"
if [ ! -f "$SIGNING_KEY" ]; then
    python - "$SIGNING_KEY" <<'PY'
import sys
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048, backend=default_backend())
with open(sys.argv[1], "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
PY
fi

log "Starting the Salt Edge sandbox on port $SANDBOX_PORT"
(
    cd "$ROOT"
    SANDBOX_PORT=$SANDBOX_PORT SANDBOX_STATE="$DEMO_DIR/sandbox-state.json" \
        SANDBOX_SIGNING_KEY="$SIGNING_KEY" \
        SANDBOX_CALLBACK_URL="http://localhost:$ODOO_PORT/account_bank_connection/saltedge/callback/{kind}" \
        exec python -m sandbox
) >"$DEMO_DIR/sandbox.log" 2>&1 &
SANDBOX_PID=$!
CLEANUP+=("kill $SANDBOX_PID 2>/dev/null; wait $SANDBOX_PID 2>/dev/null")
for _ in $(seq 50); do
    curl -fsS "http://127.0.0.1:$SANDBOX_PORT/sandbox/public_key.pem" >/dev/null 2>&1 && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$DEMO_DIR/sandbox.log" >&2; die "The sandbox did not start."; }
    sleep 0.2
done

# base first, then a Belgian company, then accounting: Odoo picks the Belgian localisation.
create_demo_db() {
    odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" -i base --stop-after-init \
        && odoo_script "$ROOT/scripts/demo_company.py" -c "$DEMO_DIR/odoo.conf" -d "$DB" \
        && odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" -i "l10n_be,$MODULE" --stop-after-init
}

export DEMO_SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT" DEMO_SIGNING_KEY="$SIGNING_KEY" \
    DEMO_ODOO_URL="http://localhost:$ODOO_PORT"
if psql -d postgres -Atqc "select 1 from pg_database where datname = '$DB'" | grep -q 1; then
    log "Reusing the database $DB (updating the module)"
    odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" -u "$MODULE" --stop-after-init \
        >"$DEMO_DIR/update.log" 2>&1 || { tail -n 40 "$DEMO_DIR/update.log" >&2; die "Update failed."; }
else
    log "Creating the demo database $DB (about two minutes, once)"
    if ! create_demo_db >"$DEMO_DIR/install.log" 2>&1; then
        tail -n 40 "$DEMO_DIR/install.log" >&2
        dropdb --if-exists "$DB" >/dev/null 2>&1 || true
        die "Creating the demo database failed (log: $DEMO_DIR/install.log)."
    fi
fi
odoo_script "$ROOT/scripts/demo_setup.py" -c "$DEMO_DIR/odoo.conf" -d "$DB" \
    >"$DEMO_DIR/setup.log" 2>&1 \
    || { tail -n 40 "$DEMO_DIR/setup.log" >&2; die "Demo set-up failed."; }

log "Odoo: http://localhost:$ODOO_PORT   login: admin   password: admin   (Ctrl-C stops)"
log "Salt Edge sandbox: http://127.0.0.1:$SANDBOX_PORT/api/v6"
odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" --http-port="$ODOO_PORT" --max-cron-threads=1

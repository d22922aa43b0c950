#!/usr/bin/env bash
# The demo's pieces, shared by make run and make screenshots: the sandbox's signing key, the
# sandbox itself and the demo database. Sourced after common.sh, never run. Both callers set
# DB, DEMO_DIR, ODOO_PORT and SANDBOX_PORT first.

# The sandbox signs its callbacks with this key; Odoo is given the public half.
ensure_signing_key() {
    SIGNING_KEY="$DEMO_DIR/sandbox-signing-key.pem"
    [ -f "$SIGNING_KEY" ] && return
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
}

# The Salt Edge sandbox in the background, its state kept in DEMO_DIR, stopped on exit.
start_sandbox() {
    ensure_signing_key
    log "Starting the Salt Edge sandbox on port $SANDBOX_PORT"
    (
        cd "$ROOT"
        SANDBOX_PORT=$SANDBOX_PORT SANDBOX_STATE="$DEMO_DIR/sandbox-state.json" \
            SANDBOX_SIGNING_KEY="$SIGNING_KEY" \
            SANDBOX_CALLBACK_URL="http://localhost:$ODOO_PORT/account_bank_connection/saltedge/callback/{kind}" \
            exec python -m sandbox
    ) >"$DEMO_DIR/sandbox.log" 2>&1 &
    SANDBOX_PID=$!
    wait_for_sandbox "$SANDBOX_PID" "$SANDBOX_PORT" "$DEMO_DIR/sandbox.log"
}

# base first, then a Belgian company, then accounting: Odoo picks the Belgian localisation.
create_demo_db() {
    odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" -i base "${WITH_DEMO[@]}" --stop-after-init \
        && odoo_script "$ROOT/scripts/demo_company.py" -c "$DEMO_DIR/odoo.conf" -d "$DB" \
        && odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" -i "l10n_be,$MODULE" --stop-after-init
}

# The demo database, created once (or updated), then seeded by demo_setup.py: the two bank
# journals, Odoo pointed at the sandbox, the Belfius connection and its renewal reminder.
# Needs the sandbox running and odoo.conf written.
prepare_demo_db() {
    export DEMO_SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT" DEMO_SIGNING_KEY="$SIGNING_KEY" \
        DEMO_ODOO_URL="http://localhost:$ODOO_PORT"
    if psql -d postgres -Atqc "select 1 from pg_database where datname = '$DB'" | grep -q 1; then
        log "Reusing the database $DB (updating the module)"
        odoo_bin -c "$DEMO_DIR/odoo.conf" -d "$DB" -u "$MODULE" --stop-after-init \
            >"$DEMO_DIR/update.log" 2>&1 || { tail -n 40 "$DEMO_DIR/update.log" >&2; die "Update failed."; }
    else
        log "Creating the demo database $DB (a few minutes)"
        if ! create_demo_db >"$DEMO_DIR/install.log" 2>&1; then
            tail -n 40 "$DEMO_DIR/install.log" >&2
            dropdb --if-exists "$DB" >/dev/null 2>&1 || true
            die "Creating the demo database failed (log: $DEMO_DIR/install.log)."
        fi
    fi
    log "Seeding the demo (bank journals, the Belfius connection and its reminder)"
    odoo_script "$ROOT/scripts/demo_setup.py" -c "$DEMO_DIR/odoo.conf" -d "$DB" \
        >"$DEMO_DIR/setup.log" 2>&1 \
        || { tail -n 40 "$DEMO_DIR/setup.log" >&2; die "Demo set-up failed (log: $DEMO_DIR/setup.log)."; }
    grep '^demo:' "$DEMO_DIR/setup.log" | sed 's/^demo: /  /' >&2 || true
}

#!/usr/bin/env bash
# make i18n: export the module's terms to i18n/account_bank_connection.pot from a fresh
# install, then bring i18n/nl.po and i18n/fr.po up to date with it (new terms empty, gone
# terms dropped, translations kept). Translate the empty ones afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_venv
ensure_addons
ensure_postgres
WORK=$(mktemp -d "${TMPDIR:-/tmp}/abc-i18n.XXXXXX")
CLEANUP+=("rm -rf '$WORK'")
DB=abc_i18n_$$
write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"
odoo_bin -c "$WORK/odoo.conf" -d "$DB" -i "$MODULE" "${WITHOUT_DEMO[@]}" --stop-after-init \
    >"$WORK/install.log" 2>&1 || { tail -n 40 "$WORK/install.log" >&2; die "Install failed."; }
odoo_i18n_export "$WORK/odoo.conf" "$DB" "$ROOT/i18n/$MODULE.pot" >"$WORK/export.log" 2>&1 \
    || { tail -n 40 "$WORK/export.log" >&2; die "Export failed."; }
python "$ROOT/scripts/i18n_merge.py" "$ROOT/i18n/$MODULE.pot" "$ROOT/i18n/nl.po" "$ROOT/i18n/fr.po"

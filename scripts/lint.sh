#!/usr/bin/env bash
# make lint: ruff (format check and lint) and pylint-odoo's mandatory checks.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_venv
cd "$ROOT"
rc=0
log "ruff format --check"
ruff format --check . || rc=1
log "ruff check"
ruff check . || rc=1
log "pylint-odoo (mandatory checks)"
ensure_addons
# pylint-odoo reads the manifest from the module folder, so it runs on the linked name.
(cd "$ADDONS_DIR" && pylint --rcfile="$ROOT/.pylintrc" "$MODULE") || rc=1
[ "$rc" = 0 ] && log "lint: all clean"
exit "$rc"

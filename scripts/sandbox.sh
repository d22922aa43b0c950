#!/usr/bin/env bash
# make sandbox: the local Salt Edge sandbox in the foreground (SANDBOX_* variables, see README).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_venv
cd "$ROOT"
log "Salt Edge sandbox on http://${SANDBOX_HOST:-127.0.0.1}:${SANDBOX_PORT:-8071}/api/v6 (Ctrl-C stops it)"
exec python -m sandbox

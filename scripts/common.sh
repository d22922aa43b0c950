#!/usr/bin/env bash
# Shared set-up for the make targets: the Odoo source, the virtualenv, PostgreSQL and the
# addons folder. Sourced, never run. Everything is found relative to this file or through
# environment variables, so the same script runs on every machine and in CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=account_bank_connection
CACHE_HOME=${XDG_CACHE_HOME:-$HOME/.cache}
CACHE_DIR=${ABC_CACHE_DIR:-$CACHE_HOME/$MODULE}
# The Odoo series to run on: 18.0 (the default) or 19.0. Each has its own source tree,
# virtualenv and database names.
ODOO_VERSION=${ODOO_VERSION:-18.0}
case "$ODOO_VERSION" in
    18.0 | 19.0) ;;
    *) printf '[%s] ODOO_VERSION=%s is not supported: use 18.0 or 19.0.\n' "$MODULE" "$ODOO_VERSION" >&2; exit 1 ;;
esac
# Database names and logs of 18.0 stay as they always were; other series carry a suffix.
if [ "$ODOO_VERSION" = 18.0 ]; then SERIES_SUFFIX=; else SERIES_SUFFIX=_${ODOO_VERSION%%.*}; fi
ODOO_SRC=${ODOO_SRC:-$CACHE_HOME/odoo-src/$ODOO_VERSION}
# community (the default) or enterprise: the separate pass that installs the addon next to
# Odoo's Enterprise accounting, when the tree holds it, and runs only its own tests.
ODOO_EDITION=${ODOO_EDITION:-community}
# What the Enterprise pass installs next to the addon (account_accountant brings
# account_online_synchronization with it; l10n_be_coda reads CODA files).
ENTERPRISE_MODULES="account_accountant account_online_synchronization account_bank_statement_import_camt account_bank_statement_import_csv l10n_be_coda"
case "$ODOO_EDITION" in
    community | enterprise) ;;
    *) printf '[%s] ODOO_EDITION=%s is not supported: use community or enterprise.\n' "$MODULE" "$ODOO_EDITION" >&2; exit 1 ;;
esac
ODOO_ARCHIVE_URL=${ODOO_ARCHIVE_URL:-https://github.com/odoo/odoo/archive/refs/heads/$ODOO_VERSION.tar.gz}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$CACHE_DIR"

log() { printf '\033[1m[%s]\033[0m %s\n' "$MODULE" "$*" >&2; }
die() { printf '\033[31m[%s] %s\033[0m\n' "$MODULE" "$*" >&2; exit 1; }

# --- Odoo source ------------------------------------------------------------------
# Two layouts are accepted: the GitHub repository (odoo-bin, addons/, odoo/addons/) and a
# packaged build (the odoo package at the top, every addon in odoo/addons/, no odoo-bin).
odoo_tree_layout() {
    if [ -f "$1/odoo-bin" ] && [ -d "$1/addons" ]; then
        echo source
    elif [ -f "$1/odoo/release.py" ] && [ -d "$1/odoo/addons/base" ] && [ -f "$1/requirements.txt" ]; then
        echo package
    fi
}

# The series of a tree, from its odoo/release.py ("18.0").
odoo_tree_series() {
    sed -nE 's/^version_info = \(([0-9]+), ([0-9]+),.*/\1.\2/p' "$1/odoo/release.py"
}

ensure_odoo_src() {
    ODOO_LAYOUT=$(odoo_tree_layout "$ODOO_SRC")
    if [ -n "$ODOO_LAYOUT" ]; then
        check_odoo_series
        return
    fi
    log "No Odoo $ODOO_VERSION tree at $ODOO_SRC: downloading the official $ODOO_VERSION source archive"
    local tmp
    tmp=$(mktemp -d)
    if curl -fsSL --connect-timeout 15 --max-time 900 "$ODOO_ARCHIVE_URL" -o "$tmp/odoo.tar.gz" \
        && mkdir -p "$ODOO_SRC" \
        && tar -xzf "$tmp/odoo.tar.gz" -C "$ODOO_SRC" --strip-components=1; then
        rm -rf "$tmp"
        ODOO_LAYOUT=$(odoo_tree_layout "$ODOO_SRC")
        [ -n "$ODOO_LAYOUT" ] || die "The download did not contain an Odoo tree (odoo-bin or the odoo package)."
        check_odoo_series
        return
    fi
    rm -rf "$tmp"
    die "Could not find or download Odoo $ODOO_VERSION. Put an Odoo $ODOO_VERSION tree somewhere (the folder that holds odoo-bin, or a packaged build with the odoo package and requirements.txt at its top) and run: export ODOO_SRC=/path/to/odoo-$ODOO_VERSION   (or unpack it into $CACHE_HOME/odoo-src/$ODOO_VERSION)"
}

# The tree must be of the series asked for; what the command line says differs by series.
check_odoo_series() {
    local series
    series=$(odoo_tree_series "$ODOO_SRC")
    [ "$series" = "$ODOO_VERSION" ] \
        || die "$ODOO_SRC holds Odoo ${series:-of an unknown series}, not $ODOO_VERSION: point ODOO_SRC at an Odoo $ODOO_VERSION tree, or set ODOO_VERSION=${series:-...}."
    if [ "$ODOO_VERSION" = 18.0 ]; then
        WITHOUT_DEMO=(--without-demo=all)
        WITH_DEMO=()
    else
        # Since 19.0 a new database has no demo data unless asked, and the option is a flag.
        WITHOUT_DEMO=(--without-demo)
        WITH_DEMO=(--with-demo)
    fi
}

# odoo_i18n_export CONF DB FILE: the module's terms into FILE (a .pot). Odoo 19 exports with
# the i18n subcommand, which reads everything but the database from the configuration.
odoo_i18n_export() {
    if [ "$ODOO_VERSION" = 18.0 ]; then
        odoo_bin -c "$1" -d "$2" --modules="$MODULE" --i18n-export="$3" --stop-after-init
    else
        python "${ODOO_CMD[@]}" i18n export -c "$1" -d "$2" -o "$3" "$MODULE"
    fi
}

# The tree Odoo runs from (ODOO_HOME). A packaged build keeps every addon, Enterprise ones
# included, in odoo/addons/, which Odoo always puts on its addons path; Enterprise modules
# that auto-install on web, mail or account would then be installed with ours. Odoo runs
# instead from a copy made of hard links (no disk space, seconds) that holds only the
# Community modules (an Enterprise manifest says license OEEL-1 or OPL-1).
ensure_odoo_home() {
    if [ "$ODOO_EDITION" = enterprise ]; then
        # The pass next to Odoo's Enterprise modules runs from the whole tree.
        [ "$ODOO_LAYOUT" = package ] || die "ODOO_EDITION=enterprise needs a packaged Odoo tree that holds the Enterprise modules."
        ODOO_HOME=$(cd "$ODOO_SRC" && pwd -P)
        ODOO_CMD=(-m odoo)
        ODOO_ADDONS_PATH="$ODOO_HOME/odoo/addons"
        return
    fi
    if [ "$ODOO_LAYOUT" = source ]; then
        ODOO_HOME=$ODOO_SRC
        ODOO_CMD=("$ODOO_HOME/odoo-bin")
        ODOO_ADDONS_PATH="$ODOO_HOME/addons,$ODOO_HOME/odoo/addons"
        return
    fi
    local src key
    src=$(cd "$ODOO_SRC" && pwd -P)
    key=$( { echo "$src"; stat -c '%Y' "$src/odoo" "$src/odoo/addons"; echo "community 2"; } | sha256sum | cut -c1-16)
    ODOO_HOME="$CACHE_DIR/odoo-community-$key"
    if [ ! -f "$ODOO_HOME/.complete" ]; then
        log "Making a Community-only view of $ODOO_SRC in $ODOO_HOME (once)"
        rm -rf "$ODOO_HOME"
        mkdir -p "$ODOO_HOME/odoo/addons"
        local entry
        for entry in "$src"/*; do
            [ "$(basename "$entry")" = odoo ] || ln -s "$entry" "$ODOO_HOME/"
        done
        for entry in "$src"/odoo/*; do
            [ "$(basename "$entry")" = addons ] && continue
            cp -al "$entry" "$ODOO_HOME/odoo/" 2>/dev/null || cp -a "$entry" "$ODOO_HOME/odoo/"
        done
        "$PYTHON" "$ROOT/scripts/community_addons.py" "$src/odoo/addons" | while read -r entry; do
            cp -al "$src/odoo/addons/$entry" "$ODOO_HOME/odoo/addons/" 2>/dev/null \
                || cp -a "$src/odoo/addons/$entry" "$ODOO_HOME/odoo/addons/"
        done
        [ -d "$ODOO_HOME/odoo/addons/account" ] || die "No Community account module in $ODOO_SRC/odoo/addons."
        touch "$ODOO_HOME/.complete"
    fi
    ODOO_CMD=(-m odoo)
    ODOO_ADDONS_PATH="$ODOO_HOME/odoo/addons"
}

# pip, without the noise of the machine's unused local package folders.
pip_install() {
    local out rc=0
    out=$("$VENV/bin/pip" install -q "$@" 2>&1) || rc=$?
    grep -v 'is ignored: it is neither' <<<"$out" >&2 || true
    return "$rc"
}

# --- virtualenv ---------------------------------------------------------------------
# One virtualenv per set of inputs (Python version, Odoo's requirements, ours), kept in
# the cache so a fresh clone reuses it.
ensure_venv() {
    ensure_odoo_src
    local key
    key=$( {
        "$PYTHON" -c 'import sys; print(sys.version)'
        cat "$ODOO_SRC/requirements.txt" "$ROOT/requirements-dev.txt"
        echo "recipe 2"
    } | sha256sum | cut -c1-16)
    VENV="$CACHE_DIR/venv-$key"
    if [ ! -f "$VENV/.complete" ]; then
        log "Creating the virtualenv $VENV (a few minutes, once)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        local reqs constraint
        reqs=$(mktemp)
        constraint=$(mktemp)
        # python-ldap (auth_ldap only) needs LDAP headers and is not used by this addon.
        grep -v -i '^python-ldap' "$ODOO_SRC/requirements.txt" >"$reqs"
        # One old package still builds with pkg_resources (see docs).
        echo 'setuptools<70' >"$constraint"
        # That pkg_resources cannot find wheels whose .dist-info name is normalised
        # (zope_event-5.1, zope_interface-8): gevent's monkey-patching then dies, and with
        # --workers Odoo's gevent process restarts every two seconds.
        printf '%s\n' 'zope.event<5.1' 'zope.interface<8' >>"$constraint"
        if [ -n "${PIP_CONSTRAINT:-}" ]; then
            cat "$PIP_CONSTRAINT" >>"$constraint"
        fi
        pip_install --upgrade 'pip<25' 'setuptools<70' wheel \
            && PIP_CONSTRAINT="$constraint" pip_install -r "$reqs" -r "$ROOT/requirements-dev.txt" \
            || die "The virtualenv $VENV could not be completed (see pip's messages above)."
        rm -f "$reqs" "$constraint"
        touch "$VENV/.complete"
    fi
    export PATH="$VENV/bin:$PATH"
    ensure_odoo_home
    export PYTHONPATH="$ODOO_HOME${PYTHONPATH:+:$PYTHONPATH}"
}

# --- addons path --------------------------------------------------------------------
# Odoo derives a module's name from its folder; the repository root is the module, so it
# is linked into a build folder under its real name.
ensure_addons() {
    ADDONS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/abc-addons.XXXXXX")
    ln -s "$ROOT" "$ADDONS_DIR/$MODULE"
    ADDONS_PATH="$ODOO_ADDONS_PATH,$ADDONS_DIR"
    CLEANUP+=("rm -rf '$ADDONS_DIR'")
}

# --- PostgreSQL ---------------------------------------------------------------------
CLEANUP=()
run_cleanup() {
    local i
    for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUP[$i]}" || true
    done
    CLEANUP=()
}
trap run_cleanup EXIT
trap 'exit 130' INT TERM

pg_answers() {
    command -v psql >/dev/null 2>&1 && psql -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

find_pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/pg_ctl" ] && PG_BIN="$d"
    done
    if [ -z "${PG_BIN:-}" ] && command -v pg_ctl >/dev/null 2>&1; then
        PG_BIN=$(dirname "$(command -v pg_ctl)")
    fi
}

as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# ensure_postgres [DATA_DIR]: with no argument a throw-away cluster in a temp folder.
ensure_postgres() {
    local data_dir=${1:-}
    if [ -n "${PGHOST:-}${PGPORT:-}${PGUSER:-}" ] && pg_answers; then
        log "Using the PostgreSQL server named by PG* (${PGHOST:-default}:${PGPORT:-5432})"
        DB_ARGS=()
        [ -n "${PGHOST:-}" ] && DB_ARGS+=(--db_host="$PGHOST")
        [ -n "${PGPORT:-}" ] && DB_ARGS+=(--db_port="$PGPORT")
        [ -n "${PGUSER:-}" ] && DB_ARGS+=(--db_user="$PGUSER")
        [ -n "${PGPASSWORD:-}" ] && DB_ARGS+=(--db_password="$PGPASSWORD")
        return
    fi
    PG_BIN=
    find_pg_bin
    if [ -z "$PG_BIN" ]; then
        if [ "$(id -u)" = 0 ]; then
            log "Installing PostgreSQL (Debian package)"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            find_pg_bin
        fi
        [ -n "$PG_BIN" ] || die "PostgreSQL is not installed. Install it (Debian: apt-get install postgresql) or set PGHOST/PGPORT/PGUSER to a running server."
    fi
    local tmp_cluster=0
    if [ -z "$data_dir" ]; then
        data_dir=$(mktemp -d "${TMPDIR:-/tmp}/abc-pg.XXXXXX")
        tmp_cluster=1
    fi
    mkdir -p "$data_dir"
    PG_SOCKET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/abc-pgsock.XXXXXX")
    chmod 700 "$data_dir"
    chmod 755 "$PG_SOCKET_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$data_dir" "$PG_SOCKET_DIR"
        # The postgres user must be able to reach the folders.
        chmod o+x "$(dirname "$data_dir")" "$(dirname "$PG_SOCKET_DIR")" 2>/dev/null || true
    fi
    if [ ! -f "$data_dir/PG_VERSION" ]; then
        as_pg_owner "$PG_BIN/initdb" -D "$data_dir" -U odoo --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null \
            || die "initdb failed in $data_dir"
    fi
    PG_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg_owner "$PG_BIN/pg_ctl" -D "$data_dir" -l "$data_dir/server.log" -w -t 60 \
        -o "-k $PG_SOCKET_DIR -p $PG_PORT -c listen_addresses='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
        start >/dev/null || { cat "$data_dir/server.log" >&2; die "PostgreSQL did not start"; }
    if [ "$tmp_cluster" = 1 ]; then
        CLEANUP+=("as_pg_owner '$PG_BIN/pg_ctl' -D '$data_dir' -m immediate stop >/dev/null 2>&1; rm -rf '$data_dir' '$PG_SOCKET_DIR'")
    else
        CLEANUP+=("as_pg_owner '$PG_BIN/pg_ctl' -D '$data_dir' -m fast stop >/dev/null 2>&1; rm -rf '$PG_SOCKET_DIR'")
    fi
    export PGHOST="$PG_SOCKET_DIR" PGPORT="$PG_PORT" PGUSER=odoo
    DB_ARGS=(--db_host="$PGHOST" --db_port="$PGPORT" --db_user=odoo)
    log "PostgreSQL started (private cluster, socket in $PG_SOCKET_DIR)"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for_sandbox PID PORT LOG: the sandbox just started in the background answers (it is
# stopped on exit); dies with its log if it stopped or never answered.
wait_for_sandbox() {
    local pid=$1 port=$2 sandbox_log=$3
    CLEANUP+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null")
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$port/sandbox/public_key.pem" >/dev/null 2>&1 && return
        kill -0 "$pid" 2>/dev/null || { cat "$sandbox_log" >&2; die "The sandbox did not start."; }
        sleep 0.2
    done
    die "The sandbox did not answer on port $port."
}

# odoo_script FILE OPTIONS...: run FILE with ``env`` on a database (scripts/odoo_script.py).
odoo_script() {
    local file=$1
    shift
    python "$ROOT/scripts/odoo_script.py" "$file" --addons-path="$ADDONS_PATH" "${DB_ARGS[@]}" "$@"
}

# odoo_bin [SUBCOMMAND] OPTIONS...: Odoo with our addons path and database settings.
odoo_bin() {
    local sub=()
    case "${1:-}" in -*|"") ;; *) sub=("$1"); shift ;; esac
    python "${ODOO_CMD[@]}" "${sub[@]}" --addons-path="$ADDONS_PATH" "${DB_ARGS[@]}" "$@"
}

# --- Chromium for the browser tests ---------------------------------------------------
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 \
        || command -v chromium-browser >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ]; then
        log "Installing Chromium (Debian package) for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        die "Chromium is needed for the browser tests: apt-get install chromium"
    fi
}

# write_odoo_conf FILE DATA_DIR DB: an Odoo configuration for this run.
write_odoo_conf() {
    mkdir -p "$2"
    {
        echo "[options]"
        echo "addons_path = $ADDONS_PATH"
        echo "data_dir = $2"
        echo "db_name = $3"
        echo "dbfilter = ^$3\$"
        echo "db_host = ${PGHOST:-}"
        echo "db_port = ${PGPORT:-}"
        echo "db_user = ${PGUSER:-}"
        echo "db_password = ${PGPASSWORD:-}"
        echo "list_db = False"
        echo "max_cron_threads = 0"
        echo "http_interface = ${ODOO_HTTP_INTERFACE:-127.0.0.1}"
    } >"$1"
}

# check_install_log LOG: no ERROR or WARNING line may come from our module.
# install_fresh_db DB CONF LOG: drop DB if left over, install the module into it without
# demo data (dropped again on exit), quiet log in LOG; dies with the log's tail on failure.
install_fresh_db() {
    local db=$1 conf=$2 install_log=$3
    log "Installing $MODULE into a fresh database $db"
    dropdb --if-exists "$db" >/dev/null 2>&1 || true
    CLEANUP+=("dropdb --if-exists '$db' >/dev/null 2>&1")
    odoo_bin -c "$conf" -d "$db" -i "$MODULE" "${WITHOUT_DEMO[@]}" \
        --stop-after-init --log-level=warn >"$install_log" 2>&1 \
        || { tail -n 40 "$install_log" >&2; die "The module did not install."; }
}

# A record is its first line and the lines that follow it (a view warning names the view
# and its file only there).
check_install_log() {
    local bad
    bad=$(awk -v pattern="$MODULE|account\\.bank\\.|bank_connect" '
        function flush() { if (record != "" && bad_level && record ~ pattern) print record }
        /^[0-9-]+ [0-9:,]+ [0-9]+ / {
            flush()
            record = $0
            bad_level = ($4 == "ERROR" || $4 == "WARNING" || $4 == "CRITICAL")
            next
        }
        { record = record "\n" $0 }
        END { flush() }' "$1")
    if [ -n "$bad" ]; then
        printf '%s\n' "$bad" >&2
        die "The install log has errors or warnings from $MODULE."
    fi
    log "Install log is clean"
}

#!/usr/bin/env bash
# make test: a fresh database on a private PostgreSQL, the module installed with a clean
# log, the tests through pytest-odoo, then the browser tests through Odoo's own runner.
# Odoo 18.0 unless ODOO_VERSION says otherwise (ODOO_VERSION=19.0 make test).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_venv
ensure_addons
ensure_postgres
ensure_chromium

WORK=$(mktemp -d "${TMPDIR:-/tmp}/abc-test.XXXXXX")
LOGS="$CACHE_DIR/last-test-logs$SERIES_SUFFIX"
# The logs of the last run stay in the cache for a look after a failure.
CLEANUP+=("rm -rf '$LOGS'; mkdir -p '$LOGS'; cp '$WORK'/*.log '$LOGS'/ 2>/dev/null; rm -rf '$WORK'")
DB=${TEST_DB:-abc_test${SERIES_SUFFIX}_$$}
# The tests and the sandbox write every secret they use here; the logs are scanned for them
# at the end. Our module logs down to DEBUG in both runners, so the scan sees everything.
export ABC_SECRETS_FILE="$WORK/secrets.txt"
export ABC_PYTEST_LOG="$WORK/pytest-debug.log"
: >"$ABC_SECRETS_FILE"
write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"

# ODOO_EDITION=enterprise: the separate pass next to Odoo's Enterprise accounting. The
# addon is installed with its bank synchronization, reconciliation and statement imports
# (CODA, CAMT, CSV), and only the tests of that pass run (tests/test_enterprise*.py, and
# in Odoo's runner the dashboard test tagged abc_enterprise_dashboard).
INSTALL=$MODULE
PYTEST_TARGETS=("$ADDONS_DIR/$MODULE/tests")
if [ "$ODOO_EDITION" = enterprise ]; then
    for needed in $ENTERPRISE_MODULES; do
        if [ ! -f "$ODOO_HOME/odoo/addons/$needed/__manifest__.py" ]; then
            log "Enterprise pass skipped: $ODOO_SRC has no Enterprise module $needed (the tests next to Odoo's Enterprise accounting need a tree that holds them)."
            exit 0
        fi
    done
    INSTALL="$MODULE,${ENTERPRISE_MODULES// /,}"
    PYTEST_TARGETS=("$ADDONS_DIR/$MODULE"/tests/test_enterprise*.py)
    BROWSER_TAGS=${ODOO_TEST_TAGS:-abc_enterprise_dashboard/$MODULE}
    SKIP_SANDBOX=1
    DB=${TEST_DB:-abc_test${SERIES_SUFFIX}_enterprise_$$}
    write_odoo_conf "$WORK/odoo.conf" "$WORK/data" "$DB"
fi

log "Installing $INSTALL into a fresh database $DB"
dropdb --if-exists "$DB" >/dev/null 2>&1 || true
odoo_bin -c "$WORK/odoo.conf" -d "$DB" -i "$INSTALL" "${WITHOUT_DEMO[@]}" \
    --stop-after-init --log-level=info >"$WORK/install.log" 2>&1 \
    || { tail -n 60 "$WORK/install.log" >&2; die "The module did not install."; }
check_install_log "$WORK/install.log"

# The tests write thousands of rows in transactions that are rolled back. Autovacuum then
# finds those tables "empty" and records 0 rows for the planner, which, inside the next
# test's transaction holding thousands of rows, picks nested loops over sequential scans:
# one of Odoo's payment-state queries went from milliseconds to minutes. The test
# database keeps the statistics of the install instead.
psql -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || die "Could not turn autovacuum off in $DB."
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
              WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', r.name);
    END LOOP;
END $$;
SQL

# For work on one part: SKIP_PYTEST=1 / SKIP_SANDBOX=1 / SKIP_BROWSER=1, ODOO_TEST_TAGS narrows Odoo's runner
# (e.g. post_install/account_bank_connection:TestCallbackFuzzing), arguments go to pytest.
BROWSER_TAGS=${BROWSER_TAGS:-${ODOO_TEST_TAGS:-post_install/$MODULE}}
pytest_rc=0
pytest_summary="=== 0 passed (skipped by SKIP_PYTEST) ==="
if [ -z "${SKIP_PYTEST:-}" ]; then
log "Running the tests with pytest-odoo"
PYTHONPATH="$ROOT/scripts:$PYTHONPATH" python -m pytest -p no:cacheprovider -p pytest_post_install -p pytest_log_file --durations=10 --odoo-config="$WORK/odoo.conf" --odoo-database="$DB" \
    "${PYTEST_TARGETS[@]}" "$@" 2>&1 | tee "$WORK/pytest.log" || pytest_rc=$?
pytest_summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$WORK/pytest.log" | tail -n 1)
fi

# The sandbox's own tests: plain Python, no database. From the repository root, where
# ``sandbox`` is a top-level package; confcutdir keeps pytest from importing the addon's
# __init__.py (Odoo's) as a package above them. SKIP_SANDBOX=1 skips them.
sandbox_rc=0
sandbox_summary="=== 0 passed (skipped by SKIP_SANDBOX) ==="
if [ -z "${SKIP_SANDBOX:-}" ]; then
log "Running the sandbox's own tests (sandbox/tests)"
(cd "$ROOT" && python -m pytest -p no:cacheprovider -p no:odoo --confcutdir=sandbox/tests \
    sandbox/tests) >"$WORK/sandbox-tests.log" 2>&1 || sandbox_rc=$?
tail -n 30 "$WORK/sandbox-tests.log"
sandbox_summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$WORK/sandbox-tests.log" | tail -n 1)
fi

browser_rc=0
browser_counts=
if [ -z "${SKIP_BROWSER:-}" ]; then
log "Running the browser tests (Odoo's runner, headless Chromium)"
odoo_bin -c "$WORK/odoo.conf" -d "$DB" --test-enable --test-tags="$BROWSER_TAGS" \
    --http-port="$(free_port)" --stop-after-init --log-level=info \
    --log-handler="odoo.addons.$MODULE:DEBUG" >"$WORK/browser.log" 2>&1 \
    || browser_rc=$?
grep -a -E '(ERROR|FAIL|odoo.tests.stats|tests.result|Starting|running)' "$WORK/browser.log" \
    | grep -a -v -e 'INFO .* module ' -e 'Runtime.consoleAPICalled' | tail -n 40 >&2 || true
browser_counts=$(sed -nE 's/.*odoo.tests.result: ([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests.*/\1 \2 \3/p' "$WORK/browser.log" | tail -n 1)
fi
read -r b_failed b_errors b_run <<<"${browser_counts:-0 0 0}"
if [ "$browser_rc" != 0 ]; then
    grep -E -A 30 ' (ERROR|CRITICAL) ' "$WORK/browser.log" | head -n 200 >&2 || true
    if [ "$b_failed" = 0 ] && [ "$b_errors" = 0 ]; then
        tail -n 40 "$WORK/browser.log" >&2
        b_errors=1
    fi
fi

# No Secret, private key or signature in any log of the run (names the log and the kind).
secrets_rc=0
python "$ROOT/scripts/scan_secrets.py" "$ABC_SECRETS_FILE" "$WORK/install.log" \
    "$WORK/pytest.log" "$ABC_PYTEST_LOG" "$WORK/browser.log" >&2 || secrets_rc=$?
rm -f "$ABC_SECRETS_FILE"

p_passed=$(grep -oE '[0-9]+ passed' <<<"$pytest_summary" | grep -oE '[0-9]+' || echo 0)
p_failed=$( (grep -oE '[0-9]+ (failed|errors?)' <<<"$pytest_summary" || true) | awk '{s += $1} END {print s + 0}')
s_passed=$(grep -oE '[0-9]+ passed' <<<"$sandbox_summary" | grep -oE '[0-9]+' || echo 0)
s_failed=$( (grep -oE '[0-9]+ (failed|errors?)' <<<"$sandbox_summary" || true) | awk '{s += $1} END {print s + 0}')
if [ "$sandbox_rc" != 0 ] && [ "$s_failed" = 0 ]; then
    s_failed=1
fi
b_passed=$((b_run - b_failed - b_errors))
echo
if [ "$ODOO_EDITION" = enterprise ]; then
    echo "Enterprise pass ($INSTALL): only the tests next to Odoo's Enterprise accounting ran."
else
    echo "The tests next to Odoo's Enterprise accounting were skipped (Community): they run with ODOO_EDITION=enterprise ODOO_VERSION=19.0 on a tree that holds the Enterprise modules."
fi
echo "pytest: $pytest_summary"
echo "sandbox tests (pytest): $sandbox_summary"
echo "browser tests (Odoo runner): $b_passed passed, $((b_failed + b_errors)) failed of $b_run"
echo "total: $((p_passed + s_passed + b_passed)) passed, $((p_failed + s_failed + b_failed + b_errors)) failed"
if [ "$pytest_rc" != 0 ] || [ "$sandbox_rc" != 0 ] || [ "$browser_rc" != 0 ] \
    || [ $((b_failed + b_errors)) != 0 ]; then
    die "Tests failed (logs: $LOGS)."
fi
if [ "$secrets_rc" != 0 ]; then
    die "A secret is in the logs of this run (see the secret scan above; logs: $LOGS)."
fi
if { [ -z "${SKIP_PYTEST:-}" ] && [ "$p_passed" = 0 ]; } \
    || { [ -z "${SKIP_SANDBOX:-}" ] && [ "$s_passed" = 0 ]; } \
    || { [ -z "${SKIP_BROWSER:-}" ] && [ "$b_run" = 0 ]; }; then
    die "No tests ran: something is wrong with the test set-up."
fi

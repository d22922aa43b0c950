# Everything runs from here; the scripts find Odoo, the virtualenv and PostgreSQL themselves.
# See README.md.

N ?= 10000

.PHONY: test run lint sandbox bench help

help:
	@echo "make run      the demo: Odoo on http://localhost:8069 (admin/admin) with the Salt Edge sandbox"
	@echo "make test     install the module in a fresh database and run every test"
	@echo "make lint     ruff and pylint-odoo"
	@echo "make sandbox  the local Salt Edge sandbox in the foreground"

test:
	@bash scripts/test.sh

run:
	@bash scripts/run.sh

lint:
	@bash scripts/lint.sh

sandbox:
	@bash scripts/sandbox.sh

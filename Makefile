# Everything runs from here; the scripts find Odoo, the virtualenv and PostgreSQL themselves.
# See README.md.

N ?= 10000
RATE ?= 200
DURATION ?= 10
WORKERS ?= 4

.PHONY: help test run lint sandbox i18n bench bench-idle screenshots loadtest

help:
	@echo "make run      the demo: Odoo on http://localhost:8069 (admin/admin) with the Salt Edge sandbox"
	@echo "make test     install the module in a fresh database and run every test"
	@echo "make lint     ruff and pylint-odoo"
	@echo "make sandbox  the local Salt Edge sandbox in the foreground"
	@echo "make i18n     refresh i18n/*.pot and the nl/fr .po files from the code"
	@echo "make bench    the import of 1,000 and N=10000 transactions against a same-shape baseline, REPEAT=3 alternating runs; checks the goals"
	@echo "make bench-idle  one hourly import with nothing new at Salt Edge, for 1, 100 and 1,000 connections (also the end of make bench)"
	@echo "make screenshots  make the README's pictures again (docs/screenshots/) from a throw-away demo"
	@echo "make loadtest CPU of a signed callback over a bare Odoo request, phases of RATE=200 a second for DURATION=10 s, REPEAT=2, WORKERS=4: ratio ≤ 2, each applied once"

test:
	@bash scripts/test.sh

run:
	@bash scripts/run.sh

lint:
	@bash scripts/lint.sh

sandbox:
	@bash scripts/sandbox.sh

i18n:
	@bash scripts/i18n.sh

bench:
	@bash scripts/bench.sh $(N)
	@bash scripts/bench_idle.sh

bench-idle:
	@bash scripts/bench_idle.sh

screenshots:
	@bash scripts/screenshots.sh

loadtest:
	@RATE=$(RATE) DURATION=$(DURATION) WORKERS=$(WORKERS) bash scripts/loadtest.sh

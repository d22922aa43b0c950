"""pytest plugin for make test: write our module's log, down to DEBUG, into the file named
by ABC_PYTEST_LOG, for the secret scan that follows the tests.

pytest-odoo leaves the ``odoo`` loggers at Odoo's configured level (CRITICAL under
pytest), which would drop our records before any handler sees them; so our logger gets
its own level and its own file handler. Its records still go up to Odoo's handlers too.
Kept outside the addon so loading it imports no Odoo code.
"""

import logging
import os

LOGGERS = ("odoo.addons.account_bank_connection",)
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def pytest_sessionstart(session):
    # After pytest-odoo's pytest_cmdline_main has set Odoo's logging up.
    path = os.environ.get("ABC_PYTEST_LOG")
    if not path:
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    session.config.add_cleanup(handler.close)

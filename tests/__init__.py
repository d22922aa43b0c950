# Odoo's own runner imports these; pytest-odoo collects every test_*.py by itself.
from . import test_bank_connection
from . import test_browser

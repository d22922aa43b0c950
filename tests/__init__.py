# Odoo's own runner imports these; pytest-odoo collects every test_*.py by itself.
from . import test_bank_connection
from . import test_browser
from . import test_connection_flow
from . import test_http_routes
from . import test_reminders
from . import test_import
from . import test_i18n
from . import test_access
from . import test_access_routes
from . import test_state_token
from . import test_secrets
from . import test_callback_fuzz
from . import test_faults
from . import test_realistic_sandbox
from . import test_database_constraints
from . import test_rules
from . import test_reconciliation_ready

from . import account_bank_connection
from . import account_bank_connection_account
from . import account_journal

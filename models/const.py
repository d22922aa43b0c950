"""What this module knows of Salt Edge and of its own settings, in one place."""

PARAM_PREFIX = "account_bank_connection."
PARAM_BASE_URL = PARAM_PREFIX + "saltedge_base_url"
PARAM_APP_ID = PARAM_PREFIX + "saltedge_app_id"
PARAM_SECRET = PARAM_PREFIX + "saltedge_secret"
PARAM_PRIVATE_KEY = PARAM_PREFIX + "saltedge_private_key"
PARAM_PUBLIC_KEY = PARAM_PREFIX + "saltedge_public_key"
PARAM_CONSENT_DAYS = PARAM_PREFIX + "consent_period_days"
PARAM_INCLUDE_SANDBOXES = PARAM_PREFIX + "include_sandboxes"
PARAM_CALLBACK_URL = PARAM_PREFIX + "callback_url"
PARAM_REFRESH_INTERVAL_HOURS = PARAM_PREFIX + "refresh_interval_hours"
# Salt Edge refreshes every connection by itself (``automatic_refresh``); on by default
# (data/ir_config_parameter.xml), off when the parameter is gone.
PARAM_AUTOMATIC_REFRESH = PARAM_PREFIX + "automatic_refresh"

DEFAULT_CONSENT_DAYS = 180
# Salt Edge allows 4 background refreshes a day per PSD2 connection: ask at most every 6 h.
DEFAULT_REFRESH_INTERVAL_HOURS = 6

RETURN_ROUTE = "/account_bank_connection/saltedge/return"
CALLBACK_ROUTE = "/account_bank_connection/saltedge/callback"
# The waiting page after the return, then its result: SESSION_ROUTE/<session id>.
SESSION_ROUTE = "/account_bank_connection/connect"

# How long a connect session (and its state token) stays valid, in seconds.
CONNECT_SESSION_LIFETIME = 3600
# How long the list of banks of a country is kept before it is asked again, in seconds.
PROVIDER_CACHE_SECONDS = 24 * 3600

# Seconds to connect to Salt Edge and to wait for each read of its answer.
HTTP_TIMEOUT = 20
# Tries after a 429, a 5xx, a timeout or an unreadable answer, and the waits in between
# (seconds: the first, doubled each try, and the most, also for a Retry-After).
HTTP_RETRIES = 4
HTTP_BACKOFF_BASE = 0.5
HTTP_BACKOFF_MAX = 30
# A person waiting (a button, the return from the bank, the waiting page): a short timeout,
# one retry, a short wait, and all calls of the action within a budget well under Odoo's
# limit_time_real (120 s by default), so the page answers with a sentence within 30 s.
INTERACTIVE_HTTP_TIMEOUT = 10
INTERACTIVE_HTTP_RETRIES = 1
INTERACTIVE_BACKOFF_MAX = 2
INTERACTIVE_BUDGET_SECONDS = 25

# The callbacks we act on; a correctly signed callback of another kind (v5's service and
# interactive, or one Salt Edge adds later) is answered 200 and recorded as ignored.
CALLBACK_KINDS = ("success", "fail", "notify", "destroy")
CALLBACK_KIND_PATTERN = r"^[a-z_]{1,32}$"
# How old a callback may be by its ``meta.time`` (Salt Edge's clock) when it arrives, and
# how far ahead of Odoo's clock Salt Edge's may be: a signed callback outside that is
# refused, so one captured on the way cannot be replayed once the ledger forgets it.
CALLBACK_MAX_AGE_SECONDS = 24 * 3600
CALLBACK_CLOCK_SKEW_SECONDS = 5 * 60
# How long the ledger of callbacks keeps a fingerprint: longer than a callback is accepted
# (max age plus skew), so within that time a replay is always known.
CALLBACK_LEDGER_DAYS = 30
# Our own reference of a connect, sent in ``attempt.custom_fields`` and echoed in every
# callback: how a connection is found when the user never comes back.
CUSTOM_FIELD_REFERENCE = "odoo_connect_reference"
# How long after a connect a connection the user never came back from is looked for.
UNRETURNED_CONNECT_DAYS = 2
# Salt Edge's country code of its fake banks (its sandboxes), listed with a real country's
# when the setting includes them.
SANDBOX_COUNTRY = "XF"
# Salt Edge connection status values that need a new consent from the user.
STATUS_NEEDS_USER = ("inactive", "disabled")
# The stages of Salt Edge's fetch (v5 and v6 names), as the waiting page tells them, and
# the stage its last fetch ends on.
STAGES_CONNECTING = ("start", "connect", "interactive")
STAGES_ACCOUNTS = ("fetch_holder_info", "fetch_accounts")
STAGE_FETCH_RECENT = "fetch_recent"
STAGE_FETCH_FULL = "fetch_full"
STAGE_FINISH = "finish"
# The waiting page shows Salt Edge's stages this long, then says the transactions keep
# arriving by themselves (seconds).
FIRST_FETCH_WAIT_SECONDS = 180
# Each request of the waiting page imports pages for this long, then hands the rest to the
# next request and to the requested-import scheduled action (seconds).
FIRST_SLICE_SECONDS = 2
# The waiting page polls every second; a slice that calls Salt Edge starts at most this
# often per connect (seconds): a few people connecting at once must not use up the app's
# Salt Edge rate limit, shared by every company of the database.
FIRST_SLICE_MIN_INTERVAL_SECONDS = 5
# A waiting page's first import whose claim is older than this is claimed again (minutes).
FIRST_IMPORT_STALE_MINUTES = 5
# The waiting page's first lines: this many are committed before the rest of the first page.
FIRST_CHUNK = 20
# The opening line's key in place of a Salt Edge transaction id: the unique constraint per
# journal then also keeps it single.
OPENING_KEY = "opening:%s"
# An import's error as kept on the run and the connection, cut to this many characters.
ERROR_TEXT_LIMIT = 1000
# An import run's lock: a transaction-level advisory lock on (this key, connection id).
# Any 32-bit number no other module uses as the first key of its advisory locks.
IMPORT_LOCK_KEY = 0x53454249
# A step of a run that met a concurrent writer (a serialization failure) is done again
# from the committed cursors this many times before the run counts as failed.
IMPORT_CONCURRENCY_TRIES = 3

# A settings row that still holds a typed Secret or private key this long after the form
# wrote it was never applied (its execute failed or never came): the next save of the
# settings empties it. Younger ones may be another administrator's save under way.
UNAPPLIED_SETTINGS_MINUTES = 5

# Renewal reminders: the days before Connected until at which one goes out (a setting;
# 0 is reserved for the "expired, reconnect now" message), how long after the date an
# expired connection still gets that message (a cron that did not run for a while), and
# how many connections are handled between two commits.
PARAM_REMINDER_DAYS = PARAM_PREFIX + "reminder_days"
DEFAULT_REMINDER_DAYS = "15,3,1"
REMINDER_EXPIRED = 0
REMINDER_EXPIRED_GRACE_DAYS = 30
REMINDER_BATCH_SIZE = 50

# Transactions Salt Edge sent that cannot become statement lines (no usable id, date or
# amount, or a value the database refuses): a run's chatter message names this many (its
# note lists saltedge_transactions.SKIPPED_NOTE_LINES, its count holds them all).
SKIPPED_MESSAGE_LINES = 10
# The database's reason for refusing a line, cut to this many characters.
DATABASE_REASON_LIMIT = 200
# The database's name of the unique (journal, Salt Edge transaction id) of statement lines
# (odoo_series.Constraint: <table>_<key>).
LINE_UNIQUE_CONSTRAINT = "account_bank_statement_line_saltedge_transaction_unique"

# The journal's bank_statements_source while one of our connections feeds it: Odoo's
# views and scheduled actions (Enterprise's bank synchronization among them) leave a
# journal alone whose source is not theirs.
JOURNAL_SOURCE = "saltedge"
# Odoo's own bank synchronization (Enterprise, account_online_synchronization): a journal
# it links has this field set. Read by name only; nothing of Enterprise is imported.
ODOO_SYNC_FIELD = "account_online_account_id"
# Enterprise's automatic reconciliation after an import, as its own bank synchronization
# calls it: at once up to this many lines, else its batched scheduled pass.
ODOO_RECONCILE_AT_ONCE = 80
ODOO_RECONCILE_BATCH = 100

"""What each Salt Edge error class means for us, and the sentence a user reads: one table.

Plain Python like the client beside it. Every other part of the addon asks this table
(through ``SaltEdgeError``'s properties or ``meaning_of``/``sentence_of``) instead of
deriving a meaning from a class name.

Meanings:

- ``in_progress``: not an error; Salt Edge is already fetching (ConnectionAlreadyProcessing).
- ``retry_later``: the bank, Salt Edge or a limit says "not now"; the scheduled jobs try
  again by themselves, nothing for the user to do.
- ``user_must_act``: only the user can help (a new consent at the bank, a new connect).
- ``setup``: the addon's settings are wrong (keys, Secret, clock, a URL): an administrator
  must act.

Salt Edge does not publish a complete list of classes. A class not in the table is judged
by its HTTP status: 5xx and 429 are ``retry_later``; other statuses are ``unknown`` and
shown with Salt Edge's own message.
"""

IN_PROGRESS = "in_progress"
RETRY_LATER = "retry_later"
USER_MUST_ACT = "user_must_act"
SETUP = "setup"
UNKNOWN = "unknown"

# Error classes of our own, for failures that never got a Salt Edge answer.
NETWORK_ERROR = "NetworkError"
TIMEOUT = "Timeout"
INVALID_RESPONSE = "InvalidResponse"
UNEXPECTED_REDIRECT = "UnexpectedRedirect"
# The client stopped reading: Salt Edge's pages came back to one already read, a list went
# on past the client's page cap, or one answer was larger than its byte cap.
PAGE_CYCLE = "PageCycle"
TOO_MANY_PAGES = "TooManyPages"
RESPONSE_TOO_LARGE = "ResponseTooLarge"


# Salt Edge's classes the addon acts on by name, besides their meaning.
CONSENT_EXPIRED = "AispConsentExpired"
CONSENT_REVOKED = "AispConsentRevoked"
CONSENT_NOT_FOUND = "AispConsentNotFound"
# The consent expired, was revoked or is gone: only a new consent (a reconnect) helps.
CONSENT_GONE_CLASSES = frozenset({CONSENT_EXPIRED, CONSENT_REVOKED, CONSENT_NOT_FOUND})
CONNECTION_DISABLED = "ConnectionDisabled"
CONNECTION_NOT_FOUND = "ConnectionNotFound"
# A connect whose connection has no consent (the attempt named no class).
CONNECTION_FAILED = "ConnectionFailed"
CANNOT_BE_REFRESHED = "ConnectionCannotBeRefreshed"
BACKGROUND_FETCH_LIMIT = "BackgroundFetchLimitExceeded"
DUPLICATED_CUSTOMER = "DuplicatedCustomer"
# A connect the user cancelled: on Salt Edge's screens, or at the bank's own, which
# Salt Edge reports as ProviderAccessNotGranted.
CANCELLED_CLASSES = frozenset(
    {"ConnectionCancelled", "UserCancelled", "Cancelled", "ProviderAccessNotGranted"}
)
# The client's own class for a request that failed before any answer, in another way
# than the network errors above.
REQUEST_ERROR = "RequestError"


# pylint: disable=prefer-env-translation
# ``_lt`` below is not Odoo's: this file has no environment. It only marks the sentences for
# Odoo's translation export (which looks for ``_lt(...)``); the models translate them with
# ``env._`` when they show them.
def _lt(text):
    """Marks a sentence for Odoo's translation export; returns it unchanged."""
    return text


# The sentences, by what the user is asked to do. ``%(error)s`` is the error class.
SENTENCE_CONSENT = _lt(
    "The bank's consent has expired or was withdrawn. Click “Reconnect” to give a new "
    "consent at the bank."
)
SENTENCE_GONE = _lt("Salt Edge no longer knows this connection. Connect the bank again.")
SENTENCE_WAIT = _lt("The bank or Salt Edge asks to wait before the next request. Try again later.")
SENTENCE_UNAVAILABLE = _lt("The bank cannot be reached right now. Try again in a few minutes.")
SENTENCE_SETUP = _lt(
    "Salt Edge refused Odoo's credentials (%(error)s). A system administrator must check "
    "the App ID, the Secret and the private key in the settings."
)
SENTENCE_IN_PROGRESS = _lt(
    "Salt Edge is fetching from the bank right now; the new transactions arrive by "
    "themselves in a few minutes."
)
SENTENCE_AT_BANK = _lt(
    "The bank wants you to log in again before it gives new transactions. Click “Refresh "
    "at the bank”."
)
SENTENCE_LOGIN = _lt("The bank refused the login. Try again.")
SENTENCE_NO_ANSWER = _lt(
    "Salt Edge could not be reached or its answer could not be read (%(error)s). Try again "
    "in a few minutes."
)
SENTENCE_STOPPED = _lt(
    "Odoo stopped reading from Salt Edge: %(error)s Try again later; if this error stays, "
    "contact your Odoo partner."
)
SENTENCE_OTHER = _lt("Salt Edge answered with an error: %(error)s")
# After a connect, renew or refresh at the bank that did not succeed: "nothing changed",
# then why (the table's sentence of the class, not reworded for the connect).
SENTENCE_CONNECT_NOT_DONE = _lt("Nothing changed. %(reason)s")
SENTENCE_CANCELLED = _lt("The connection was cancelled; you can start again.")
SENTENCE_NOT_CONFIRMED = _lt(
    "The bank did not confirm the connection (%(error)s). Try again or contact your Odoo "
    "partner."
)

# class -> (meaning, sentence)
ERRORS = {
    "ConnectionAlreadyProcessing": (IN_PROGRESS, SENTENCE_IN_PROGRESS),
    # The consent is gone: only a reconnect at the bank helps.
    CONSENT_EXPIRED: (USER_MUST_ACT, SENTENCE_CONSENT),
    CONSENT_REVOKED: (USER_MUST_ACT, SENTENCE_CONSENT),
    CONSENT_NOT_FOUND: (USER_MUST_ACT, SENTENCE_CONSENT),
    CONNECTION_DISABLED: (USER_MUST_ACT, SENTENCE_CONSENT),
    CONNECTION_NOT_FOUND: (USER_MUST_ACT, SENTENCE_GONE),
    "InvalidCredentials": (USER_MUST_ACT, SENTENCE_LOGIN),
    # The bank needs the user present (an interactive refresh); v5 named these so.
    "InteractiveAdminRequired": (USER_MUST_ACT, SENTENCE_AT_BANK),
    "InteractiveTimeout": (USER_MUST_ACT, SENTENCE_AT_BANK),
    # Limits and a bank or Salt Edge that is down: the next scheduled run tries again.
    CANNOT_BE_REFRESHED: (RETRY_LATER, SENTENCE_WAIT),
    BACKGROUND_FETCH_LIMIT: (RETRY_LATER, SENTENCE_WAIT),
    "RateLimitExceeded": (RETRY_LATER, SENTENCE_WAIT),
    "TooManyRequests": (RETRY_LATER, SENTENCE_WAIT),
    "ProviderError": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    "ProviderUnavailable": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    "ProviderDisabled": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    "ProviderInactive": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    "ExecutionTimeout": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    "FetchingTimeout": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    CONNECTION_FAILED: (RETRY_LATER, SENTENCE_UNAVAILABLE),
    "ConnectionLost": (RETRY_LATER, SENTENCE_UNAVAILABLE),
    NETWORK_ERROR: (RETRY_LATER, SENTENCE_NO_ANSWER),
    TIMEOUT: (RETRY_LATER, SENTENCE_NO_ANSWER),
    INVALID_RESPONSE: (RETRY_LATER, SENTENCE_NO_ANSWER),
    # The scheduled runs go on from their cursor; the same answer again needs a person.
    PAGE_CYCLE: (RETRY_LATER, SENTENCE_STOPPED),
    TOO_MANY_PAGES: (RETRY_LATER, SENTENCE_STOPPED),
    RESPONSE_TOO_LARGE: (RETRY_LATER, SENTENCE_STOPPED),
    # Our own settings (keys, Secret, clock, URLs) are wrong: an administrator must act.
    "WrongSecret": (SETUP, SENTENCE_SETUP),
    "ApiKeyNotFound": (SETUP, SENTENCE_SETUP),
    "ClientDisabled": (SETUP, SENTENCE_SETUP),
    "MissingSignature": (SETUP, SENTENCE_SETUP),
    "SignatureNotMatch": (SETUP, SENTENCE_SETUP),
    "MissingExpiresAt": (SETUP, SENTENCE_SETUP),
    "ExpiresAtInvalid": (SETUP, SENTENCE_SETUP),
    "RequestExpired": (SETUP, SENTENCE_SETUP),
    "PublicKeyNotProvided": (SETUP, SENTENCE_SETUP),
    "ReturnURLInvalid": (SETUP, SENTENCE_SETUP),
    UNEXPECTED_REDIRECT: (SETUP, SENTENCE_SETUP),
}

# A background refresh refused for now: no error, Salt Edge's data is still there to import.
REFRESH_NOT_NOW_CLASSES = frozenset({CANNOT_BE_REFRESHED, BACKGROUND_FETCH_LIMIT})

# Retried by the client within seconds: an answer that may be different a moment later.
# Limits counted per day and "not before" answers are not: retrying only wastes the tries.
# Nor are the client's own stops: the same list or answer, read again, only stops the same
# way (a large answer after downloading up to the cap once more).
NOT_RETRYABLE_CLASSES = frozenset(
    {
        BACKGROUND_FETCH_LIMIT,
        CANNOT_BE_REFRESHED,
        "ConnectionAlreadyProcessing",
        PAGE_CYCLE,
        TOO_MANY_PAGES,
        RESPONSE_TOO_LARGE,
    }
)


def meaning_of(error_class, status=None):
    """``in_progress``, ``retry_later``, ``user_must_act``, ``setup`` or ``unknown``."""
    if error_class in ERRORS:
        return ERRORS[error_class][0]
    if status is not None and (status == 429 or status >= 500):
        return RETRY_LATER
    return UNKNOWN


def sentence_of(error_class, status=None):
    """The English sentence for the user (translated by the caller), with ``%(error)s``."""
    if error_class in ERRORS:
        return ERRORS[error_class][1]
    if meaning_of(error_class, status) == RETRY_LATER:
        return SENTENCE_WAIT if status == 429 else SENTENCE_UNAVAILABLE
    return SENTENCE_OTHER


def connect_sentence_of(error_class):
    """Why a connect, renew or refresh at the bank did not succeed, for the sentence
    SENTENCE_CONNECT_NOT_DONE: cancelled, the table's own sentence of a class it knows, or
    "not confirmed" (with ``%(error)s``); translated by the caller."""
    if error_class in CANCELLED_CLASSES:
        return SENTENCE_CANCELLED
    if error_class in ERRORS:
        return ERRORS[error_class][1]
    return SENTENCE_NOT_CONFIRMED

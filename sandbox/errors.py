"""Salt Edge error classes, their HTTP statuses and the error body.

Statuses we could confirm from public material: 409 for DuplicatedCustomer (the contract,
and public clients rescuing "409 Conflict" for it) and 406 "Not Acceptable" for
ConnectionCannotBeRefreshed (a public Rails client rescues RestClient::NotAcceptable for
it). ConnectionAlreadyProcessing (a fetch of the connection runs) is a conflict: 409. The
rest follow the same pattern and plain HTTP semantics: 400 for a malformed request or bad
signature headers, 401 for credentials and a signature that does not match, 404 for
unknown ids, 406 for an action the connection's state does not allow, 429 for rate
limits, 5xx for server or bank trouble.
"""

import uuid

DOCUMENTATION_URL = "https://docs.saltedge.com/v6/api_reference#errors"

STATUS_BY_CLASS = {
    # request format
    "WrongRequestFormat": 400,
    "JsonParseError": 400,
    "ReturnURLInvalid": 400,
    "InvalidAispConsentPeriod": 400,
    "InvalidFromDate": 400,
    "AispConsentScopesInvalid": 400,
    "ValueOutOfRange": 400,
    # signature headers
    "MissingExpiresAt": 400,
    "MissingSignature": 400,
    "ExpiresAtInvalid": 400,
    "RequestExpired": 400,
    "PublicKeyNotProvided": 400,
    "SignatureNotMatch": 401,
    # credentials
    "ApiKeyNotFound": 401,
    "WrongSecret": 401,
    # unknown things
    "RouteNotFound": 404,
    "CustomerNotFound": 404,
    "ConnectionNotFound": 404,
    "AccountNotFound": 404,
    "ProviderNotFound": 404,
    "AispConsentNotFound": 404,
    # conflicts and refused actions
    "DuplicatedCustomer": 409,
    "ConnectionAlreadyProcessing": 409,
    "ConnectionCannotBeRefreshed": 406,
    "BackgroundFetchLimitExceeded": 406,
    "AispConsentExpired": 406,
    "AispConsentRevoked": 406,
    "ConnectionDisabled": 406,
    # limits and server trouble
    "TooManyRequests": 429,
    "RateLimitExceeded": 429,
    "InternalServerError": 500,
    "ProviderError": 502,
    "ProviderUnavailable": 503,
}


class ApiError(Exception):
    """An error answer: Salt Edge's class, a message, and extra fields for the error object."""

    def __init__(self, error_class, message, **extra):
        super().__init__(f"{error_class}: {message}")
        self.error_class = error_class
        self.message = message
        self.extra = extra
        self.status = STATUS_BY_CLASS.get(error_class, 400)

    def body(self, request_info=None):
        """The JSON document Salt Edge answers with."""
        error = {
            "class": self.error_class,
            "message": self.message,
            "documentation_url": DOCUMENTATION_URL,
        }
        error.update(self.extra)
        document = {
            "error": error,
            "request": {"format": "json", "id": uuid.uuid4().hex, **(request_info or {})},
        }
        # Salt Edge's own examples read next_refresh_possible_at at the top level too.
        if "next_refresh_possible_at" in self.extra:
            document["next_refresh_possible_at"] = self.extra["next_refresh_possible_at"]
        return document

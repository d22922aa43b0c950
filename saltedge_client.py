"""Salt Edge Account Information API v6 client.

Plain Python (requests + cryptography, no Odoo import) so it can be used and tested outside
the ORM. It follows Salt Edge's public v6 reference and signature guide. Every call goes through
``SaltEdgeClient._request``: URL building, headers, request signing, timeouts, retries and
translation of every failure into one exception type, ``SaltEdgeError``.

Nothing here logs or puts in an exception message the app secret, the private key, the
``Signature`` header or a request/response body.
"""

import base64
import binascii
import datetime
import email.utils
import functools
import json
import logging
import random
import time
import urllib.parse

import requests
import urllib3
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# What each error class means, and its sentence, live in one table beside this file. The
# client is also used as a plain module outside the addon (scripts, a Python shell).
try:
    from . import saltedge_errors
except ImportError:  # imported as a top-level module
    import saltedge_errors

IN_PROGRESS = saltedge_errors.IN_PROGRESS
RETRY_LATER = saltedge_errors.RETRY_LATER
SETUP = saltedge_errors.SETUP
USER_MUST_ACT = saltedge_errors.USER_MUST_ACT
NETWORK_ERROR = saltedge_errors.NETWORK_ERROR
TIMEOUT = saltedge_errors.TIMEOUT
INVALID_RESPONSE = saltedge_errors.INVALID_RESPONSE
UNEXPECTED_REDIRECT = saltedge_errors.UNEXPECTED_REDIRECT
PAGE_CYCLE = saltedge_errors.PAGE_CYCLE
TOO_MANY_PAGES = saltedge_errors.TOO_MANY_PAGES
RESPONSE_TOO_LARGE = saltedge_errors.RESPONSE_TOO_LARGE
NOT_RETRYABLE_CLASSES = saltedge_errors.NOT_RETRYABLE_CLASSES
REFRESH_NOT_NOW_CLASSES = saltedge_errors.REFRESH_NOT_NOW_CLASSES
meaning_of = saltedge_errors.meaning_of
sentence_of = saltedge_errors.sentence_of

_logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.saltedge.com/api/v6"
# Salt Edge advises now + 60 s and refuses more than one hour ahead (ExpiresAtInvalid).
SIGNATURE_VALIDITY_SECONDS = 60
DEFAULT_SCOPES = ("accounts", "transactions")
# Without these Salt Edge sends the user back with neither the connection nor the error.
RETURN_HINTS = {"return_connection_id": True, "return_error_class": True}

# The caps on what one listing and one answer may cost; a stop is a SaltEdgeError, never
# a silent end. Salt Edge chooses its page size (the sandbox, like Salt Edge's per_page,
# gives at most 1,000 records a page): 10,000 pages are ten million transactions at that
# size, still a million if Salt Edge paged by 100, while a busy account's longest history
# (a year of consent at 2,000 transactions a day) is 730,000. And were a cap ever met, the
# import keeps a cursor per page and goes on from there at its next run.
MAX_PAGES = 10_000
# A page of 1,000 transactions is 0.65 MiB of JSON in the sandbox, 1 to 2 MiB with a real
# bank's longer texts; 32 MiB leaves well over ten times that, and parsed into Python
# (several times its size) still fits an Odoo worker's memory limit. Counted on the decoded
# body, so a small compressed answer that unpacks into a huge one is stopped too.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# The body is read in pieces of this size (requests reads ``content`` in 10 KiB too); a
# gzip or deflate piece decodes to at most about a thousand times that, ~10 MiB.
READ_CHUNK_BYTES = 10 * 1024
MIB = 1024 * 1024


# How an error's text carries Salt Edge's request id (its support asks for it).
REQUEST_ID_TEXT = " (request id %s)"


def without_request_id(text):
    """An error's text without its request id: the same error of two requests."""
    text = text or ""
    start = text.rfind(REQUEST_ID_TEXT.split("%", 1)[0])
    return text[:start] if start >= 0 and text.endswith(")") else text


class SaltEdgeError(Exception):
    """Any failure talking to Salt Edge: an error answer, a network failure, a bad body.

    ``status`` is the HTTP status (None when no answer came), ``error_class`` Salt Edge's
    error class (or NetworkError / Timeout / InvalidResponse), ``message`` its message,
    ``retry_after`` the Retry-After seconds, ``next_refresh_possible_at`` the ISO string
    Salt Edge gave with ConnectionCannotBeRefreshed, ``request_id`` when the answer had one.
    """

    def __init__(
        self,
        message,
        *,
        status=None,
        error_class=None,
        retry_after=None,
        next_refresh_possible_at=None,
        request_id=None,
        documentation_url=None,
        method=None,
        path=None,
    ):
        self.status = status
        self.error_class = error_class
        self.message = message or ""
        self.retry_after = retry_after
        self.next_refresh_possible_at = next_refresh_possible_at
        self.request_id = request_id
        self.documentation_url = documentation_url
        self.method = method
        self.path = path
        super().__init__(self._sentence())

    def _sentence(self):
        what = self.error_class or "Error"
        if self.status is not None:
            what = f"{what} (HTTP {self.status})"
        where = f" on {self.method} {self.path}" if self.method else ""
        text = f"Salt Edge error {what}{where}"
        text = f"{text}: {self.message}" if self.message else f"{text}."
        # Salt Edge's support asks for it: every log line and stored error carries it.
        return text + REQUEST_ID_TEXT % self.request_id if self.request_id else text

    @property
    def meaning(self):
        """What the error means for us (see saltedge_errors): ``in_progress``,
        ``retry_later``, ``user_must_act``, ``setup`` or ``unknown``."""
        return meaning_of(self.error_class, self.status)

    @property
    def sentence(self):
        """The English sentence for the user, with ``%(error)s``; translate it."""
        return sentence_of(self.error_class, self.status)

    @property
    def is_in_progress(self):
        """Salt Edge is already fetching this connection: not an error."""
        return self.meaning == IN_PROGRESS

    @property
    def is_consent_expired(self):
        """The consent expired, was revoked or is gone: only a reconnect helps."""
        return self.error_class in saltedge_errors.CONSENT_GONE_CLASSES

    @property
    def is_consent_revoked(self):
        """The consent was withdrawn (at the bank, at Salt Edge or by a disconnect)."""
        return self.error_class == saltedge_errors.CONSENT_REVOKED

    @property
    def needs_reconnect(self):
        """The user must go through the bank again: consent expired or connection disabled."""
        return self.is_consent_expired or self.error_class == saltedge_errors.CONNECTION_DISABLED

    @property
    def needs_user(self):
        """Only the user can help: a reconnect, a new connect, a login at the bank."""
        return self.meaning == USER_MUST_ACT

    @property
    def is_connection_not_found(self):
        """Salt Edge no longer knows this connection (deleted on its side)."""
        return self.error_class == saltedge_errors.CONNECTION_NOT_FOUND

    @property
    def is_retry_later(self):
        """The bank, Salt Edge or a limit says "not now": the next scheduled run retries."""
        return self.meaning == RETRY_LATER

    @property
    def is_refresh_not_now(self):
        """Salt Edge refuses a background refresh for now (too soon, or the bank's four a
        day are used): no error, the data Salt Edge has is still there to import."""
        return self.error_class in REFRESH_NOT_NOW_CLASSES

    @property
    def is_configuration_error(self):
        """App id, secret, keys or the server clock are wrong: an administrator must act."""
        return self.meaning == SETUP

    @property
    def is_retryable(self):
        """Transient: the client retries these itself before raising."""
        if self.error_class in NOT_RETRYABLE_CLASSES:
            return False
        if self.status is None:
            return self.error_class in (NETWORK_ERROR, TIMEOUT)
        return self.status == 429 or self.status >= 500 or self.error_class == INVALID_RESPONSE


def _to_bytes(value):
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _load_private_key(private_key_pem):
    if isinstance(private_key_pem, rsa.RSAPrivateKey):
        return private_key_pem
    try:
        key = serialization.load_pem_private_key(
            _to_bytes(private_key_pem), password=None, backend=default_backend()
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        # Never echo the key material.
        raise ValueError("The Salt Edge private key is not an unencrypted PEM RSA key.")
    return key


def sign(private_key_pem, expires_at, method, url, body):
    """Return the base64 ``Signature`` header for a request.

    RSA PKCS#1 v1.5 with SHA-256 over ``"<expires_at>|<METHOD>|<url>|<body>"``; ``url`` is
    the full URL with its query string and ``body`` the raw bytes sent (empty for GET).
    ``private_key_pem`` is a PEM string/bytes or an already loaded RSA private key.
    """
    key = _load_private_key(private_key_pem)
    message = f"{int(expires_at)}|{method.upper()}|{url}|".encode() + _to_bytes(body)
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


@functools.lru_cache(maxsize=4)
def _public_key(public_key_pem):
    """Salt Edge's public key parsed from its PEM (bytes), or None when it is no RSA public
    key. Parsed once per process and PEM, not once per callback: the key is public, and a
    new key in the settings is a new PEM, so a new entry."""
    try:
        key = serialization.load_pem_public_key(public_key_pem, backend=default_backend())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def verify_callback_signature(public_key_pem, callback_url, raw_body, signature_b64):
    """Tell whether a callback's ``Signature`` header was made by Salt Edge.

    RSA-SHA256 (PKCS#1 v1.5) over ``"<callback URL>|<raw body>"`` with Salt Edge's public
    key. Returns False, never raises, for anything malformed: missing or non-base64
    signature, bad PEM, non-RSA key, wrong key, tampered body.
    """
    if not public_key_pem or not signature_b64 or callback_url is None or raw_body is None:
        return False
    try:
        signature = base64.b64decode(_to_bytes(signature_b64).strip(), validate=True)
        key = _public_key(_to_bytes(public_key_pem))
        if not signature or key is None:
            return False
        message = _to_bytes(callback_url) + b"|" + _to_bytes(raw_body)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


def generate_key_pair(bits=2048):
    """Return ``(private_pem, public_pem)`` strings for a new RSA key pair.

    The public key (SubjectPublicKeyInfo PEM) goes into Salt Edge's dashboard; the private
    key (unencrypted PKCS#8 PEM) stays with us and signs every request.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits, backend=default_backend())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem.decode("ascii"), public_pem.decode("ascii")


def _json_default(value):
    if isinstance(value, datetime.date):  # datetime is a date too
        return value.isoformat()
    raise TypeError(f"Cannot send a {type(value).__name__} to Salt Edge as JSON.")


def _iso(value):
    return value.isoformat() if isinstance(value, datetime.date) else value


def _parse_retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


_NETWORK_EXCEPTIONS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _compact(mapping):
    return {key: value for key, value in mapping.items() if value is not None}


def _size_in_words(size):
    """``32 MiB`` or ``1,000 bytes``: a cap as a person reads it."""
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size:,} bytes"


def _read_piece(raw, amount):
    """Up to ``amount`` bytes of the body from urllib3's ``raw`` (decoded when compressed),
    with urllib3's failures turned into the requests exceptions that ``Response.content``
    raises for them, so a body cut off or too slow is the same NetworkError as before."""
    try:
        return raw.read(amount, decode_content=True)
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from None
    except urllib3.exceptions.HTTPError as exc:  # ReadTimeoutError among them
        raise requests.exceptions.ConnectionError(exc) from None


class SaltEdgeClient:
    """Client for the Salt Edge Account Information API v6.

    ``timeout`` is ``(connect, read)`` seconds for every call; ``budget`` (seconds), when
    given, bounds all calls of the client together, for a person waiting on a page. A call
    is tried at most ``1 + max_retries`` times when the answer is 429, 5xx, an unparsable
    200 body or a network failure/timeout, waiting ``Retry-After`` (capped at
    ``backoff_max``) or an exponential backoff with jitter in between; then the last error
    is raised (at once when the budget would not cover the wait). Other 4xx
    answers are raised at once. Note that a POST retried after a timeout or a 5xx may have
    been processed the first time (e.g. ``create_customer`` then answers DuplicatedCustomer).

    ``max_pages`` caps the pages of one listing and ``max_response_bytes`` the decoded
    size of one answer (see ``MAX_PAGES`` and ``MAX_RESPONSE_BYTES``). A listing whose
    ``next_id`` comes back to a page already read raises PageCycle, one that goes on past
    the cap TooManyPages, an answer past its cap ResponseTooLarge; none is retried.
    """

    def __init__(
        self,
        base_url,
        app_id,
        secret,
        private_key_pem=None,
        timeout=(5, 30),
        max_retries=4,
        backoff_base=0.5,
        backoff_max=30,
        session=None,
        logger=None,
        sleep=time.sleep,
        clock=time.time,
        budget=None,
        max_pages=MAX_PAGES,
        max_response_bytes=MAX_RESPONSE_BYTES,
    ):
        if not timeout:
            raise ValueError("Salt Edge calls need a timeout.")
        if max_pages < 1 or max_response_bytes < 1:
            raise ValueError("Salt Edge's pages and answers need caps of at least one.")
        # Seconds all calls of this client may take together (a person waiting), or None.
        self._deadline = time.monotonic() + budget if budget else None
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.app_id = app_id
        self._secret = secret
        self._private_key = _load_private_key(private_key_pem) if private_key_pem else None
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.session = session or requests.Session()
        self.logger = logger or _logger
        self._sleep = sleep
        self._clock = clock
        self.max_pages = int(max_pages)
        self.max_response_bytes = int(max_response_bytes)

    def __repr__(self):
        return f"<SaltEdgeClient {self.base_url} app {self.app_id}>"

    # ------------------------------------------------------------------ HTTP

    def _request(self, method, path, params=None, payload=None):
        """Make one API call and return its JSON answer (a dict with ``data``, ``meta``).

        ``params`` is a list of ``(name, value)`` pairs (None values are left out),
        ``payload`` what to send as the JSON body.

        :raise SaltEdgeError: for every failure, after the retries described on the class.
        """
        method = method.upper()
        url = self.base_url + path
        query = urllib.parse.urlencode([(k, v) for k, v in (params or []) if v is not None])
        if query:
            url = f"{url}?{query}"
        body = b""
        if payload is not None:
            body = json.dumps(payload, default=_json_default, separators=(",", ":")).encode()
        attempt = 0
        while True:
            attempt += 1
            timeout = self._timeout_left(method, path)
            started = time.monotonic()
            response, content, error = None, None, None
            try:
                response = self._send(method, url, body, timeout)
                content = self._read_body(response)
            except requests.exceptions.RequestException as exc:
                response, error = None, self._network_error(exc, method, path)
            elapsed_ms = (time.monotonic() - started) * 1000
            if response is not None:
                self.logger.debug(
                    "Salt Edge %s %s -> %s in %.0f ms",
                    method,
                    path,
                    response.status_code,
                    elapsed_ms,
                )
                document, error = self._read_response(response, content, method, path)
                if error is None:
                    return document
            else:
                self.logger.debug(
                    "Salt Edge %s %s -> %s after %.0f ms",
                    method,
                    path,
                    error.error_class,
                    elapsed_ms,
                )
            if not error.is_retryable or attempt > self.max_retries:
                raise error from None
            delay = self._retry_delay(attempt, error.retry_after)
            if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                self.logger.warning(
                    "Salt Edge %s %s failed with %s (request id %s); no time left for "
                    "another try",
                    method,
                    path,
                    error.error_class or error.status,
                    error.request_id or "-",
                )
                raise error from None
            self.logger.warning(
                "Salt Edge %s %s failed with %s (request id %s), try %d of %d in %.1f s",
                method,
                path,
                error.error_class or error.status,
                error.request_id or "-",
                attempt + 1,
                self.max_retries + 1,
                delay,
            )
            self._sleep(delay)

    def _timeout_left(self, method, path):
        """The timeout of the next try: the client's, or less when its budget runs out."""
        if self._deadline is None:
            return self.timeout
        left = self._deadline - time.monotonic()
        if left <= 0.1:
            raise SaltEdgeError(
                "no answer in time (the time for this action ran out).",
                error_class=TIMEOUT,
                method=method,
                path=path,
            )
        if isinstance(self.timeout, tuple):
            return tuple(min(part, left) for part in self.timeout)
        return min(self.timeout, left)

    def _send(self, method, url, body, timeout=None):
        """Send exactly ``url`` and ``body``, signed with a fresh Expires-at. The answer's
        body is left unread (streamed) for ``_read_body``."""
        headers = {
            "App-id": self.app_id,
            "Secret": self._secret,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if self._private_key is not None:
            expires_at = int(self._clock()) + SIGNATURE_VALIDITY_SECONDS
            headers["Expires-at"] = str(expires_at)
            headers["Signature"] = sign(self._private_key, expires_at, method, url, body)
        request = requests.Request(method, url, headers=headers, data=body or None)
        prepared = self.session.prepare_request(request)
        # requests may requote the URL; the signed string must be what goes on the wire.
        prepared.url = url
        # stream: requests would read the whole body at once, whatever its size.
        settings = self.session.merge_environment_settings(url, {}, True, None, None)
        # Never follow a redirect: requests would carry the Secret header to the new host.
        return self.session.send(
            prepared, timeout=timeout or self.timeout, allow_redirects=False, **settings
        )

    def _network_error(self, exc, method, path):
        # Only the exception's class name: requests exceptions carry the request, headers
        # included, and ``raise ... from None`` keeps them out of tracebacks.
        if isinstance(exc, requests.exceptions.Timeout):
            error_class, message = TIMEOUT, f"no answer in time ({type(exc).__name__})."
        elif isinstance(exc, requests.exceptions.SSLError):
            error_class, message = "SSLError", "the TLS handshake failed."
        elif isinstance(exc, _NETWORK_EXCEPTIONS):
            error_class, message = (
                NETWORK_ERROR,
                f"could not reach Salt Edge ({type(exc).__name__}).",
            )
        else:
            error_class, message = (
                saltedge_errors.REQUEST_ERROR,
                f"the request failed ({type(exc).__name__}).",
            )
        return SaltEdgeError(message, error_class=error_class, method=method, path=path)

    def _read_body(self, response):
        """The answer's body, decoded, or None when it is larger than
        ``max_response_bytes``: then no more than one byte past the cap was read (the
        Content-Length is not trusted, a chunked answer has none). The response is closed
        either way; a connection with a body left unread is not reused."""
        limit = self.max_response_bytes
        raw = response.raw
        pieces, size = [], 0
        try:
            while size <= limit:
                piece = _read_piece(raw, min(READ_CHUNK_BYTES, limit + 1 - size))
                if piece:
                    pieces.append(piece)
                    size += len(piece)
                elif raw.closed:
                    break
                # Else a compressed piece gave nothing yet (urllib3 1.26): read on.
        finally:
            response.close()
        return b"".join(pieces) if size <= limit else None

    def _read_response(self, response, content, method, path):
        """Return ``(document, None)`` for a good answer, ``(None, SaltEdgeError)`` else.
        ``content`` is the body ``_read_body`` read, None when it was too large."""
        headers = response.headers
        request_id = headers.get("X-Request-Id") or headers.get("Request-Id")
        if response.is_redirect or 300 <= response.status_code < 400:
            return None, SaltEdgeError(
                "Salt Edge answered with a redirect, which is not followed: check the base URL.",
                status=response.status_code,
                error_class=UNEXPECTED_REDIRECT,
                method=method,
                path=path,
            )
        if content is None:
            return None, SaltEdgeError(
                f"Salt Edge's answer is larger than {_size_in_words(self.max_response_bytes)}.",
                status=response.status_code,
                error_class=RESPONSE_TOO_LARGE,
                request_id=request_id,
                method=method,
                path=path,
            )
        try:
            document = json.loads(content.decode("utf-8"))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            document = None
        if response.ok and isinstance(document, dict):
            return document, None
        if response.ok:
            return None, SaltEdgeError(
                "the answer is not a JSON object.",
                status=response.status_code,
                error_class=INVALID_RESPONSE,
                request_id=request_id,
                method=method,
                path=path,
            )
        document = document if isinstance(document, dict) else {}
        nested = document.get("error") if isinstance(document.get("error"), dict) else {}
        data = document.get("data") if isinstance(document.get("data"), dict) else {}
        echoed = document.get("request") if isinstance(document.get("request"), dict) else {}
        error_class = nested.get("class") or document.get("error_class")
        message = nested.get("message") or document.get("error_message")
        return None, SaltEdgeError(
            self._scrub(message or response.reason or ""),
            status=response.status_code,
            error_class=error_class,
            retry_after=_parse_retry_after(headers.get("Retry-After")),
            next_refresh_possible_at=nested.get("next_refresh_possible_at")
            or document.get("next_refresh_possible_at")
            or data.get("next_refresh_possible_at"),
            request_id=request_id
            or nested.get("request_id")
            or document.get("request_id")
            or echoed.get("id"),
            documentation_url=nested.get("documentation_url") or document.get("documentation_url"),
            method=method,
            path=path,
        )

    def _scrub(self, text):
        # An error message that echoes our secret must not carry it into logs or the UI.
        text = str(text)
        return text.replace(self._secret, "***") if self._secret else text

    def _retry_delay(self, attempt, retry_after):
        if retry_after is not None:
            return min(float(retry_after), self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        # "Equal jitter": at least half the exponential step, so retries still spread out.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _data(self, document, method, path, required=()):
        data = document.get("data")
        if not isinstance(data, dict) or any(data.get(key) is None for key in required):
            raise SaltEdgeError(
                "the answer has no usable data.",
                status=200,
                error_class=INVALID_RESPONSE,
                method=method,
                path=path,
            )
        return data

    def _pages(self, path, params, from_id=None):
        """Yield ``(items, next_id)`` page by page, following ``meta.next_id``.

        Stops with a SaltEdgeError when a ``next_id`` comes back to a page this listing
        already read (PageCycle: that page is not yielded, so a cursor kept from the pages
        yielded stays good), or when a ``max_pages``-th page still has a next one
        (TooManyPages, after yielding it: the next listing goes on from its cursor).
        """
        read = set()
        pages = 0
        while True:
            if pages == self.max_pages:
                raise SaltEdgeError(
                    f"Salt Edge's list has more than {self.max_pages:,} pages.",
                    status=200,
                    error_class=TOO_MANY_PAGES,
                    method="GET",
                    path=path,
                )
            pages += 1
            read.add(None if from_id is None else str(from_id))
            document = self._request("GET", path, params=[*params, ("from_id", from_id)])
            items = document.get("data")
            meta = document.get("meta") if isinstance(document.get("meta"), dict) else {}
            next_id = meta.get("next_id")
            if next_id == "":
                next_id = None
            if not isinstance(items, list) or not isinstance(next_id, (str, int, type(None))):
                raise SaltEdgeError(
                    "the page has no list of data or its next_id is no id.",
                    status=200,
                    error_class=INVALID_RESPONSE,
                    method="GET",
                    path=path,
                )
            if next_id is not None and str(next_id) in read:
                # A cursor that comes back (A, B, A...) would loop for ever.
                shown = self._scrub(str(next_id)[:64])
                raise SaltEdgeError(
                    f"Salt Edge's pages went round in a circle (next_id {shown} was already "
                    "read).",
                    status=200,
                    error_class=PAGE_CYCLE,
                    method="GET",
                    path=path,
                )
            yield items, next_id
            if next_id is None:
                return
            from_id = next_id

    def _items(self, path, params):
        for items, _next_id in self._pages(path, params):
            yield from items

    # ------------------------------------------------------------- endpoints

    def list_providers(self, country_code=None, include_sandboxes=False):
        """Yield the banks (providers), optionally of one country, for the bank picker."""
        params = [
            ("country_code", country_code),
            ("include_sandboxes", "true" if include_sandboxes else None),
        ]
        return self._items("/providers", params)

    def create_customer(self, identifier):
        """Create the Salt Edge customer for ``identifier``; the answer always has ``id``.

        An identifier Salt Edge already knows raises DuplicatedCustomer (HTTP 409).
        """
        path = "/customers"
        document = self._request("POST", path, payload={"data": {"identifier": identifier}})
        data = dict(self._data(document, "POST", path))
        data["id"] = data.get("id") or data.get("customer_id")
        return self._data({"data": data}, "POST", path, required=("id",))

    def create_connect_session(self, customer_id, return_to, **options):
        """Start the Salt Edge widget for a new connection; return ``{expires_at, connect_url}``.

        ``options`` are those of ``_connect_payload``: ``provider_code``, ``scopes``,
        ``period_days``, ``from_date`` (date or ISO string, bounds both the consent and the
        first fetch), ``fetch_scopes``, ``locale``, ``include_sandboxes``,
        ``custom_fields`` (echoed in every callback), ``automatic_refresh``.
        """
        payload = self._connect_payload(return_to, **options)
        payload["data"]["customer_id"] = customer_id
        path = "/connections/connect"
        document = self._request("POST", path, payload=payload)
        return self._data(document, "POST", path, required=("connect_url",))

    def reconnect(self, connection_id, return_to, **options):
        """Start the widget again for an existing connection (renews the consent);
        return ``{expires_at, connect_url}``. Options as for ``create_connect_session``."""
        payload = self._connect_payload(return_to, **options)
        path = f"/connections/{self._segment(connection_id)}/reconnect"
        document = self._request("POST", path, payload=payload)
        return self._data(document, "POST", path, required=("connect_url",))

    def background_refresh(self, connection_id, *, fetch_scopes=DEFAULT_SCOPES):
        """Ask Salt Edge to fetch new data from the bank without the user (needs an active
        consent). The fetch runs afterwards and ends with ``success`` callbacks.

        May raise ConnectionCannotBeRefreshed (``next_refresh_possible_at`` set),
        BackgroundFetchLimitExceeded (PSD2: four a day) or ConnectionAlreadyProcessing (a
        fetch is running: ``is_in_progress``); none of them is retried.
        """
        path = f"/connections/{self._segment(connection_id)}/background_refresh"
        payload = {"data": {"attempt": {"fetch_scopes": list(fetch_scopes)}}}
        return self._data(self._request("POST", path, payload=payload), "POST", path)

    def refresh(
        self,
        connection_id,
        return_to,
        *,
        fetch_scopes=DEFAULT_SCOPES,
        locale=None,
        custom_fields=None,
    ):
        """The interactive refresh: the user goes through the bank's screens again (a bank
        that refuses a background refresh). Returns ``{expires_at, connect_url}`` to open;
        the user comes back to ``return_to``. Never call this without a user present."""
        attempt = _compact(
            {
                "return_to": return_to,
                "fetch_scopes": list(fetch_scopes),
                "locale": locale,
                "custom_fields": custom_fields,
            }
        )
        payload = {"data": {**RETURN_HINTS, "attempt": attempt}}
        path = f"/connections/{self._segment(connection_id)}/refresh"
        document = self._request("POST", path, payload=payload)
        return self._data(document, "POST", path, required=("connect_url",))

    def list_connections(self, customer_id):
        """Yield the customer's connections: how to find a connection when the user never
        came back with its id."""
        return self._items("/connections", [("customer_id", customer_id)])

    def get_connection(self, connection_id):
        """Return the connection: status, provider, last_success_at, last_attempt, ..."""
        path = f"/connections/{self._segment(connection_id)}"
        return self._data(self._request("GET", path), "GET", path)

    def delete_connection(self, connection_id):
        """Revoke and remove the connection; Salt Edge then sends a ``destroy`` callback."""
        path = f"/connections/{self._segment(connection_id)}"
        return self._data(self._request("DELETE", path), "DELETE", path)

    def list_consents(self, connection_id):
        """Yield the connection's consents; ``expires_at`` is the "Connected until" date."""
        return self._items("/consents", [("connection_id", connection_id)])

    def list_accounts(self, connection_id):
        """Yield the connection's accounts (IBAN in ``extra.iban``)."""
        return self._items("/accounts", [("connection_id", connection_id)])

    def iter_transaction_pages(self, connection_id, account_id, from_id=None, pending=False):
        """Yield ``(transactions, next_id)`` per page; store ``next_id`` as the cursor to
        resume from (None on the last page)."""
        params = [
            ("connection_id", connection_id),
            ("account_id", account_id),
            ("pending", "true" if pending else None),
        ]
        return self._pages("/transactions", params, from_id=from_id)

    # --------------------------------------------------------------- helpers

    @staticmethod
    def _segment(value):
        return urllib.parse.quote(str(value), safe="")

    @staticmethod
    def _connect_payload(
        return_to,
        *,
        provider_code=None,
        scopes=DEFAULT_SCOPES,
        period_days=None,
        from_date=None,
        fetch_scopes=DEFAULT_SCOPES,
        locale=None,
        include_sandboxes=False,
        custom_fields=None,
        automatic_refresh=None,
    ):
        """The body of connect and reconnect. It asks for the return hints (Salt Edge adds
        ``connection_id``/``error_class`` to the return URL only when asked) and, when
        ``automatic_refresh`` is given, for Salt Edge's own daily refreshes."""
        consent = _compact(
            {"scopes": list(scopes), "period_days": period_days, "from_date": _iso(from_date)}
        )
        attempt = _compact(
            {
                "return_to": return_to,
                "fetch_scopes": list(fetch_scopes),
                "from_date": _iso(from_date),
                "locale": locale,
                "custom_fields": custom_fields,
            }
        )
        data = {**RETURN_HINTS, "consent": consent, "attempt": attempt}
        if automatic_refresh is not None:
            data["automatic_refresh"] = bool(automatic_refresh)
        provider = _compact({"code": provider_code, "include_sandboxes": include_sandboxes or None})
        if provider:
            data["provider"] = provider
        return {"data": data}

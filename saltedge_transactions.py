"""Salt Edge's transactions as values the database takes: the one place where what Salt Edge
sends about a transaction is checked and cleaned before the import uses it.

Plain Python (no Odoo import), like ``saltedge_client``, so it can be used and tested
outside the ORM. Salt Edge documents every key of a transaction as optional, and a value
may come as another type than documented (a number where text is expected, an empty
string, null; see docs "A transaction's extra"). PostgreSQL refuses text with a NUL
character and a date that is no date, and one refused value fails a whole page: so the
import takes nothing from a transaction but what ``clean_transaction`` returns.

``clean_transaction(item)`` returns a transaction with the keys the import reads, each
clean (text without control characters, numbers as numbers, the date as ``YYYY-MM-DD``),
or raises ``InvalidTransaction`` when the transaction cannot become a statement line (no
usable id, date or amount); its ``reason`` is one of the ``NO_*`` constants, for the
caller to put in words.
"""

import datetime
import math
import re
from dataclasses import dataclass

# The references in a bank's texts live beside this file; it is also used as a plain module.
try:
    from .saltedge_references import REMITTANCE_FIELDS, payment_reference
except ImportError:  # imported as a top-level module
    from saltedge_references import REMITTANCE_FIELDS, payment_reference

# Longest text kept from a description or a remittance information, and from a name or
# an account number: more is no bank's data, and a statement line shows one line.
TEXT_LIMIT = 1000
NAME_LIMIT = 256
# Salt Edge's ids are digits; anything longer than this is not one.
ID_LIMIT = 64
# An id or date shown in a note (as received, so possibly anything).
DISPLAY_LIMIT = 40
# An amount at least this large is no bank transaction (a float keeps cents exact below
# about 10**13), and would overflow the sums of the journal.
AMOUNT_LIMIT = 10**13
# A transaction's date outside these is nonsense (a bank sends a few years of history).
FIRST_DAY = datetime.date(1900, 1, 1)
LAST_DAY = datetime.date(2199, 12, 31)

# Why a transaction cannot become a statement line.
NOT_A_TRANSACTION = "not_a_transaction"
NO_ID = "no_id"
NO_DATE = "no_date"
NO_AMOUNT = "no_amount"

# The ``extra`` keys the import reads, as text.
EXTRA_NAMES = ("payer", "payee")
EXTRA_TEXTS = ("payer_information", "payee_information", "account_number", *REMITTANCE_FIELDS)
# What a line keeps of Salt Edge's transaction as received (its ``transaction_details``):
# the transaction's own keys, and its whole ``extra``, each value JSON PostgreSQL stores.
DETAIL_KEYS = ("id", "status", "made_on", "amount", "currency_code", "description", "category")
# A value of the details holds at most this many items of a list or keys of a dict, this
# deep: a bank's extra is a few dozen short values.
DETAILS_ITEMS = 100
DETAILS_DEPTH = 4

# Control characters (C0 but tab and newline, DEL, C1): PostgreSQL refuses NUL, and none of
# them belongs in a bank's description. Lone surrogates (JSON allows "\ud800") have no
# UTF-8 form at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACES = re.compile(r"\s+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}$")

# A run lists this many skipped transactions in its note (its count holds them all).
SKIPPED_NOTE_LINES = 100


class InvalidTransaction(ValueError):
    """A transaction that cannot become a statement line.

    ``reason``: NOT_A_TRANSACTION, NO_ID, NO_DATE or NO_AMOUNT (the first that applies);
    ``transaction_id``: its clean id, or None; ``shown_id`` and ``shown_date``: its id and
    ``made_on`` as received, cleaned for a note ("?" when there is nothing to show).
    """

    def __init__(self, reason, item):
        self.reason = reason
        fields = item if isinstance(item, dict) else {}
        self.transaction_id = clean_id(fields.get("id"))
        self.shown_id = display(fields.get("id"))
        self.shown_date = display(fields.get("made_on"))
        super().__init__(f"{self.shown_id} of {self.shown_date}: {reason}")


def clean_text(value, limit=TEXT_LIMIT):
    """``value`` as text PostgreSQL stores: a number becomes its digits; None, a dict, a
    list or a boolean become ""; control characters other than tab and newline are
    dropped (a carriage return becomes a newline), a lone surrogate becomes U+FFFD; spaces
    around are stripped and at most ``limit`` characters kept."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)[:limit]
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        text = str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
        return text[:limit]
    if not isinstance(value, str):
        return ""
    if not value.isprintable():
        # The fast way out above is taken by nearly every text: isprintable() is False for
        # every character this removes (and for a few harmless ones, kept here).
        value = value.replace("\r\n", "\n").replace("\r", "\n")
        value = _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))
    return value.strip()[:limit].strip()


def display(value, limit=DISPLAY_LIMIT):
    """``value`` as received, on one short line for a note about it; "?" when empty or
    not text or a number."""
    text = _SPACES.sub(" ", clean_text(value, limit * 4))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or "?"


def clean_id(value):
    """A Salt Edge id (a string or a whole number) as text; None when there is none, or it
    is too long or holds what an id cannot (a control character, a space)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not text or len(text) > ID_LIMIT or not text.isprintable():
        return None
    if any(character.isspace() for character in text):
        return None
    return text


def parse_amount(value):
    """An amount (a number, or a number written as text: "-12.50") as a float; None when
    it is no finite number, or too large for a bank transaction."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not _NUMBER.fullmatch(value):
            return None
        value = float(value)
    elif isinstance(value, int):
        value = float(value) if abs(value) < AMOUNT_LIMIT else math.inf
    elif not isinstance(value, float):
        return None
    if not math.isfinite(value) or abs(value) >= AMOUNT_LIMIT:
        return None
    return value


def parse_date(value):
    """A date as Salt Edge writes it ("2026-11-02"), returned in that form; None for
    anything else (another format, no such day, a year out of FIRST_DAY..LAST_DAY)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        return None
    try:
        day = datetime.date.fromisoformat(value.strip())
    except ValueError:
        return None
    if not FIRST_DAY <= day <= LAST_DAY:
        return None
    return day.isoformat()


def clean_currency_code(value):
    """An ISO 4217 code ("USD") in capitals; None unless it is three letters."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if _CURRENCY.fullmatch(code) else None


def is_pending(item):
    """Whether the bank has not booked the transaction yet: a ``status`` other than
    "posted" (none at all counts as posted, as in the posted listing)."""
    if not isinstance(item, dict):
        return False
    status = clean_text(item.get("status"), 32).lower()
    return status not in ("", "posted")


def is_marked_duplicate(item):
    """Whether Salt Edge marked the transaction as a duplicate of another one."""
    if not isinstance(item, dict):
        return False
    value = item.get("duplicated")
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or (isinstance(value, int) and value == 1)


def clean_transaction(item):
    """The transaction ``item`` (one element of a page of Salt Edge's transactions) with
    clean values, in Salt Edge's shape::

        {"id": "1234", "made_on": "2026-11-02", "amount": -12.5, "description": "...",
         "extra": {"payer": "...", "payee": "...", "payer_information": "...",
                   "payee_information": "...", "account_number": "...",
                   "information": "...", "original_amount": 13.1 or None,
                   "original_currency_code": "USD" or None}}

    Every text is a string ("" when missing); keys not listed are left out. Raises
    InvalidTransaction when the id, the date or the amount is missing or unusable."""
    if not isinstance(item, dict):
        raise InvalidTransaction(NOT_A_TRANSACTION, item)
    transaction_id = clean_id(item.get("id"))
    if transaction_id is None:
        raise InvalidTransaction(NO_ID, item)
    made_on = parse_date(item.get("made_on"))
    if made_on is None:
        raise InvalidTransaction(NO_DATE, item)
    amount = parse_amount(item.get("amount"))
    if amount is None:
        raise InvalidTransaction(NO_AMOUNT, item)
    raw_extra = item.get("extra")
    if not isinstance(raw_extra, dict):
        raw_extra = {}
    extra = {key: clean_text(raw_extra.get(key), NAME_LIMIT) for key in EXTRA_NAMES}
    extra.update({key: clean_text(raw_extra.get(key)) for key in EXTRA_TEXTS})
    extra["original_amount"] = parse_amount(raw_extra.get("original_amount"))
    extra["original_currency_code"] = clean_currency_code(raw_extra.get("original_currency_code"))
    return {
        "id": transaction_id,
        "made_on": made_on,
        "amount": amount,
        "description": clean_text(item.get("description")),
        "extra": extra,
        "details": transaction_details(item),
    }


def _json_value(value, depth=0):
    """``value`` as JSON PostgreSQL stores (no NUL, no lone surrogate, no NaN), texts cut
    at TEXT_LIMIT, lists and dicts at DETAILS_ITEMS items and DETAILS_DEPTH levels."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if depth >= DETAILS_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            clean_text(key, NAME_LIMIT): _json_value(item, depth + 1)
            for key, item in list(value.items())[:DETAILS_ITEMS]
            if isinstance(key, str)
        }
    if isinstance(value, (list, tuple)):
        return [_json_value(item, depth + 1) for item in value[:DETAILS_ITEMS]]
    return None


def transaction_details(item):
    """What the line keeps of Salt Edge's transaction ``item`` as received, for a person
    opening it and for reconciliation rules to search: its id, status, dates, amount,
    currency, description, category and its whole ``extra`` (posting date, counterparty
    fields, original amount, end-to-end id, references, balance snapshot, whatever the bank
    sent), each value as JSON the database stores."""
    details = {key: _json_value(item.get(key)) for key in DETAIL_KEYS if key in item}
    if isinstance(item.get("extra"), dict):
        details["extra"] = _json_value(item["extra"])
    return details


# ----------------------------------------------------------------------------------------
# A clean transaction as a statement line
# ----------------------------------------------------------------------------------------


def normalize_iban(value):
    """An IBAN as IBANs compare: without spaces and in upper case; False when empty."""
    return "".join((value or "").split()).upper() or False


def payment_ref(transaction):
    """The line's label: the bank's description as it is, and a Belgian structured
    communication or an RF creditor reference found in it or in the remittance fields, in
    the form Odoo's reconciliation finds the invoice by (see ``saltedge_references``)."""
    extra = transaction["extra"]
    return payment_reference(transaction["description"], [extra[key] for key in REMITTANCE_FIELDS])


def counterparty_side(transaction):
    """Money in comes from the payer, money out goes to the payee."""
    return "payer" if transaction["amount"] > 0 else "payee"


def counterparty_iban(transaction, own_iban=None):
    """The counterparty's IBAN: Salt Edge puts it in payer/payee_information or in
    account_number; our own account's IBAN (``own_iban``) is never the counterparty.
    False when none is an IBAN."""
    extra = transaction["extra"]
    own = normalize_iban(own_iban)
    side = counterparty_side(transaction)
    for candidate in (extra[f"{side}_information"], extra["account_number"]):
        value = normalize_iban(candidate)
        if value and value != own and _IBAN.match(value):
            return value
    return False


def line_values(transaction, own_iban=None):
    """The statement line's own values of a clean transaction (see ``clean_transaction``),
    without the journal, the account and the currencies, which the caller knows."""
    extra = transaction["extra"]
    return {
        "date": transaction["made_on"],
        "amount": transaction["amount"],
        "payment_ref": payment_ref(transaction),
        "partner_name": extra[counterparty_side(transaction)] or False,
        "account_number": counterparty_iban(transaction, own_iban),
        "saltedge_transaction_id": transaction["id"],
        "transaction_details": transaction.get("details") or False,
    }


def foreign_amount(transaction, journal_currency_code):
    """``(currency code, amount in it)`` when the bank gave the transaction's original
    amount in another currency than the journal's, signed like the amount; else None."""
    extra = transaction["extra"]
    code = extra["original_currency_code"]
    original = extra["original_amount"]
    if not code or original is None or code == journal_currency_code:
        return None
    return code, math.copysign(abs(original), transaction["amount"] or 1.0)


def page_cursor(items):
    """The largest id of a page (Salt Edge's ids grow), where the next run resumes; None
    when the page has no usable id."""
    ids = [clean_id(item.get("id")) for item in items if isinstance(item, dict)]
    ids = [value for value in ids if value]
    if not ids:
        return None
    if all(value.isdigit() for value in ids):
        return max(ids, key=int)
    return ids[-1]


# ----------------------------------------------------------------------------------------
# What a run counts
# ----------------------------------------------------------------------------------------


@dataclass
class ImportCounts:
    """What an import run (or one page of it) counted."""

    fetched: int = 0
    created: int = 0
    duplicates: int = 0
    matched: int = 0
    pending: int = 0
    # Transactions that cannot become a line, and a line of text for each (the first
    # SKIPPED_NOTE_LINES of them; the count holds them all).
    skipped: int = 0
    skipped_notes: tuple = ()
    # The opening lines booked by the run's last step, set (not added) by it: that step
    # is committed with the run's closing write, and done again if that write meets a
    # concurrent one (see the import's _run_import).
    openings: int = 0

    def add(self, other):
        self.fetched += other.fetched
        self.created += other.created
        self.duplicates += other.duplicates
        self.matched += other.matched
        self.pending += other.pending
        self.skipped += other.skipped
        self.skipped_notes = (self.skipped_notes + other.skipped_notes)[:SKIPPED_NOTE_LINES]

    def skip(self, note):
        """Count one skipped transaction, said by ``note``."""
        self.skipped += 1
        if len(self.skipped_notes) < SKIPPED_NOTE_LINES:
            self.skipped_notes += (note,)

    def as_vals(self):
        """The counts as the values of an import run (``account.bank.import.run``)."""
        return {
            "fetched_count": self.fetched,
            "created_count": self.created + self.openings,
            "duplicate_count": self.duplicates,
            "matched_count": self.matched,
            "pending_count": self.pending,
            "skipped_count": self.skipped,
            "skipped_note": "\n".join(self.skipped_notes) or False,
        }

    @classmethod
    def of_run(cls, run):
        """The counts ``run`` (an import run's record, or anything with its count
        attributes) already holds: a run resumed after a slice."""
        return cls(
            run.fetched_count,
            run.created_count,
            run.duplicate_count,
            run.matched_count,
            run.pending_count,
            run.skipped_count,
            tuple((run.skipped_note or "").splitlines()),
        )

"""Payment references in what a bank says about a transaction: a Belgian structured
communication and an ISO 11649 creditor reference, found, checked and written in the form
Odoo's reconciliation looks for.

Plain Python (no Odoo import), like ``saltedge_transactions``, so it can be used and tested
outside the ORM. It runs for every transaction of every page: the patterns are compiled
once, here.

Where the reference is: Salt Edge does not say. Its documentation (see docs
"A transaction's extra") describes ``information`` and ``additional`` only as free text,
and a reference may be in the description, in either of them, or only there. How it is
written: each bank has its own habit (markers of ``+`` or ``*``, slashes or none, digits
grouped by spaces, the whole embedded in a sentence), and no Salt Edge page says which
bank writes what. So every form listed in ``find_structured_communication`` is accepted,
and the check digits, not the form, decide what is a reference.

``payment_reference(description, remittance_texts)`` is the statement line's
``payment_ref``: the bank's description as the bank wrote it, and the references the
reconciliation needs, each once, in their canonical form.
"""

import re

# The ``extra`` keys of a Salt Edge transaction that may carry remittance information, in
# the order they are read. Source: our docs/saltedge-v6.md, "A transaction's extra" (from
# Salt Edge's v5 reference, which v6 clients still follow): ``information`` ("information
# about the transaction") and ``additional`` ("additional information, recommended to use
# in concatenation with original description"). No Salt Edge page found (docs search of
# 2026-12) documents a dedicated key such as "unstructured_remittance_information", so
# none is read; ``payer_information``/``payee_information`` hold the counterparty (IBAN,
# name, address), not the payment's reference.
REMITTANCE_FIELDS = ("information", "additional")

# A Belgian structured communication ("gestructureerde mededeling"): 10 digits and 2 check
# digits. Alternatives in the order they are tried at one position:
# - between markers of three "+" or "*", with any spaces and slashes inside;
# - 3/4/5 digits with slashes, spaces around them allowed;
# - 3 4 5 or 4 4 4 digits grouped by single spaces (as some banks print them);
# - 12 bare digits.
# None is taken from a longer run of digits (an IBAN's or an account's digits, a 13-digit
# number): the unmarked forms must not touch a letter or a digit, and the grouped ones
# must not continue a group of digits either ("BE68 5390 0754 7034" holds none).
_STRUCTURED = re.compile(
    r"""
      [+*]{3} \s* [0-9][0-9\s/]{10,30}[0-9] \s* [+*]{3}
    | (?<![\w/]) [0-9]{3} \s*/\s* [0-9]{4} \s*/\s* [0-9]{5} (?![\w/])
    | (?<!\w)(?<![0-9]\s) [0-9]{3}\s[0-9]{4}\s[0-9]{5} (?!\w)(?!\s[0-9])
    | (?<!\w)(?<![0-9]\s) [0-9]{4}\s[0-9]{4}\s[0-9]{4} (?!\w)(?!\s[0-9])
    | (?<!\w) [0-9]{12} (?!\w)
    """,
    re.VERBOSE,
)
_NOT_DIGIT = re.compile(r"[^0-9]")

# An ISO 11649 creditor reference: "RF", 2 check digits, 1 to 21 letters or digits;
# electronic ("RF18539007547034") or printed in groups of four ("RF18 5390 0754 7034"),
# in any case. Where one may start is searched for alone, so that a failed candidate
# never hides the next one; what follows a start may take words after the reference
# ("RF18 5390 0754 7034 dank"): which of them belong to it is decided by
# ``_creditor_reference``.
_CREDITOR_START = re.compile(r"(?<![0-9A-Za-z])RF[0-9]{2}", re.ASCII | re.IGNORECASE)
_CREDITOR_WRITTEN = re.compile(r"[0-9A-Za-z]+(?: [0-9A-Za-z]+){0,6}", re.ASCII)
_CREDITOR_LENGTH = 25
# Check digits ISO 7064 mod 97-10 never gives (they pass the check like 97, 98 and 02).
_CREDITOR_NO_CHECK = ("00", "01", "99")


def _structured_digits_valid(digits):
    """Whether the last two of 12 digits are the check digits of the first ten: their
    remainder modulo 97, 97 for a remainder of 0."""
    return int(digits[10:]) == (int(digits[:10]) % 97 or 97)


def find_structured_communication(*texts):
    """The first valid Belgian structured communication in ``texts`` (in the order given,
    and within a text from left to right), written ``+++ddd/dddd/ddddd+++``; None when
    there is none.

    Every form Belgian banks send is accepted, since none is documented per bank:
    ``+++090/9337/55493+++``, ``***090/9337/55493***``, either with spaces around or
    inside, ``090/9337/55493``, ``090933755493``, ``0909 3375 5493``, ``090 9337 55493``,
    alone or inside a sentence. Twelve digits that are part of a longer run of digits
    (an IBAN, an account number) are not a reference, and twelve digits whose check
    digits fail are not one either: the search goes on past them. Empty texts and
    anything that is not text are skipped."""
    for text in texts:
        if not text or not isinstance(text, str):
            continue
        for match in _STRUCTURED.finditer(text):
            digits = _NOT_DIGIT.sub("", match.group())
            if len(digits) == 12 and _structured_digits_valid(digits):
                return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"
    return None


def _creditor_valid(reference):
    """Whether ``reference`` (electronic form, upper case) passes ISO 7064 mod 97-10: its
    first four characters moved to the end, letters as numbers (A=10 .. Z=35), the
    number modulo 97 is 1."""
    if not 5 <= len(reference) <= _CREDITOR_LENGTH or reference[2:4] in _CREDITOR_NO_CHECK:
        return False
    moved = reference[4:] + reference[:4]
    return int("".join(str(int(character, 36)) for character in moved)) % 97 == 1


def _creditor_reference(written):
    """The valid reference at the start of ``written`` ("RFdd" and what follows it), in
    electronic form; None.

    A first group longer than "RFdd" is the electronic form: nothing after it is taken.
    Otherwise the printed form: groups of four, the last maybe shorter (or one long group
    after "RFdd"). Nothing says where the reference ends and the sentence goes on, so the
    longest run of groups that passes the check wins, but a group of letters alone not in
    upper case is a word ("RF18 5390 0754 7034 dank u") and ends the reference."""
    groups = written.split(" ")
    candidates = [groups[0].upper()]
    if len(groups[0]) == 4:
        for position, group in enumerate(groups[1:]):
            if group.isalpha() and not group.isupper():
                break
            if len(group) > 4:
                if position == 0:
                    candidates.append(candidates[-1] + group.upper())
                break
            candidates.append(candidates[-1] + group.upper())
            if len(group) < 4:
                break
    for reference in reversed(candidates):
        if _creditor_valid(reference):
            return reference
    return None


def find_creditor_reference(*texts):
    """The first valid ISO 11649 creditor reference in ``texts`` (in the order given, and
    within a text from left to right) in its electronic form (``RF18539007547034``: upper
    case, no spaces); None when there is none.

    Accepted in any case, electronic or printed in groups of four (``RF18 5390 0754
    7034``), alone or inside a sentence, but not glued to a letter or a digit before it.
    One whose check fails is skipped and the search goes on."""
    for text in texts:
        if not text or not isinstance(text, str):
            continue
        for start in _CREDITOR_START.finditer(text):
            written = _CREDITOR_WRITTEN.match(text, start.start()).group()
            reference = _creditor_reference(written)
            if reference:
                return reference
    return None


def payment_reference(description, remittance_texts=()):
    """The ``payment_ref`` of a statement line: ``description`` (the bank's, cleaned) as
    the bank wrote it, or when it is empty the first non-empty of ``remittance_texts``
    (the transaction's texts of ``REMITTANCE_FIELDS``, cleaned); "/" when all are empty.

    Then the references the reconciliation matches on, each once:
    - the first valid structured communication of the description or the remittance
      texts, in canonical form ``+++ddd/dddd/ddddd+++``, appended unless the text already
      holds it so (a form of the bank's own, ``***...***`` or bare digits, stays as it is
      and the canonical one is added);
    - a creditor reference (RF) of the remittance texts, electronic form, appended unless
      the text already holds one.
    Digits whose check digits fail are no reference: they stay where the bank wrote them
    and are never appended."""
    remittance_texts = tuple(text.strip() for text in remittance_texts if isinstance(text, str))
    text = description.strip() if isinstance(description, str) else ""
    if not text:
        text = next((remittance for remittance in remittance_texts if remittance), "")
    if not text:
        return "/"
    additions = []
    structured = find_structured_communication(text, *remittance_texts)
    if structured and structured not in text:
        additions.append(structured)
    if not find_creditor_reference(text):
        creditor = find_creditor_reference(*remittance_texts)
        if creditor:
            additions.append(creditor)
    return " ".join((text, *additions))

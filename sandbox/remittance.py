"""How the sandbox's Belgian banks write a payment's reference and a counterparty's IBAN.

Real Belgian banks each have their habit, and no Salt Edge page says which bank writes
what (docs/saltedge-v6.md, "A transaction's extra"): a structured communication comes as
``+++090/9337/55493+++``, ``***090/9337/55493***``, ``090/9337/55493``, ``090933755493``
or grouped by spaces; it may be in the description, or only in ``extra.information`` or
``extra.additional``; an ISO 11649 creditor reference comes electronic
(``RF18539007547034``) or in groups of four; an IBAN with or without spaces, in either
case. The ledger picks one of these per transaction, from a random generator of that
transaction alone, so the choice never moves an amount, a date or an id.
"""

from .providers import iban_check_digits

# (form, weight) of a valid structured communication; "plus" is the official form.
STRUCTURED_FORMS = (
    ("plus", 40),
    ("stars", 12),
    ("slashes", 16),
    ("bare", 16),
    ("groups_345", 8),
    ("groups_444", 8),
)
# Twelve digits whose check digits fail are no structured communication: a bank (or the
# payer) writes them as plain digits, never between markers.
FAILING_FORMS = (("bare", 1), ("groups_444", 1))
CREDITOR_FORMS = (("electronic", 1), ("groups", 1))
# (where, weight): where the reference is. "description": in the description (after
# "MEDEDELING") and in extra.information as well; "information" or "additional": only in
# that key of extra, the description without it.
PLACES = (("description", 60), ("information", 25), ("additional", 15))
# (form, weight) of a counterparty's IBAN in payer_information / payee_information.
IBAN_FORMS = (("electronic", 70), ("groups", 18), ("lower", 12))


def pick(rng, choices):
    """One of ``choices`` ((value, weight) pairs), drawn with ``rng``."""
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


def structured_digits(base):
    """The 12 digits of the structured communication of a 10-digit ``base``: the base
    and its check digits (the remainder modulo 97, 97 for 0)."""
    base = int(base) % 10**10
    return f"{base:010d}{base % 97 or 97:02d}"


def structured_communication(base):
    """A Belgian structured communication ``+++123/4567/89012+++`` from a 10-digit base."""
    return written_structured(structured_digits(base), "plus")


def failing_digits(base, shift):
    """Twelve digits that look like a structured communication of ``base`` but whose
    check digits fail: the valid check digits moved by ``shift`` (1 to 99)."""
    digits = structured_digits(base)
    wrong = (int(digits[10:]) + shift) % 100
    return f"{digits[:10]}{wrong:02d}"


def written_structured(digits, form):
    """Twelve digits written in one of the forms of ``STRUCTURED_FORMS``."""
    slashed = f"{digits[:3]}/{digits[3:7]}/{digits[7:]}"
    return {
        "plus": f"+++{slashed}+++",
        "stars": f"***{slashed}***",
        "slashes": slashed,
        "bare": digits,
        "groups_345": f"{digits[:3]} {digits[3:7]} {digits[7:]}",
        "groups_444": f"{digits[:4]} {digits[4:8]} {digits[8:]}",
    }[form]


def creditor_reference(payload):
    """The ISO 11649 creditor reference of ``payload`` (1 to 21 letters or digits) in
    electronic form: "RF", the ISO 7064 mod 97-10 check digits, the payload upper case."""
    payload = payload.upper()
    return f"RF{iban_check_digits('RF', payload)}{payload}"


def in_groups(text):
    """``text`` in groups of four characters, as IBANs and RF references are printed."""
    return " ".join(text[index : index + 4] for index in range(0, len(text), 4))


def written_creditor(reference, form):
    """An electronic RF reference written in one of the forms of ``CREDITOR_FORMS``."""
    return in_groups(reference) if form == "groups" else reference


def written_iban(iban, form):
    """An IBAN written in one of the forms of ``IBAN_FORMS``."""
    if form == "groups":
        return in_groups(iban)
    return iban.lower() if form == "lower" else iban


def written_reference(reference, style=None):
    """How a bank writes ``reference``: ("structured", 10-digit base), ("failing", base:
    twelve digits whose check digits fail) or ("creditor", payload of an RF reference).
    Returns (canonical, written, place): the valid reference as an invoice holds it (None
    for failing digits), the text the bank writes, and where (one of ``PLACES``). Drawn
    with ``style``, the transaction's own generator; without one, as Salt Edge's fake
    banks do: ``+++ddd/dddd/ddddd+++`` in the description."""
    kind, value = reference
    if style is None:
        return (structured_communication(value),) * 2 + ("description",)
    if kind == "creditor":
        canonical = creditor_reference(value)
        written = written_creditor(canonical, pick(style, CREDITOR_FORMS))
    elif kind == "failing":
        canonical = None
        digits = failing_digits(value, 1 + style.randrange(90))
        written = written_structured(digits, pick(style, FAILING_FORMS))
    else:
        canonical = structured_communication(value)
        written = written_structured(structured_digits(value), pick(style, STRUCTURED_FORMS))
    return canonical, written, pick(style, PLACES)

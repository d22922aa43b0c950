"""Deterministic, realistic Belgian bank transactions for the sandbox's accounts.

A day's transactions depend only on the provider, the account and the date, so a bank
shows the same history however often it is fetched; the clock decides which days exist.
The functions return *drafts* (no id, no status): ``accounts.py`` gives them ids in
``booking_order``, decides pending or posted and keeps the account balance equal to
opening balance + posted sum.

The Belgian banks write references and counterparties' IBANs as real ones do, each
transaction its own way (``remittance.py``): a structured communication in one of its
forms, in the description or only in ``extra.information`` or ``extra.additional``; now
and then twelve digits whose check digits fail, or an RF creditor reference instead. A
draft's ``reference`` (never sent) is the valid reference it carries in canonical form
(``+++ddd/dddd/ddddd+++`` or ``RF..``, as on the invoice it pays), None when it has none.
Salt Edge's fake banks (country XF) write every reference ``+++ddd/dddd/ddddd+++`` in the
description and in ``extra.information``, and IBANs electronic.

Belfius, and only Belfius (``Provider.balance_snapshots``), sends on each booked transaction
``extra.account_balance_snapshot``: the balance right after it, ``balance_before`` its day
plus the day's transactions up to it in ``booking_order``. The control API's hand-made
transactions are outside this history and carry none.
"""

import datetime
import functools
import random
from decimal import Decimal

from . import remittance
from .providers import belgian_iban, stable_number

HISTORY_DAYS = 90
# The day the sandbox's balances count from (any fixed day: only differences matter).
EPOCH = datetime.date(2025, 1, 1)

CUSTOMERS = (
    "Brouwerij Het Anker NV",
    "Bakkerij Peeters BV",
    "Garage Van den Broeck BV",
    "Architectenbureau Claes",
    "Studio Maes BV",
    "Transport Wouters NV",
    "Immo Jacobs BV",
    "Restaurant 't Pleintje",
    "Drukkerij Goossens NV",
    "Tandartsenpraktijk Willems",
)
SUPPLIERS = (
    "Lyreco Belgium NV",
    "Bol.com BV",
    "Vanden Borre Business",
    "Makro Cash & Carry Belgium",
    "Accountantskantoor Mertens",
    "Boekhandel Standaard",
    "Schoonmaak Dewitte BV",
    "IT Partners Antwerpen BV",
)
DIRECT_DEBITS = (
    ("Proximus NV", "Proximus factuur"),
    ("Engie Electrabel", "Energie voorschot"),
    ("Telenet BV", "Telenet Business"),
    ("Securex Sociaal Secretariaat", "Honoraria sociaal secretariaat"),
    ("AG Insurance", "Premie BA-verzekering"),
    ("Farys", "Water voorschot"),
)
CARD_MERCHANTS = (
    "COLRUYT GENT",
    "DELHAIZE BRUSSEL",
    "TOTALENERGIES ANTWERPEN",
    "SHELL MECHELEN",
    "CARREFOUR LEUVEN",
    "BRICO HASSELT",
    "Q8 BRUGGE",
    "NMBS/SNCB BRUSSEL-ZUID",
)
FOREIGN_MERCHANTS = (
    ("AWS EMEA SARL", "USD", 1.08),
    ("GITHUB INC", "USD", 1.08),
    ("AMAZON UK SERVICES", "GBP", 0.85),
    ("BOOKING.COM LONDON", "GBP", 0.85),
)
# Bank codes of real Belgian banks, for counterparties' IBANs.
BANK_CODES = (1, 68, 143, 310, 363, 523, 735, 751, 973, 979)
MONTHS_NL = (
    "januari februari maart april mei juni juli augustus september oktober november december"
).split()


def counterparty_iban(name):
    """A valid Belgian IBAN that is always the same for a counterparty's name."""
    number = stable_number("counterparty", name)
    return belgian_iban(BANK_CODES[number % len(BANK_CODES)], number // 7)


def opening_balance(provider, account):
    """The account's balance before ``EPOCH``; with ``balance_before``, a history without
    seams: a later connection's balance is an earlier one's plus the days between."""
    rng = random.Random(stable_number(provider.code, account.iban, "opening"))
    low, high = (10000, 60000) if account.nature == "savings" else (4000, 25000)
    return round(rng.uniform(low, high), 2)


BALANCE_SNAPSHOT = "account_balance_snapshot"


def booking_order(draft):
    """The order in which the bank books drafts, the order of their ids: by day, then
    by key within a day."""
    return draft["made_on"], draft["key"]


@functools.lru_cache(maxsize=65536)
def _day_total(provider, account, holder, day):
    return sum(
        Decimal(str(draft["amount"])) for draft in _drafts_of_day(provider, account, holder, day)
    )


def balance_before(provider, account, holder, day):
    """What ``account`` held before ``day``: the balance before ``EPOCH`` plus every day's
    transactions since (minus them for a day before ``EPOCH``). About 40 µs a day, cached."""
    total = Decimal(str(opening_balance(provider, account)))
    step = datetime.timedelta(days=1)
    current, sign = (EPOCH, 1) if day >= EPOCH else (day, -1)
    end = day if day >= EPOCH else EPOCH
    while current < end:
        total += sign * _day_total(provider, account, holder, current)
        current += step
    return float(total)


class _Day:
    """Builds the drafts of one account for one day."""

    def __init__(self, provider, account, holder, day, salt=""):
        self.provider, self.account, self.holder, self.day = provider, account, holder, day
        self.salt = salt
        seed = stable_number(provider.code, account.iban, day.isoformat(), salt)
        # What the day holds (how many transactions, their amounts): nothing else draws
        # from it, so a day's amounts stay what they are whatever is written around them.
        self.rng = random.Random(seed)
        # Belgian banks write references and IBANs their own ways; fake banks one way.
        self.varied = provider.country_code == "BE"
        self.drafts = []

    def style(self, label, purpose):
        """A random generator of its own for how the next draft is written (its
        ``purpose``): seeded by the draft, it never draws from the day's ``rng``."""
        seed = stable_number(
            self.provider.code,
            self.account.iban,
            self.day.isoformat(),
            self.salt,
            label,
            len(self.drafts),
            purpose,
        )
        return random.Random(seed)

    def add(self, label, amount, description, mode="normal", extra=None, reference=None):
        key = f"{self.day.isoformat()}#{label}#{len(self.drafts)}"
        self.drafts.append(
            {
                "key": key,
                "made_on": self.day.isoformat(),
                "amount": round(amount, 2),
                "currency_code": self.account.currency_code,
                "description": description,
                "mode": mode,
                "extra": {"id": f"{stable_number(self.account.iban, key) % 10**12:012d}"}
                | (extra or {}),
                "reference": reference,
            }
        )

    def transfer(self, label, name, iban, amount, description, information, **remitted):
        """A SEPA transfer or direct debit with a named counterparty and its IBAN.
        ``information`` None leaves ``extra.information`` out; ``remitted`` may hold
        ``additional`` (``extra.additional``) and ``reference`` (the draft's)."""
        form = "electronic"
        if self.varied:
            form = remittance.pick(self.style(label, "iban"), remittance.IBAN_FORMS)
        own = {"name": self.holder, "iban": self.account.iban}
        other = {"name": name, "iban": remittance.written_iban(iban, form)}
        payer, payee = (other, own) if amount > 0 else (own, other)
        ref = stable_number(self.account.iban, self.day, label, len(self.drafts)) % 10**10
        extra = {
            "payer": payer["name"],
            "payer_information": payer["iban"],
            "payee": payee["name"],
            "payee_information": payee["iban"],
            # A field of its own, never with spaces; in lower case when the bank writes so.
            "account_number": remittance.written_iban(
                iban, "lower" if form == "lower" else "electronic"
            ),
            "information": information,
            "additional": remitted.get("additional"),
            "end_to_end_id": f"E2E{self.day:%Y%m%d}{ref:010d}",
        }
        extra = {key: value for key, value in extra.items() if value is not None}
        self.add(label, amount, description, extra=extra, reference=remitted.get("reference"))

    def transfer_with_reference(self, label, name, iban, amount, lead, reference):
        """A transfer whose communication is ``reference``: ("structured", 10-digit
        base), ("failing", base: twelve digits whose check digits fail) or ("creditor",
        payload of an RF reference). ``lead`` is the description without it. A Belgian
        bank writes and places it in one of its ways; a fake bank as ``+++...+++``, in the
        description after "MEDEDELING" and in ``extra.information``."""
        style = self.style(label, "reference") if self.varied else None
        canonical, written, place = remittance.written_reference(reference, style)
        if place == "description":
            text = f"{lead} MEDEDELING {written}"
            self.transfer(label, name, iban, amount, text, written, reference=canonical)
        elif place == "information":
            self.transfer(label, name, iban, amount, lead, written, reference=canonical)
        else:
            self.transfer(
                label, name, iban, amount, lead, None, additional=written, reference=canonical
            )

    def supplier_reference(self, name, base):
        """What a supplier's payment with a reference carries: a structured
        communication; at a Belgian bank now and then an RF reference (1 in 3), or twelve
        digits that fail their check (1 in 15, so 1 in 25 of all supplier payments)."""
        if not self.varied:
            return "structured", base
        style = self.style("out", "kind")
        chance = style.random()
        if chance < 1 / 15:
            return "failing", base
        if chance < 1 / 15 + 1 / 3:
            prefix = "".join(char for char in name.upper() if char.isalpha())[:3]
            payload = style.choice((f"{base:010d}", f"{prefix}{self.day:%Y%m}{base % 10**4:04d}"))
            return "creditor", payload
        return "structured", base

    def customer_payment(self):
        name = self.rng.choice(CUSTOMERS)
        base = self.rng.randrange(10**9, 10**10)
        amount = self.rng.uniform(200, 4200)
        lead = f"OVERSCHRIJVING VAN {name.upper()}"
        reference = ("structured", base)
        self.transfer_with_reference("in", name, counterparty_iban(name), amount, lead, reference)

    def supplier_payment(self):
        name = self.rng.choice(SUPPLIERS)
        reference = info = None
        if self.rng.random() < 0.6:
            reference = self.supplier_reference(name, self.rng.randrange(10**9, 10**10))
        else:
            info = f"Factuur {self.day.year}-{self.rng.randrange(100, 9999):04d}"
        amount = -self.rng.uniform(80, 3500)
        iban, lead = counterparty_iban(name), f"EUROPESE OVERSCHRIJVING NAAR {name.upper()}"
        if reference:
            self.transfer_with_reference("out", name, iban, amount, lead, reference)
        else:
            self.transfer("out", name, iban, amount, f"{lead} MEDEDELING {info}", info)

    def direct_debit(self):
        name, what = DIRECT_DEBITS[(self.day.month + self.day.day) % len(DIRECT_DEBITS)]
        mandate = f"MNDT{stable_number(self.account.iban, name) % 10**8:08d}"
        amount = -self.rng.uniform(45, 450)
        text = f"EUROPESE DOMICILIERING {name.upper()} MANDAAT {mandate} {what}"
        self.transfer("dd", name, counterparty_iban(name), amount, text, what)

    def card_payment(self):
        merchant = self.rng.choice(CARD_MERCHANTS)
        amount = -self.rng.uniform(8, 180)
        extra = {"payee": merchant, "payer": self.holder, "payer_information": self.account.iban}
        self.add("card", amount, f"BETALING MET DEBETKAART {merchant}", extra=extra)

    def foreign_card_payment(self):
        merchant, currency, rate = self.rng.choice(FOREIGN_MERCHANTS)
        original = round(self.rng.uniform(5, 250), 2)
        amount = -original / rate
        text = (
            f"BETALING MET DEBETKAART {merchant} {original:.2f} {currency} "
            f"WISSELKOERS {rate:.4f}"
        )
        extra = {
            "payee": merchant,
            "payer": self.holder,
            "payer_information": self.account.iban,
            "original_amount": -original,
            "original_currency_code": currency,
        }
        self.add("fx", amount, text, extra=extra)

    def fee(self):
        amount = -self.rng.choice((2.5, 4.95, 7.5, 12.5))
        text = f"BEHEERSKOSTEN REKENING {MONTHS_NL[self.day.month - 1]} {self.day.year}"
        self.add("fee", amount, text, mode="fee", extra={"payer": self.holder})


def _current_account_day(day_builder):
    d, rng = day_builder.day, day_builder.rng
    if d.day == 1:
        day_builder.fee()
    if d.day == 5:
        reference = ("structured", stable_number("rsz", d.year, d.month) % 10**10)
        amount = -rng.uniform(800, 2500)
        lead = "EUROPESE OVERSCHRIJVING NAAR RSZ"
        iban = belgian_iban(679, 2002299)
        day_builder.transfer_with_reference("rsz", "RSZ - ONSS", iban, amount, lead, reference)
    if d.day == 20 and d.month in (1, 4, 7, 10):
        reference = ("structured", stable_number("btw", d.year, d.month) % 10**10)
        amount = -rng.uniform(1500, 6000)
        lead = "EUROPESE OVERSCHRIJVING NAAR FOD FINANCIEN BTW"
        iban = belgian_iban(679, 2002477)
        name = "FOD Financiën - BTW"
        day_builder.transfer_with_reference("btw", name, iban, amount, lead, reference)
    if d.day == 28:
        for worker in ("Sofie Peeters", "Tom Vermeulen")[: 1 + rng.randrange(2)]:
            text = f"LOON {MONTHS_NL[d.month - 1].upper()} {d.year} {worker.upper()}"
            amount = -rng.uniform(2200, 3400)
            day_builder.transfer("loon", worker, counterparty_iban(worker), amount, text, text)
    if d.day in (3, 12):
        day_builder.direct_debit()
    count = rng.choice((0, 1, 1, 2, 2, 3)) if d.weekday() < 5 else rng.choice((0, 0, 1))
    kinds = (
        day_builder.customer_payment,
        day_builder.supplier_payment,
        day_builder.card_payment,
        day_builder.foreign_card_payment,
    )
    for _index in range(count):
        rng.choices(kinds, weights=(36, 24, 32, 8))[0]()


def _savings_account_day(day_builder, provider):
    d, rng = day_builder.day, day_builder.rng
    current = next((a for a in provider.accounts if a.nature != "savings"), None)
    own_iban = current.iban if current else counterparty_iban(day_builder.holder)
    if d.day == 1:
        amount = rng.choice((100, 250, 500, 1000))
        text = "OVERSCHRIJVING VAN ZICHTREKENING SPAREN"
        day_builder.transfer("sparen", day_builder.holder, own_iban, amount, text, "Sparen")
    next_day = d + datetime.timedelta(days=1)
    if next_day.day == 1 and d.month in (3, 6, 9, 12):
        amount = rng.uniform(15, 120)
        day_builder.add("intrest", amount, "INTREST EN GETROUWHEIDSPREMIE", extra={})
    if rng.random() < 0.03:
        amount = -rng.choice((200, 500, 1500))
        text = "OVERSCHRIJVING NAAR ZICHTREKENING"
        day_builder.transfer("opname", day_builder.holder, own_iban, amount, text, "Opname")


def _drafts_of_day(provider, account, holder, day):
    builder = _Day(provider, account, holder, day)
    if account.nature == "savings":
        _savings_account_day(builder, provider)
    else:
        _current_account_day(builder)
    return builder.drafts


def _with_balance_snapshots(drafts, balance):
    """Give each of ``drafts`` (whole consecutive days) ``extra.account_balance_snapshot``:
    ``balance``, what the account held before their first day, plus every draft up to
    this one in ``booking_order``."""
    running = Decimal(str(balance))
    for draft in sorted(drafts, key=booking_order):
        running += Decimal(str(draft["amount"]))
        draft["extra"][BALANCE_SNAPSHOT] = float(running)
    return drafts


def drafts_for_day(provider, account, holder, day):
    """The drafts of ``account`` for ``day`` (a date), always the same for the same inputs."""
    drafts = _drafts_of_day(provider, account, holder, day)
    if provider.balance_snapshots:
        _with_balance_snapshots(drafts, balance_before(provider, account, holder, day))
    return drafts


def drafts_for_period(provider, account, holder, first_day, last_day):
    """The drafts of every day from ``first_day`` to ``last_day`` included."""
    drafts = []
    day = first_day
    while day <= last_day:
        drafts.extend(_drafts_of_day(provider, account, holder, day))
        day += datetime.timedelta(days=1)
    if provider.balance_snapshots:
        _with_balance_snapshots(drafts, balance_before(provider, account, holder, first_day))
    return drafts


def drafts_numbered(provider, account, holder, count, last_day):
    """Exactly ``count`` drafts spread over the ``HISTORY_DAYS`` days up to ``last_day``."""
    drafts = []
    for index in range(count):
        offset = HISTORY_DAYS - 1 - (index * HISTORY_DAYS) // max(count, 1)
        day = last_day - datetime.timedelta(days=offset)
        builder = _Day(provider, account, holder, day, salt=f"n{index}")
        builder.rng.choice((builder.customer_payment, builder.supplier_payment))()
        draft = builder.drafts[0]
        draft["key"] = f"n#{index}"
        drafts.append(draft)
    return drafts


def drafts_extra(provider, account, holder, day, serial, count):
    """``count`` new drafts for ``day``, different for every ``serial`` (refresh updates)."""
    builder = _Day(provider, account, holder, day, salt=f"extra{serial}")
    kinds = (builder.customer_payment, builder.supplier_payment, builder.card_payment)
    for index in range(count):
        kinds[index % len(kinds)]()
    for index, draft in enumerate(builder.drafts):
        draft["key"] = f"extra#{serial}#{index}"
    return builder.drafts

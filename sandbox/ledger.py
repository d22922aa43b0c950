"""Deterministic, realistic Belgian bank transactions for the sandbox's accounts.

A day's transactions depend only on the provider, the account and the date, so a bank
shows the same history however often it is fetched; the clock decides which days exist.
The functions return *drafts* (no id, no status): ``store.py`` gives them ids, decides
pending or posted and keeps the account balance equal to opening balance + posted sum.
"""

import datetime
import functools
import random
from decimal import Decimal

from .providers import belgian_iban, stable_number, structured_communication

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


@functools.lru_cache(maxsize=65536)
def _day_total(provider, account, holder, day):
    return sum(
        Decimal(str(draft["amount"])) for draft in drafts_for_day(provider, account, holder, day)
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
        seed = stable_number(provider.code, account.iban, day.isoformat(), salt)
        self.rng = random.Random(seed)
        self.drafts = []

    def add(self, label, amount, description, mode="normal", extra=None):
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
            }
        )

    def transfer(self, label, name, iban, amount, description, information):
        """A SEPA transfer or direct debit with a named counterparty and its IBAN."""
        own = {"name": self.holder, "iban": self.account.iban}
        other = {"name": name, "iban": iban}
        payer, payee = (other, own) if amount > 0 else (own, other)
        ref = stable_number(self.account.iban, self.day, label, len(self.drafts)) % 10**10
        extra = {
            "payer": payer["name"],
            "payer_information": payer["iban"],
            "payee": payee["name"],
            "payee_information": payee["iban"],
            "account_number": iban,
            "information": information,
            "end_to_end_id": f"E2E{self.day:%Y%m%d}{ref:010d}",
        }
        self.add(label, amount, description, extra=extra)

    def structured(self):
        return structured_communication(self.rng.randrange(10**9, 10**10))

    def customer_payment(self):
        name = self.rng.choice(CUSTOMERS)
        comm = self.structured()
        amount = self.rng.uniform(200, 4200)
        text = f"OVERSCHRIJVING VAN {name.upper()} MEDEDELING {comm}"
        self.transfer("in", name, counterparty_iban(name), amount, text, comm)

    def supplier_payment(self):
        name = self.rng.choice(SUPPLIERS)
        if self.rng.random() < 0.6:
            info = self.structured()
        else:
            info = f"Factuur {self.day.year}-{self.rng.randrange(100, 9999):04d}"
        amount = -self.rng.uniform(80, 3500)
        text = f"EUROPESE OVERSCHRIJVING NAAR {name.upper()} MEDEDELING {info}"
        self.transfer("out", name, counterparty_iban(name), amount, text, info)

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
        comm = structured_communication(stable_number("rsz", d.year, d.month) % 10**10)
        amount = -rng.uniform(800, 2500)
        text = f"EUROPESE OVERSCHRIJVING NAAR RSZ MEDEDELING {comm}"
        day_builder.transfer("rsz", "RSZ - ONSS", belgian_iban(679, 2002299), amount, text, comm)
    if d.day == 20 and d.month in (1, 4, 7, 10):
        comm = structured_communication(stable_number("btw", d.year, d.month) % 10**10)
        amount = -rng.uniform(1500, 6000)
        text = f"EUROPESE OVERSCHRIJVING NAAR FOD FINANCIEN BTW MEDEDELING {comm}"
        iban = belgian_iban(679, 2002477)
        day_builder.transfer("btw", "FOD Financiën - BTW", iban, amount, text, comm)
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


def drafts_for_day(provider, account, holder, day):
    """The drafts of ``account`` for ``day`` (a date), always the same for the same inputs."""
    builder = _Day(provider, account, holder, day)
    if account.nature == "savings":
        _savings_account_day(builder, provider)
    else:
        _current_account_day(builder)
    return builder.drafts


def drafts_for_period(provider, account, holder, first_day, last_day):
    """The drafts of every day from ``first_day`` to ``last_day`` included."""
    drafts = []
    day = first_day
    while day <= last_day:
        drafts.extend(drafts_for_day(provider, account, holder, day))
        day += datetime.timedelta(days=1)
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

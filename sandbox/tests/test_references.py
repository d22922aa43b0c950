"""What the Belgian sandbox banks write about a payment, as real Belgian banks do: a
structured communication in each of its forms and places, RF creditor references, twelve
digits whose check digits fail, counterparties' IBANs with spaces or in lower case; and
Belfius's balance snapshot on each booked transaction. None of it moves an amount, a date
or an id: the values recorded before the forms existed still hold.

Built through the sandbox's own ledger over 400 days (no HTTP); the checks of check digits
are written here from the standards, not taken from the sandbox.
"""

import datetime
import functools
import hashlib
import json
import re
import unittest
from decimal import Decimal

from sandbox.accounts import AccountBook
from sandbox.ledger import balance_before, drafts_for_day, drafts_for_period
from sandbox.providers import BUSINESS_HOLDER, PROVIDERS, PROVIDERS_BY_CODE
from sandbox.state import State

FIRST_DAY = datetime.date(2025, 1, 1)
LAST_DAY = datetime.date(2026, 2, 4)  # 400 days
BELGIAN = [provider for provider in PROVIDERS if provider.country_code == "BE"]
FAKE = [provider for provider in PROVIDERS if provider.country_code == "XF"]
REMITTANCE = ("description", "information", "additional")


@functools.cache
def history(code, nature="account", first_day=FIRST_DAY, last_day=LAST_DAY):
    provider = PROVIDERS_BY_CODE[code]
    account = next(account for account in provider.accounts if account.nature == nature)
    return drafts_for_period(provider, account, BUSINESS_HOLDER, first_day, last_day)


def texts_of(draft):
    """The description, extra.information and extra.additional (None when absent)."""
    return {
        "description": draft["description"],
        "information": draft["extra"].get("information"),
        "additional": draft["extra"].get("additional"),
    }


def structured_ok(digits):
    """Belgian structured communication: the last two of 12 digits are the first ten
    modulo 97, 97 for a remainder of 0."""
    return len(digits) == 12 and int(digits[10:]) == (int(digits[:10]) % 97 or 97)


def mod97_10_ok(text):
    """ISO 7064 mod 97-10 as IBANs (ISO 13616) and RF references (ISO 11649) use it."""
    moved = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def structured_writings(digits):
    """Each form a Belgian bank may write 12 digits in, most marked first (the slashes
    alone are inside the marked ones)."""
    slashed = f"{digits[:3]}/{digits[3:7]}/{digits[7:]}"
    return {
        "plus": f"+++{slashed}+++",
        "stars": f"***{slashed}***",
        "slashes": slashed,
        "bare": digits,
        "groups_345": f"{digits[:3]} {digits[3:7]} {digits[7:]}",
        "groups_444": f"{digits[:4]} {digits[4:8]} {digits[8:]}",
    }


def where_written(draft, writing):
    """Where ``writing`` is: "description" (then in extra.information too), or the one key
    of extra that alone holds it; None when nowhere."""
    texts = texts_of(draft)
    places = [place for place in REMITTANCE if writing in (texts[place] or "")]
    if places == ["description", "information"]:
        return "description"
    if len(places) == 1 and places[0] != "description":
        return places[0]
    return None


def form_and_place(draft):
    """(form, place) of a draft's valid structured communication."""
    digits = re.sub(r"[^0-9]", "", draft["reference"])
    for form, writing in structured_writings(digits).items():
        place = where_written(draft, writing)
        if place:
            return form, place
    return None, None


# Twelve digits as written in every form, not part of a longer run of digits.
TWELVE_DIGITS = re.compile(
    r"(?<![0-9 /])[0-9]{3}/[0-9]{4}/[0-9]{5}(?![0-9/])"
    r"|(?<![0-9])(?<![0-9] )[0-9]{3} [0-9]{4} [0-9]{5}(?! ?[0-9])"
    r"|(?<![0-9])(?<![0-9] )[0-9]{4} [0-9]{4} [0-9]{4}(?! ?[0-9])"
    r"|(?<![0-9])[0-9]{12}(?![0-9])"
)


class StructuredCommunicationTest(unittest.TestCase):
    def test_every_form_and_place_occurs_at_every_belgian_bank(self):
        for provider in BELGIAN:
            seen = set()
            for draft in history(provider.code):
                if (draft["reference"] or "").startswith("+++"):
                    form, place = form_and_place(draft)
                    self.assertTrue(form, (draft["description"], draft["extra"]))
                    seen |= {form, place}
            self.assertEqual(
                seen,
                {
                    *("plus", "stars", "slashes", "bare", "groups_345", "groups_444"),
                    *("description", "information", "additional"),
                },
                provider.code,
            )

    def test_a_reference_only_in_the_remittance_fields_leaves_the_description_without_it(self):
        seen = 0
        for draft in history("kbc_sandbox_be"):
            if (draft["reference"] or "").startswith("+++"):
                _form, place = form_and_place(draft)
                if place != "description":
                    self.assertNotIn("MEDEDELING", draft["description"])
                    self.assertRegex(draft["description"], r"^(EUROPESE )?OVERSCHRIJVING ")
                    self.assertFalse(re.search(r"[0-9]", draft["description"]))
                    seen += 1
        self.assertGreater(seen, 50)

    def test_every_valid_reference_holds_its_check_digits(self):
        for provider in BELGIAN:
            references = [d["reference"] for d in history(provider.code) if d["reference"]]
            structured = [ref for ref in references if ref.startswith("+++")]
            self.assertGreater(len(structured), 150, provider.code)
            for reference in structured:
                self.assertRegex(reference, r"^\+\+\+[0-9]{3}/[0-9]{4}/[0-9]{5}\+\+\+$")
                self.assertTrue(structured_ok(re.sub(r"[^0-9]", "", reference)), reference)

    def test_some_supplier_payments_carry_digits_whose_check_fails_written_as_plain_digits(self):
        for provider in BELGIAN:
            supplier_payments = [d for d in history(provider.code) if "#out#" in d["key"]]
            failing = []
            for draft in supplier_payments:
                found = [
                    match.group()
                    for text in texts_of(draft).values()
                    for match in TWELVE_DIGITS.finditer(text or "")
                ]
                for written in found:
                    digits = re.sub(r"[^0-9]", "", written)
                    if draft["reference"] is None:
                        failing.append(written)
                        self.assertFalse(structured_ok(digits), written)
                        # Never between markers: a bank does not mark what is no reference.
                        self.assertRegex(written, r"^[0-9]{4} ?[0-9]{4} ?[0-9]{4}$")
            # About 1 in 25: a small share, but at every bank.
            self.assertTrue(failing, provider.code)
            self.assertLess(len(failing), len(supplier_payments) / 10, provider.code)

    def test_no_text_holds_valid_digits_other_than_the_drafts_own_reference(self):
        for provider in BELGIAN:
            for draft in history(provider.code):
                for text in texts_of(draft).values():
                    for match in TWELVE_DIGITS.finditer(text or ""):
                        digits = re.sub(r"[^0-9]", "", match.group())
                        if structured_ok(digits):
                            self.assertEqual(
                                draft["reference"], structured_writings(digits)["plus"], text
                            )


class CreditorReferenceTest(unittest.TestCase):
    def test_some_supplier_payments_carry_a_valid_rf_reference_electronic_or_grouped(self):
        all_places = set()
        for provider in BELGIAN:
            forms = set()
            for draft in history(provider.code):
                reference = draft["reference"] or ""
                if not reference.startswith("RF"):
                    continue
                self.assertIn("#out#", draft["key"])
                self.assertRegex(reference, r"^RF[0-9]{2}[0-9A-Z]{1,21}$")
                self.assertTrue(mod97_10_ok(reference), reference)
                grouped = " ".join(reference[i : i + 4] for i in range(0, len(reference), 4))
                written = {
                    form: where_written(draft, writing)
                    for form, writing in (("electronic", reference), ("groups", grouped))
                }
                found = {form: place for form, place in written.items() if place}
                self.assertEqual(len(found), 1, (draft["description"], draft["extra"]))
                forms |= set(found)
                all_places |= set(found.values())
            self.assertEqual(forms, {"electronic", "groups"}, provider.code)
        self.assertEqual(all_places, set(REMITTANCE))

    def test_rf_references_with_letters_occur(self):
        references = {
            draft["reference"]
            for provider in BELGIAN
            for draft in history(provider.code)
            if (draft["reference"] or "").startswith("RF")
        }
        self.assertTrue(any(re.search("[A-Z]", reference[4:]) for reference in references))
        self.assertTrue(any(reference[4:].isdigit() for reference in references))


class CounterpartyIbanTest(unittest.TestCase):
    def test_counterparty_ibans_come_grouped_or_in_lower_case_and_normalize_to_valid_ones(self):
        for provider in BELGIAN:
            own = {account.iban for account in provider.accounts}
            forms = set()
            for draft in history(provider.code):
                extra = draft["extra"]
                if "account_number" not in extra:
                    continue
                side = "payer" if draft["amount"] > 0 else "payee"
                written = extra[f"{side}_information"]
                normalized = written.replace(" ", "").upper()
                self.assertTrue(mod97_10_ok(normalized), written)
                # account_number, a field of its own, is never spaced.
                self.assertNotIn(" ", extra["account_number"])
                self.assertEqual(extra["account_number"].upper(), normalized)
                other_side = "payee" if side == "payer" else "payer"
                self.assertIn(extra[f"{other_side}_information"], own)
                if " " in written:
                    self.assertRegex(written, r"^[A-Z]{2}[0-9]{2}( [0-9A-Z]{4})*( [0-9A-Z]{1,4})?$")
                    forms.add("groups")
                elif written.islower():
                    forms.add("lower")
                else:
                    self.assertEqual(written, normalized)
                    forms.add("electronic")
            self.assertEqual(forms, {"electronic", "groups", "lower"}, provider.code)


class FakeBankTest(unittest.TestCase):
    def test_fake_banks_write_one_way_and_send_no_snapshot(self):
        for provider in FAKE:
            drafts = history(
                provider.code, first_day=FIRST_DAY, last_day=FIRST_DAY.replace(month=4)
            )
            for draft in drafts:
                extra = draft["extra"]
                self.assertNotIn("additional", extra)
                self.assertNotIn("account_balance_snapshot", extra)
                for key in ("payer_information", "payee_information", "account_number"):
                    if key in extra:
                        self.assertEqual(extra[key], extra[key].replace(" ", "").upper())
                if draft["reference"]:
                    self.assertTrue(draft["reference"].startswith("+++"))
                    self.assertEqual(extra["information"], draft["reference"])
                    self.assertTrue(draft["description"].endswith(draft["reference"]))


class BalanceSnapshotTest(unittest.TestCase):
    def assert_snapshots_follow_the_balance(self, provider, account, first_day, last_day):
        drafts = drafts_for_period(provider, account, BUSINESS_HOLDER, first_day, last_day)
        by_day = {}
        for draft in drafts:
            by_day.setdefault(draft["made_on"], []).append(draft)
        for made_on, day_drafts in by_day.items():
            day = datetime.date.fromisoformat(made_on)
            running = Decimal(str(balance_before(provider, account, BUSINESS_HOLDER, day)))
            for draft in sorted(day_drafts, key=lambda d: d["key"]):
                running += Decimal(str(draft["amount"]))
                snapshot = draft["extra"]["account_balance_snapshot"]
                self.assertEqual(Decimal(str(snapshot)).quantize(Decimal("0.01")), running)
            alone = drafts_for_day(provider, account, BUSINESS_HOLDER, day)
            self.assertEqual(
                [d["extra"]["account_balance_snapshot"] for d in alone],
                [d["extra"]["account_balance_snapshot"] for d in day_drafts],
            )
        return drafts

    def test_each_belfius_transaction_carries_the_balance_right_after_it(self):
        belfius = PROVIDERS_BY_CODE["belfius_sandbox_be"]
        for account in belfius.accounts:
            drafts = self.assert_snapshots_follow_the_balance(belfius, account, FIRST_DAY, LAST_DAY)
            self.assertGreater(len(drafts), 30)
        # Before the sandbox's epoch too.
        self.assert_snapshots_follow_the_balance(
            belfius, belfius.accounts[0], datetime.date(2024, 10, 1), datetime.date(2024, 12, 31)
        )

    def test_only_belfius_sends_snapshots(self):
        for provider in BELGIAN:
            sent = any("account_balance_snapshot" in d["extra"] for d in history(provider.code))
            self.assertEqual(sent, provider.code == "belfius_sandbox_be", provider.code)

    def test_listed_by_id_the_snapshots_add_up_and_a_pending_one_gets_its_own_when_booked(self):
        belfius = PROVIDERS_BY_CODE["belfius_sandbox_be"]
        template = belfius.accounts[0]
        first_day, today = datetime.date(2025, 5, 1), datetime.date(2025, 6, 30)
        drafts = drafts_for_period(belfius, template, BUSINESS_HOLDER, first_day, today)
        self.assertTrue(any(d["made_on"] == today.isoformat() for d in drafts))
        book = Book()
        account = book._account_for(book.connection, template, belfius, first_day)
        book._store_drafts(account, belfius, drafts, today)
        pending = book.transactions_of(book.connection, pending=True)
        self.assertTrue(pending)
        self.assertTrue(all("account_balance_snapshot" not in t["extra"] for t in pending))
        book._post_pendings(account, belfius, today + datetime.timedelta(days=1))
        self.assertFalse(book.transactions_of(book.connection, pending=True))
        listed = book.transactions_of(book.connection)
        self.assertEqual(len(listed), len(drafts))
        # The history of these days came in one fetch: listed by id, it is booked in order.
        running = Decimal(str(account["_opening"]))
        for transaction in listed:
            running += Decimal(str(transaction["amount"]))
            snapshot = Decimal(str(transaction["extra"]["account_balance_snapshot"]))
            self.assertEqual(snapshot.quantize(Decimal("0.01")), running)


class Book(AccountBook):
    """The sandbox's accounts and transactions, without the rest of the bank."""

    def __init__(self):
        self.state = State()
        self.connection = {"id": "1", "_holder": BUSINESS_HOLDER}


def ids_hash(values):
    return hashlib.sha256(",".join(values).encode()).hexdigest()[:16]


# Recorded before the sandbox wrote references in several forms: drafts of 1 to 30 March
# 2025 (count, total, hash of extra.id, first ids, hash of end_to_end_id), the 400 days'
# (count, hash of key, date, amount, extra.id, mode, currency) and the balance before
# 1 March 2025.
RECORDED = {
    ("kbc_sandbox_be", "BE73735012345660"): (
        (35, 4380.07, "fa9bb7838f37d8ef", ["832583311404", "309512765750", "928291488909"]),
        ("2dcb7bcf558c58ca", 523, "693cc9b952f8351a", 44820.55),
    ),
    ("kbc_sandbox_be", "BE55735065432144"): (
        (1, 500, "2cb7e05aef9fdf80", ["750582592419"]),
        ("34481d9a6fd9755e", 29, "6d05a5b835616ab3", 26450.23),
    ),
    ("belfius_sandbox_be", "BE56363123456788"): (
        (38, 16957.61, "669597b2cad221dd", ["571971935980", "446772868155", "809750616765"]),
        ("e6722fa8eec7781e", 571, "31aa0043af3399ce", 29505.5),
    ),
    ("belfius_sandbox_be", "BE23363765432191"): (
        (2, -250, "690d9ad67cfdd2aa", ["119169813721", "638417529083"]),
        ("c485c243e6ff9b5a", 39, "a18c6076707d3287", 42339.94),
    ),
    ("ing_sandbox_be", "BE38068556677872"): (
        (35, 9365.76, "d3152cdf4d0b3247", ["816557393116", "644746336553", "498739937957"]),
        ("bbbb46dacb7174a2", 562, "4dcc81c711c71d7b", 25631.0),
    ),
}


class UnchangedTest(unittest.TestCase):
    def test_amounts_dates_and_ids_are_those_recorded_before_the_forms(self):
        for (code, iban), (march, whole) in RECORDED.items():
            provider = PROVIDERS_BY_CODE[code]
            account = next(account for account in provider.accounts if account.iban == iban)
            drafts = drafts_for_period(
                provider,
                account,
                BUSINESS_HOLDER,
                datetime.date(2025, 3, 1),
                datetime.date(2025, 3, 30),
            )
            ids = [draft["extra"]["id"] for draft in drafts]
            self.assertEqual(
                (
                    len(drafts),
                    round(sum(draft["amount"] for draft in drafts), 2),
                    ids_hash(ids),
                    ids[:3],
                ),
                march,
                code,
            )
            end_to_end = [str(draft["extra"].get("end_to_end_id")) for draft in drafts]
            days = drafts_for_period(provider, account, BUSINESS_HOLDER, FIRST_DAY, LAST_DAY)
            booked = [
                (
                    d["key"],
                    d["made_on"],
                    d["amount"],
                    d["extra"]["id"],
                    d["mode"],
                    d["currency_code"],
                )
                for d in days
            ]
            digest = hashlib.sha256(json.dumps(booked).encode()).hexdigest()[:16]
            before = balance_before(provider, account, BUSINESS_HOLDER, datetime.date(2025, 3, 1))
            self.assertEqual((ids_hash(end_to_end), len(days), digest, before), whole, code)

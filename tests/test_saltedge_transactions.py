"""Salt Edge's transactions cleaned outside Odoo: text, ids, amounts, dates, currency codes,
and whole transactions as the import takes them or refuses them.

Then what the import builds from a clean transaction with no database: the line's values,
its payment reference, the counterparty's IBAN, the original amount, the page cursor and
the counts of a run.

Plain ``unittest`` classes collected by pytest: the module has no Odoo import.
"""

import json
import unittest
from types import SimpleNamespace

from ..saltedge_transactions import (
    AMOUNT_LIMIT,
    ID_LIMIT,
    NAME_LIMIT,
    NO_AMOUNT,
    NO_DATE,
    NO_ID,
    NOT_A_TRANSACTION,
    SKIPPED_NOTE_LINES,
    TEXT_LIMIT,
    ImportCounts,
    InvalidTransaction,
    clean_currency_code,
    clean_id,
    clean_text,
    clean_transaction,
    counterparty_iban,
    display,
    foreign_amount,
    is_marked_duplicate,
    is_pending,
    line_values,
    normalize_iban,
    page_cursor,
    parse_amount,
    parse_date,
    payment_ref,
)


def transaction(**fields):
    """A posted transaction as Salt Edge sends it, with ``fields`` replaced."""
    base = {
        "id": "1234567",
        "account_id": "99",
        "made_on": "2026-11-02",
        "amount": -12.5,
        "currency_code": "EUR",
        "description": "Proximus factuur +++123/4567/89012+++",
        "status": "posted",
        "duplicated": False,
        "extra": {"payee": "Proximus NV", "payee_information": "BE68539007547034"},
    }
    base.update(fields)
    return base


class TestCleanText(unittest.TestCase):
    def test_text_that_is_fine_comes_back_as_it_is_but_stripped(self):
        self.assertEqual(
            clean_text("  Factuur 2026/0042 +++123/4567/89012+++ "),
            ("Factuur 2026/0042 +++123/4567/89012+++"),
        )
        self.assertEqual(clean_text("Brasserie Ça Va – Liège €"), "Brasserie Ça Va – Liège €")

    def test_nul_and_other_control_characters_are_dropped_tab_and_newline_kept(self):
        self.assertEqual(clean_text("Huur\x00 november"), "Huur november")
        self.assertEqual(clean_text("a\x07b\x1bc\x7fd\x85e"), "abcde")
        self.assertEqual(clean_text("line 1\r\nline 2\rline 3\tend"), "line 1\nline 2\nline 3\tend")
        self.assertEqual(clean_text("\x00\x00"), "")

    def test_a_lone_surrogate_becomes_the_replacement_character_and_encodes(self):
        received = json.loads('"caf\\ud800e"')
        text = clean_text(received)
        self.assertEqual(text, "caf\ufffde")
        self.assertTrue(text.encode("utf-8"))
        # A pair is one character, kept.
        self.assertEqual(clean_text(json.loads('"\\ud83d\\ude00"')), "\U0001f600")

    def test_numbers_become_their_digits_and_what_is_no_text_becomes_empty(self):
        self.assertEqual(clean_text(20261102), "20261102")
        self.assertEqual(clean_text(5.0), "5")
        self.assertEqual(clean_text(12.75), "12.75")
        for value in (None, {"a": 1}, ["x"], True, False, float("nan"), float("inf")):
            self.assertEqual(clean_text(value), "", value)

    def test_text_is_cut_at_its_limit(self):
        self.assertEqual(len(clean_text("x" * (TEXT_LIMIT + 50))), TEXT_LIMIT)
        self.assertEqual(clean_text("abcdef", 3), "abc")

    def test_display_is_one_short_line_or_a_question_mark(self):
        self.assertEqual(display("not a date"), "not a date")
        self.assertEqual(display("a\nb\x00c"), "a bc")
        self.assertEqual(display(12345), "12345")
        self.assertEqual(display(None), "?")
        self.assertEqual(display({"x": 1}), "?")
        self.assertLessEqual(len(display("y" * 500)), 40)


class TestCleanValues(unittest.TestCase):
    def test_an_id_is_a_non_empty_string_or_whole_number_without_control_characters(self):
        self.assertEqual(clean_id("1234"), "1234")
        self.assertEqual(clean_id(" 1234 "), "1234")
        self.assertEqual(clean_id(1234), "1234")
        self.assertEqual(clean_id(1234.0), "1234")
        for value in (None, "", "  ", True, 12.5, "12\x0034", "12 34", [1], {}, "9" * 65):
            self.assertIsNone(clean_id(value), repr(value))
        self.assertEqual(clean_id("9" * ID_LIMIT), "9" * ID_LIMIT)

    def test_an_amount_is_a_finite_number_or_a_number_written_as_text(self):
        self.assertEqual(parse_amount(-12.5), -12.5)
        self.assertEqual(parse_amount(7), 7.0)
        self.assertEqual(parse_amount("-12.50"), -12.5)
        self.assertEqual(parse_amount(" 1e3 "), 1000.0)
        self.assertEqual(parse_amount(0), 0.0)
        for value in (
            None,
            "",
            "abc",
            "12,50",
            "1_000",
            "NaN",
            "inf",
            "1e999",
            float("nan"),
            float("-inf"),
            True,
            [1],
            {"amount": 1},
            AMOUNT_LIMIT,
            10**400,
            "١٢",
        ):
            self.assertIsNone(parse_amount(value), repr(value))

    def test_a_date_is_year_month_day_and_a_day_that_exists(self):
        self.assertEqual(parse_date("2026-11-02"), "2026-11-02")
        self.assertEqual(parse_date(" 2026-11-02 "), "2026-11-02")
        for value in (
            None,
            "",
            "not a date",
            "2026-02-30",
            "20261102",
            "2026-11-02T10:00:00Z",
            "02/11/2026",
            "0001-01-01",
            "9999-12-31",
            20261102,
            ["2026-11-02"],
            "２０２６-11-02",
        ):
            self.assertIsNone(parse_date(value), repr(value))

    def test_a_currency_code_is_three_letters(self):
        self.assertEqual(clean_currency_code("USD"), "USD")
        self.assertEqual(clean_currency_code(" gbp "), "GBP")
        for value in (None, "", "US", "USDX", "U$D", 840, "' OR 1=1 --"):
            self.assertIsNone(clean_currency_code(value), repr(value))

    def test_status_and_duplicate_flag_whatever_their_type(self):
        self.assertFalse(is_pending(transaction()))
        self.assertFalse(is_pending(transaction(status=None)))
        self.assertFalse(is_pending({"id": "1"}))
        self.assertTrue(is_pending(transaction(status="pending")))
        self.assertFalse(is_pending("not a dict"))
        self.assertFalse(is_marked_duplicate(transaction()))
        self.assertTrue(is_marked_duplicate(transaction(duplicated=True)))
        self.assertTrue(is_marked_duplicate(transaction(duplicated="true")))
        self.assertFalse(is_marked_duplicate(transaction(duplicated="false")))
        self.assertFalse(is_marked_duplicate(transaction(duplicated=None)))
        self.assertFalse(is_marked_duplicate(None))


class TestCleanTransaction(unittest.TestCase):
    def test_a_good_transaction_keeps_its_values(self):
        clean = clean_transaction(transaction())
        self.assertEqual(
            (clean["id"], clean["made_on"], clean["amount"], clean["description"]),
            ("1234567", "2026-11-02", -12.5, "Proximus factuur +++123/4567/89012+++"),
        )
        self.assertEqual(clean["extra"]["payee"], "Proximus NV")
        self.assertEqual(clean["extra"]["payee_information"], "BE68539007547034")
        self.assertEqual(clean["extra"]["payer"], "")
        self.assertIsNone(clean["extra"]["original_amount"])
        self.assertIsNone(clean["extra"]["original_currency_code"])

    def test_every_text_of_a_poisoned_transaction_comes_out_clean(self):
        clean = clean_transaction(
            transaction(
                id=4242,
                amount="125.50",
                description="Huur\x00 november",
                extra={
                    "payer": 5,
                    "payee": None,
                    "payer_information": {"iban": "BE68539007547034"},
                    "account_number": "BE68\x00539007547034",
                    "information": ["+++123/4567/89012+++"],
                    "original_amount": "not a number",
                    "original_currency_code": "usd",
                },
            )
        )
        self.assertEqual(clean["id"], "4242")
        self.assertEqual(clean["amount"], 125.5)
        self.assertEqual(clean["description"], "Huur november")
        extra = clean["extra"]
        self.assertEqual(extra["payer"], "5")
        self.assertEqual(extra["payee"], "")
        self.assertEqual(extra["payer_information"], "")
        self.assertEqual(extra["account_number"], "BE68539007547034")
        self.assertEqual(extra["information"], "")
        self.assertIsNone(extra["original_amount"])
        self.assertEqual(extra["original_currency_code"], "USD")
        self.assertTrue(
            all(
                isinstance(value, str) and "\x00" not in value
                for value in [
                    clean["description"],
                    *(extra[key] for key in extra if key != "original_amount"),
                ]
            )
        )

    def test_an_extra_that_is_no_object_gives_empty_texts(self):
        for extra in (None, "payer: x", [1, 2], 7):
            clean = clean_transaction(transaction(extra=extra))
            self.assertEqual(clean["extra"]["payee"], "")
            self.assertIsNone(clean["extra"]["original_amount"])

    def test_names_and_texts_are_cut_at_their_limits(self):
        clean = clean_transaction(transaction(description="d" * 5000, extra={"payee": "p" * 5000}))
        self.assertEqual(len(clean["description"]), TEXT_LIMIT)
        self.assertEqual(len(clean["extra"]["payee"]), NAME_LIMIT)

    def test_no_id_date_or_amount_makes_it_invalid_with_the_first_reason(self):
        cases = [
            ("not a transaction", NOT_A_TRANSACTION),
            (None, NOT_A_TRANSACTION),
            (transaction(id=None), NO_ID),
            (transaction(id="12\x003"), NO_ID),
            (transaction(made_on="not a date"), NO_DATE),
            (transaction(made_on=None, amount="x"), NO_DATE),
            (transaction(amount="abc"), NO_AMOUNT),
            (transaction(amount=None), NO_AMOUNT),
        ]
        for item, reason in cases:
            with self.assertRaises(InvalidTransaction, msg=repr(item)) as caught:
                clean_transaction(item)
            self.assertEqual(caught.exception.reason, reason, repr(item))

    def test_an_invalid_transaction_says_its_id_and_date_as_received(self):
        with self.assertRaises(InvalidTransaction) as caught:
            clean_transaction(transaction(id="777", made_on="not a\x00 date"))
        invalid = caught.exception
        self.assertEqual((invalid.transaction_id, invalid.shown_id), ("777", "777"))
        self.assertEqual(invalid.shown_date, "not a date")
        with self.assertRaises(InvalidTransaction) as caught:
            clean_transaction({"made_on": 20261102})
        invalid = caught.exception
        self.assertEqual((invalid.transaction_id, invalid.shown_id), (None, "?"))
        self.assertEqual(invalid.shown_date, "20261102")
        self.assertIn("20261102", str(invalid))


OWN_IBAN = "BE73 7350 1234 5660"


def clean(**fields):
    return clean_transaction(transaction(**fields))


class TestLineValues(unittest.TestCase):
    def test_a_payment_out_becomes_a_line_with_the_payee_and_its_iban(self):
        self.assertEqual(
            line_values(clean(), own_iban=OWN_IBAN),
            {
                "date": "2026-11-02",
                "amount": -12.5,
                "payment_ref": "Proximus factuur +++123/4567/89012+++",
                "partner_name": "Proximus NV",
                "account_number": "BE68539007547034",
                "saltedge_transaction_id": "1234567",
                "transaction_details": {
                    "id": "1234567",
                    "made_on": "2026-11-02",
                    "amount": -12.5,
                    "currency_code": "EUR",
                    "description": "Proximus factuur +++123/4567/89012+++",
                    "status": "posted",
                    "extra": {"payee": "Proximus NV", "payee_information": "BE68539007547034"},
                },
            },
        )

    def test_money_in_comes_from_the_payer(self):
        item = clean(
            amount="250.00",
            extra={
                "payer": "Klant BV",
                "payer_information": "be71 0961 2345 6769",
                "payee": "Ons Bedrijf",
                "payee_information": "BE68539007547034",
            },
        )
        values = line_values(item, own_iban=OWN_IBAN)
        self.assertEqual(values["amount"], 250.0)
        self.assertEqual(values["partner_name"], "Klant BV")
        self.assertEqual(values["account_number"], "BE71096123456769")

    def test_no_counterparty_name_gives_no_partner_name(self):
        self.assertIs(line_values(clean(extra={}))["partner_name"], False)


class TestPaymentRef(unittest.TestCase):
    def test_the_description_is_kept_as_the_bank_wrote_it(self):
        self.assertEqual(payment_ref(clean()), "Proximus factuur +++123/4567/89012+++")

    def test_a_structured_communication_only_in_the_information_is_added_once(self):
        item = clean(
            description="Overschrijving",
            extra={"information": "+++090/9337/55493+++"},
        )
        self.assertEqual(payment_ref(item), "Overschrijving +++090/9337/55493+++")
        already = clean(
            description="Factuur +++090/9337/55493+++",
            extra={"information": "+++090/9337/55493+++"},
        )
        self.assertEqual(payment_ref(already), "Factuur +++090/9337/55493+++")

    def test_free_information_is_not_added_and_an_empty_line_gets_a_slash(self):
        self.assertEqual(
            payment_ref(clean(description="Huur", extra={"information": "november"})), "Huur"
        )
        self.assertEqual(
            payment_ref(clean(description="", extra={"information": "november"})), "november"
        )
        self.assertEqual(payment_ref(clean(description=None, extra={})), "/")


class TestCounterpartyIban(unittest.TestCase):
    def test_written_with_spaces_or_in_lower_case_it_is_normalized(self):
        self.assertEqual(normalize_iban(" be68 5390 0754 7034 "), "BE68539007547034")
        self.assertIs(normalize_iban(""), False)
        self.assertIs(normalize_iban(None), False)
        item = clean(extra={"payee_information": "be68 5390 0754 7034"})
        self.assertEqual(counterparty_iban(item), "BE68539007547034")

    def test_the_account_number_is_used_when_the_information_is_no_iban(self):
        item = clean(
            extra={"payee_information": "Proximus NV Brussel", "account_number": "BE68539007547034"}
        )
        self.assertEqual(counterparty_iban(item), "BE68539007547034")

    def test_our_own_iban_and_what_is_no_iban_are_never_the_counterparty(self):
        own = clean(extra={"payee_information": "BE73735012345660"})
        self.assertIs(counterparty_iban(own, own_iban=OWN_IBAN), False)
        for text in ("12345", "Proximus", "BE68-5390", ""):
            item = clean(extra={"payee_information": text})
            self.assertIs(counterparty_iban(item), False, text)


class TestForeignAmount(unittest.TestCase):
    def test_an_original_amount_in_another_currency_is_kept_with_the_lines_sign(self):
        item = clean(amount=-90.0, extra={"original_amount": 100, "original_currency_code": "usd"})
        self.assertEqual(foreign_amount(item, "EUR"), ("USD", -100.0))
        refund = clean(amount=45.0, extra={"original_amount": -50, "original_currency_code": "USD"})
        self.assertEqual(foreign_amount(refund, "EUR"), ("USD", 50.0))

    def test_none_in_the_journals_currency_or_without_an_amount(self):
        same = clean(extra={"original_amount": 12.5, "original_currency_code": "EUR"})
        self.assertIsNone(foreign_amount(same, "EUR"))
        self.assertIsNone(foreign_amount(clean(extra={"original_currency_code": "USD"}), "EUR"))
        self.assertIsNone(foreign_amount(clean(extra={"original_amount": 3}), "EUR"))


class TestPageCursor(unittest.TestCase):
    def test_the_largest_number_not_the_last_nor_the_largest_text(self):
        self.assertEqual(page_cursor([{"id": "998"}, {"id": "1001"}, {"id": "999"}]), "1001")

    def test_ids_that_are_no_numbers_give_the_last_one(self):
        self.assertEqual(page_cursor([{"id": "b"}, {"id": "a"}]), "a")

    def test_a_page_without_usable_ids_gives_none(self):
        self.assertIsNone(page_cursor([]))
        self.assertIsNone(page_cursor(["not a transaction", {"id": None}, {"id": "1\x002"}]))
        self.assertEqual(page_cursor(["x", {"id": 17}, {"amount": 1}]), "17")


class TestImportCounts(unittest.TestCase):
    def test_pages_add_up_and_the_opening_line_counts_as_created(self):
        total = ImportCounts(fetched=10, created=8, duplicates=2)
        total.add(ImportCounts(fetched=5, created=3, matched=1, pending=1))
        total.openings = 1
        self.assertEqual(
            total.as_vals(),
            {
                "fetched_count": 15,
                "created_count": 12,
                "duplicate_count": 2,
                "matched_count": 1,
                "pending_count": 1,
                "skipped_count": 0,
                "skipped_note": False,
            },
        )

    def test_every_skip_is_counted_but_only_the_first_notes_are_kept(self):
        counts = ImportCounts()
        for index in range(SKIPPED_NOTE_LINES + 5):
            counts.skip(f"t{index}")
        other = ImportCounts()
        other.skip("later")
        counts.add(other)
        self.assertEqual(counts.skipped, SKIPPED_NOTE_LINES + 6)
        self.assertEqual(len(counts.skipped_notes), SKIPPED_NOTE_LINES)
        self.assertEqual(counts.skipped_notes[:2], ("t0", "t1"))
        self.assertNotIn("later", counts.skipped_notes)

    def test_a_resumed_run_goes_on_from_the_counts_it_holds(self):
        run = SimpleNamespace(
            fetched_count=40,
            created_count=30,
            duplicate_count=5,
            matched_count=3,
            pending_count=2,
            skipped_count=2,
            skipped_note="t1 of 2026-11-02 (no valid amount)\nt2 of ? (no valid date)",
        )
        counts = ImportCounts.of_run(run)
        self.assertEqual(counts.as_vals()["created_count"], 30)
        self.assertEqual(counts.skipped_notes[1], "t2 of ? (no valid date)")
        self.assertEqual(
            {key: getattr(run, key) for key in vars(run)},
            {**counts.as_vals(), "skipped_note": run.skipped_note},
        )


class TestTransactionDetails(unittest.TestCase):
    def test_the_transaction_is_kept_as_received_with_its_whole_extra(self):
        item = transaction(
            category="utilities",
            extra={
                "payee": "Proximus NV",
                "posting_date": "2026-11-03",
                "end_to_end_id": "E2E-2026-0042",
                "account_balance_snapshot": 1520.75,
                "original_amount": 13.1,
                "original_currency_code": "USD",
                "additional": "Factuur 2026/0042",
                "tags": ["a", "b"],
            },
        )
        details = clean_transaction(item)["details"]
        self.assertEqual(details["id"], "1234567")
        self.assertEqual(details["status"], "posted")
        self.assertEqual(details["category"], "utilities")
        self.assertEqual(details["currency_code"], "EUR")
        self.assertEqual(details["extra"], item["extra"])
        self.assertNotIn("account_id", details)
        self.assertEqual(json.loads(json.dumps(details)), details)

    def test_what_postgresql_refuses_in_json_is_cleaned_or_dropped(self):
        item = transaction(
            description="Huur\x00 november",
            extra={
                "information": "caf\ud800e",
                "nan": float("nan"),
                "big": 2**70,
                "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
                "long": ["x"] * 500,
                7: "a key that is no text",
            },
        )
        details = clean_transaction(item)["details"]
        self.assertEqual(details["description"], "Huur november")
        extra = details["extra"]
        self.assertEqual(extra["information"], "caf\ufffde")
        self.assertIsNone(extra["nan"])
        self.assertEqual(extra["big"], str(2**70))
        self.assertEqual(extra["deep"], {"a": {"b": {"c": None}}})
        self.assertEqual(len(extra["long"]), 100)
        self.assertNotIn(7, extra)
        json.dumps(details, allow_nan=False).encode("utf-8")

    def test_a_reference_only_in_additional_reaches_the_label(self):
        item = clean(description="Overschrijving", extra={"additional": "090933755493"})
        self.assertEqual(payment_ref(item), "Overschrijving +++090/9337/55493+++")

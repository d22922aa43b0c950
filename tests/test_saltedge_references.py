"""Payment references found in a bank's texts outside Odoo: the Belgian structured
communication in every form banks write it, the ISO 11649 creditor reference, and the
statement line's payment reference built from both.

Plain ``unittest`` classes collected by pytest: the module has no Odoo import.
"""

import unittest

from ..saltedge_references import (
    REMITTANCE_FIELDS,
    find_creditor_reference,
    find_structured_communication,
    payment_reference,
)

# 0909337554 modulo 97 is 93.
CANONICAL = "+++090/9337/55493+++"
# 1197530766 is 97 × 12345678: remainder 0, check digits 97.
CANONICAL_97 = "+++119/7530/76697+++"
# ISO 11649's own example, and one with letters (check digits computed for it).
CREDITOR = "RF18539007547034"
CREDITOR_LETTERS = "RF67INV2026042"


class TestStructuredCommunicationForms(unittest.TestCase):
    def test_plus_markers_canonical(self):
        self.assertEqual(find_structured_communication("+++090/9337/55493+++"), CANONICAL)

    def test_asterisk_markers(self):
        self.assertEqual(find_structured_communication("***090/9337/55493***"), CANONICAL)

    def test_spaces_around_and_inside_the_markers(self):
        self.assertEqual(find_structured_communication("+++ 090 / 9337 / 55493 +++"), CANONICAL)
        self.assertEqual(find_structured_communication("*** 090/9337/55493 ***"), CANONICAL)

    def test_markers_around_digits_without_slashes(self):
        self.assertEqual(find_structured_communication("+++090933755493+++"), CANONICAL)
        self.assertEqual(find_structured_communication("+++0909 3375 5493+++"), CANONICAL)

    def test_slashes_without_markers(self):
        self.assertEqual(find_structured_communication("090/9337/55493"), CANONICAL)

    def test_slashes_with_spaces_without_markers(self):
        self.assertEqual(find_structured_communication("090 / 9337 / 55493"), CANONICAL)

    def test_twelve_bare_digits(self):
        self.assertEqual(find_structured_communication("090933755493"), CANONICAL)

    def test_digits_grouped_by_four(self):
        self.assertEqual(find_structured_communication("0909 3375 5493"), CANONICAL)

    def test_digits_grouped_three_four_five(self):
        self.assertEqual(find_structured_communication("090 9337 55493"), CANONICAL)

    def test_embedded_in_a_sentence(self):
        self.assertEqual(
            find_structured_communication("Factuur 2026/0042 mededeling 090933755493 dank u"),
            CANONICAL,
        )
        self.assertEqual(
            find_structured_communication("Betaling factuur ***090/9337/55493*** Proximus"),
            CANONICAL,
        )
        self.assertEqual(find_structured_communication("Mededeling:0909 3375 5493."), CANONICAL)


class TestStructuredCommunicationCheckDigits(unittest.TestCase):
    def test_a_remainder_of_zero_means_check_digits_97(self):
        self.assertEqual(find_structured_communication("119753076697"), CANONICAL_97)
        self.assertEqual(find_structured_communication("+++119/7530/76697+++"), CANONICAL_97)

    def test_a_remainder_of_zero_written_as_00_fails(self):
        self.assertIsNone(find_structured_communication("119753076600"))

    def test_failing_check_digits_with_plus_markers(self):
        self.assertIsNone(find_structured_communication("+++090/9337/55494+++"))

    def test_failing_check_digits_with_asterisk_markers(self):
        self.assertIsNone(find_structured_communication("***090/9337/55494***"))

    def test_failing_check_digits_with_spaces_in_the_markers(self):
        self.assertIsNone(find_structured_communication("+++ 090 / 9337 / 55494 +++"))

    def test_failing_check_digits_with_slashes(self):
        self.assertIsNone(find_structured_communication("090/9337/55494"))

    def test_failing_check_digits_bare(self):
        self.assertIsNone(find_structured_communication("090933755494"))

    def test_failing_check_digits_grouped(self):
        self.assertIsNone(find_structured_communication("0909 3375 5494"))
        self.assertIsNone(find_structured_communication("090 9337 55494"))

    def test_failing_check_digits_embedded(self):
        self.assertIsNone(find_structured_communication("Factuur mededeling 123456789012 dank u"))

    def test_the_search_goes_on_past_a_failing_one_in_the_same_text(self):
        self.assertEqual(
            find_structured_communication("+++123/4567/89012+++ of 090933755493"), CANONICAL
        )

    def test_the_search_goes_on_past_a_failing_one_to_the_next_text(self):
        self.assertEqual(
            find_structured_communication("+++123/4567/89012+++", "090/9337/55493"), CANONICAL
        )


class TestStructuredCommunicationWhereAndWhich(unittest.TestCase):
    def test_found_in_a_later_text_only(self):
        self.assertEqual(find_structured_communication("Huur november", "", CANONICAL), CANONICAL)

    def test_the_first_valid_one_wins_within_a_text(self):
        self.assertEqual(
            find_structured_communication("119753076697 en +++090/9337/55493+++"), CANONICAL_97
        )

    def test_the_first_valid_one_wins_across_texts(self):
        self.assertEqual(find_structured_communication(CANONICAL, CANONICAL_97), CANONICAL)
        self.assertEqual(find_structured_communication(CANONICAL_97, CANONICAL), CANONICAL_97)

    def test_nothing_empty_or_not_text_gives_none(self):
        self.assertIsNone(find_structured_communication())
        self.assertIsNone(find_structured_communication("", None, 90933755493))
        self.assertIsNone(find_structured_communication("Huur november"))

    def test_the_digits_of_an_iban_are_not_taken(self):
        # The 12 digits at its end would be a valid structured communication on their own.
        self.assertIsNone(find_structured_communication("BE68090933755493"))
        self.assertIsNone(find_structured_communication("IBAN BE68 0909 3375 5493"))

    def test_twelve_digits_inside_a_longer_run_are_not_taken(self):
        self.assertIsNone(find_structured_communication("1090933755493"))
        self.assertIsNone(find_structured_communication("0909337554931"))
        self.assertIsNone(find_structured_communication("1234567890123"))

    def test_twelve_digits_glued_to_letters_are_not_taken(self):
        self.assertIsNone(find_structured_communication("NWBK090933755493"))

    def test_grouped_digits_continuing_a_group_are_not_taken(self):
        self.assertIsNone(find_structured_communication("12 0909 3375 5493"))
        self.assertIsNone(find_structured_communication("0909 3375 5493 12"))
        self.assertIsNone(find_structured_communication("2026 090 9337 55493"))

    def test_slashes_continuing_a_longer_number_are_not_taken(self):
        self.assertIsNone(find_structured_communication("1090/9337/55493"))
        self.assertIsNone(find_structured_communication("090/9337/554931"))


class TestCreditorReference(unittest.TestCase):
    def test_electronic_form(self):
        self.assertEqual(find_creditor_reference(CREDITOR), CREDITOR)

    def test_printed_in_groups_of_four(self):
        self.assertEqual(find_creditor_reference("RF18 5390 0754 7034"), CREDITOR)

    def test_lower_case_comes_back_in_upper_case(self):
        self.assertEqual(find_creditor_reference("rf18 5390 0754 7034"), CREDITOR)
        self.assertEqual(find_creditor_reference("rf67inv2026042"), CREDITOR_LETTERS)

    def test_with_letters(self):
        self.assertEqual(find_creditor_reference("RF67 INV2 0260 42"), CREDITOR_LETTERS)

    def test_embedded_in_a_sentence_with_a_four_letter_word_after_it(self):
        self.assertEqual(find_creditor_reference("Factuur RF18 5390 0754 7034 betaald"), CREDITOR)
        self.assertEqual(find_creditor_reference("Ref: RF18539007547034, merci"), CREDITOR)

    def test_one_long_group_after_rf_and_the_check_digits(self):
        self.assertEqual(find_creditor_reference("RF18 539007547034"), CREDITOR)

    def test_a_word_after_the_groups_is_not_taken_even_when_it_would_pass(self):
        # "RF18539007547034DANKU" passes the check too: a lower-case word ends the reference.
        self.assertEqual(find_creditor_reference("RF18 5390 0754 7034 dank u"), CREDITOR)

    def test_failing_check_digits(self):
        self.assertIsNone(find_creditor_reference("RF19539007547034"))
        self.assertIsNone(find_creditor_reference("RF18 5390 0754 7035"))

    def test_check_digits_the_algorithm_never_gives_are_refused(self):
        # 99, 00 and 01 pass modulo 97 like 02, 97 and 98, but ISO 11649 gives 02..98 only.
        self.assertEqual(find_creditor_reference("RF0236"), "RF0236")
        self.assertIsNone(find_creditor_reference("RF9936"))
        self.assertEqual(find_creditor_reference("RF9772"), "RF9772")
        self.assertIsNone(find_creditor_reference("RF0072"))
        self.assertEqual(find_creditor_reference("RF9854"), "RF9854")
        self.assertIsNone(find_creditor_reference("RF0154"))

    def test_more_than_21_characters_after_the_check_digits_is_none(self):
        self.assertIsNone(find_creditor_reference("RF18" + "0" * 22 + "539007547034"))

    def test_glued_to_a_word_is_not_taken(self):
        self.assertIsNone(find_creditor_reference("SURF18539007547034"))

    def test_a_failing_one_does_not_hide_the_next_one(self):
        self.assertEqual(find_creditor_reference("RF12 foo RF18 5390 0754 7034"), CREDITOR)
        self.assertEqual(find_creditor_reference("RF19539007547034", CREDITOR), CREDITOR)

    def test_the_first_valid_one_wins(self):
        self.assertEqual(find_creditor_reference(CREDITOR_LETTERS, CREDITOR), CREDITOR_LETTERS)

    def test_nothing_gives_none(self):
        self.assertIsNone(find_creditor_reference())
        self.assertIsNone(find_creditor_reference("", None, "Huur november"))


class TestPaymentReference(unittest.TestCase):
    def test_a_canonical_one_in_the_description_is_not_added_again(self):
        self.assertEqual(
            payment_reference("Proximus factuur +++090/9337/55493+++", [CANONICAL]),
            "Proximus factuur +++090/9337/55493+++",
        )

    def test_the_bank_s_own_writing_is_kept_and_the_canonical_one_added(self):
        self.assertEqual(
            payment_reference("Proximus ***090/9337/55493***", []),
            "Proximus ***090/9337/55493*** +++090/9337/55493+++",
        )
        self.assertEqual(
            payment_reference("Proximus mededeling 0909 3375 5493", ["0909 3375 5493"]),
            "Proximus mededeling 0909 3375 5493 +++090/9337/55493+++",
        )

    def test_one_only_in_the_remittance_texts_is_added_in_canonical_form(self):
        self.assertEqual(
            payment_reference("Overschrijving", ["", "Factuur 42 mededeling 090933755493"]),
            "Overschrijving +++090/9337/55493+++",
        )

    def test_failing_check_digits_in_the_description_stay_as_written(self):
        self.assertEqual(
            payment_reference("Proximus factuur +++123/4567/89012+++", []),
            "Proximus factuur +++123/4567/89012+++",
        )
        self.assertEqual(payment_reference("Factuur 090933755494", []), "Factuur 090933755494")

    def test_failing_check_digits_only_in_the_remittance_texts_are_not_added(self):
        self.assertEqual(
            payment_reference("Overschrijving", ["+++123/4567/89012+++"]), "Overschrijving"
        )

    def test_a_valid_one_in_the_remittance_texts_beside_a_failing_one_in_the_description(self):
        self.assertEqual(
            payment_reference("Factuur +++123/4567/89012+++", ["090/9337/55493"]),
            "Factuur +++123/4567/89012+++ +++090/9337/55493+++",
        )

    def test_the_first_valid_one_wins(self):
        self.assertEqual(
            payment_reference("Huur", ["090933755493", "119753076697"]), f"Huur {CANONICAL}"
        )
        self.assertEqual(
            payment_reference(f"Huur {CANONICAL_97}", ["090933755493"]), f"Huur {CANONICAL_97}"
        )

    def test_a_creditor_reference_only_in_the_remittance_texts_is_added(self):
        self.assertEqual(
            payment_reference("Overschrijving", ["Factuur rf18 5390 0754 7034"]),
            f"Overschrijving {CREDITOR}",
        )

    def test_a_creditor_reference_in_the_description_stays_as_written(self):
        self.assertEqual(
            payment_reference("Factuur RF18 5390 0754 7034", [CREDITOR]),
            "Factuur RF18 5390 0754 7034",
        )

    def test_a_failing_creditor_reference_is_not_added(self):
        self.assertEqual(
            payment_reference("Overschrijving", ["RF19539007547034"]), "Overschrijving"
        )

    def test_both_references_are_added(self):
        self.assertEqual(
            payment_reference("Overschrijving", ["090933755493", CREDITOR]),
            f"Overschrijving {CANONICAL} {CREDITOR}",
        )

    def test_an_empty_description_takes_the_first_non_empty_remittance_text(self):
        self.assertEqual(
            payment_reference("", ["", "Factuur 42 090933755493", "november"]),
            f"Factuur 42 090933755493 {CANONICAL}",
        )
        self.assertEqual(payment_reference("  ", [CANONICAL]), CANONICAL)
        self.assertEqual(payment_reference(None, ["november"]), "november")

    def test_an_empty_description_and_a_reference_in_a_later_text(self):
        self.assertEqual(
            payment_reference("", ["Factuur 42", "+++090/9337/55493+++"]),
            f"Factuur 42 {CANONICAL}",
        )

    def test_remittance_text_without_a_reference_is_not_added(self):
        self.assertEqual(payment_reference("Huur", ["november"]), "Huur")

    def test_nothing_at_all_is_a_slash(self):
        self.assertEqual(payment_reference("", []), "/")
        self.assertEqual(payment_reference("", ["", "  "]), "/")
        self.assertEqual(payment_reference(None, ()), "/")

    def test_the_remittance_texts_may_be_a_generator(self):
        texts = (text for text in ["Factuur", "090933755493"])
        self.assertEqual(payment_reference("Huur", texts), f"Huur {CANONICAL}")


class TestRemittanceFields(unittest.TestCase):
    def test_the_documented_keys_in_reading_order(self):
        self.assertEqual(REMITTANCE_FIELDS, ("information", "additional"))

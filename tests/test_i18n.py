import os

import polib

from odoo.tests import TransactionCase
from odoo.tools.translate import TranslationModuleReader

MODULE = "account_bank_connection"
I18N = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "i18n")


class TestTranslations(TransactionCase):
    def test_every_term_of_the_module_is_translated_in_dutch_and_french(self):
        """The terms come from the code and data as installed, not from the .pot, so a new
        string fails here until `make i18n` is run and it is translated."""
        reader = TranslationModuleReader(self.env.cr, modules=[MODULE])
        terms = {entry[4] for entry in reader if entry[0] == MODULE and entry[4]}
        self.assertGreater(len(terms), 100)
        for lang in ("nl", "fr"):
            po = polib.pofile(os.path.join(I18N, f"{lang}.po"))
            translated = {
                entry.msgid
                for entry in po
                if entry.msgstr and not entry.obsolete and "fuzzy" not in entry.flags
            }
            missing = sorted(terms - translated)
            self.assertFalse(
                missing,
                f"{len(missing)} terms untranslated in i18n/{lang}.po (run make i18n and "
                f"translate them): {missing[:10]}",
            )

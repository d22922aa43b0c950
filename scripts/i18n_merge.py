"""Bring .po files up to date with a .pot: keep translations, add new terms, drop gone ones.

    python scripts/i18n_merge.py TEMPLATE.pot LANG.po [LANG.po ...]

Prints, per language, how many terms still need a translation.
"""

import os
import sys

import polib

LANGUAGES = {"nl": "Dutch", "fr": "French"}


def merge(template_path, po_path):
    template = polib.pofile(template_path)
    lang = os.path.splitext(os.path.basename(po_path))[0]
    old = polib.pofile(po_path) if os.path.exists(po_path) else polib.POFile()
    known = {(entry.msgctxt, entry.msgid): entry for entry in old}
    merged = polib.POFile(wrapwidth=78)
    merged.metadata = dict(template.metadata)
    merged.metadata.update(
        {
            "Language": lang,
            "Language-Team": LANGUAGES.get(lang, lang),
            "Plural-Forms": "nplurals=2; plural=(n != 1);"
            if lang != "fr"
            else "nplurals=2; plural=(n > 1);",
        }
    )
    missing = 0
    for entry in template:
        previous = known.get((entry.msgctxt, entry.msgid))
        entry.msgstr = previous.msgstr if previous else ""
        entry.flags = [flag for flag in entry.flags if flag != "fuzzy"]
        if not entry.msgstr:
            missing += 1
        merged.append(entry)
    merged.save(po_path)
    print(f"{po_path}: {len(template)} terms, {missing} to translate")
    return missing


def main():
    template, *po_files = sys.argv[1:]
    for po_path in po_files:
        merge(template, po_path)


if __name__ == "__main__":
    main()

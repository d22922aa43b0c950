"""make test's last step: no log of the run may hold a secret the tests used.

Usage: scan_secrets.py SECRETS_FILE LOG...

SECRETS_FILE has one ``<kind>\\t<value>`` line per secret (the Salt Edge Secret, the lines
of each private key, every Signature header), written by the tests and the sandbox. Every
log is also searched for "PRIVATE KEY", the header of a PEM. A find is reported as the
log's name and the kind of secret, never the secret itself. Exit status 1 on a find.
"""

import collections
import os
import re
import sys

# Base64 runs long enough to be a signature or a line of a key.
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
# Key lines and signatures are looked for by their first characters, found whole or cut
# short: thousands of them, so each base64 run of the log is looked up instead.
PREFIX = 40
LOOKED_UP = ("private key", "signature")
# Shorter values (the "Zw==" that ends a key) would be found in any log by chance.
MIN_PLAIN = 12


def read_secrets(path):
    by_kind = collections.defaultdict(set)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            kind, _tab, value = line.rstrip("\n").partition("\t")
            if value:
                by_kind[kind].add(value)
    return by_kind


def kinds_found(text, secrets):
    """The kinds of secret ``text`` holds."""
    found = set()
    if "PRIVATE KEY" in text:
        found.add("a PEM private key header")
    by_prefix = {}
    for kind, values in secrets.items():
        for value in values:
            if kind in LOOKED_UP and len(value) >= PREFIX:
                by_prefix[value[:PREFIX]] = kind
            elif len(value) >= MIN_PLAIN and value in text:
                # Few and short (the Secret, a key's last line): a plain search each.
                found.add(kind)
    for match in BASE64_RUN.finditer(text):
        run = match.group()
        # A run may start one character early: the "n" of an escaped newline.
        kind = by_prefix.get(run[:PREFIX]) or by_prefix.get(run[1 : PREFIX + 1])
        if kind:
            found.add(kind)
    return found


def main(secrets_path, *logs):
    secrets = read_secrets(secrets_path)
    counts = ", ".join(f"{len(values)} {kind}" for kind, values in sorted(secrets.items()))
    if not secrets:
        # A narrowed run that started no sandbox: only the PEM header is looked for.
        counts = "no recorded secret"
    failed = 0
    for log in logs:
        if not os.path.exists(log):
            continue
        with open(log, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        for kind in sorted(kinds_found(text, secrets)):
            print(f"secret scan: {os.path.basename(log)} contains a {kind}")
            failed = 1
    if not failed:
        names = ", ".join(os.path.basename(log) for log in logs if os.path.exists(log))
        print(f"secret scan: no secret in {names} (looked for {counts})")
    return failed


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

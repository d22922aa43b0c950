"""Tells the test harness every secret the sandbox knows or sees, so it can check that none
of them ends up in a log.

When ``SandboxConfig.secrets_file`` is set (by default from ``ABC_SECRETS_FILE``), each
secret is appended to that file as one ``<kind>\\t<value>`` line: the app secret, each
line of the sandbox's signing key, and every ``Signature`` header received or sent. The
file is for the log scan of ``make test`` only; nothing reads it back here.
"""

import threading

_lock = threading.Lock()


def pem_body_lines(pem):
    """The base64 lines of a PEM (str or bytes), without its BEGIN/END lines."""
    if isinstance(pem, bytes):
        pem = pem.decode("ascii")
    return [line.strip() for line in pem.splitlines() if line.strip() and "-----" not in line]


def record(path, kind, *values):
    """Append ``values`` (those that are not empty) of ``kind`` to ``path``."""
    if not path:
        return
    lines = [f"{kind}\t{value}\n" for value in values if value]
    if lines:
        with _lock, open(path, "a", encoding="utf-8") as handle:
            handle.writelines(lines)

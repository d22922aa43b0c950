"""Small pure helpers of the models, usable without a database."""

from ..odoo_series import thread_runs_a_test


def commits_allowed():
    """Whether a scheduled action may commit its progress: not in a test's own thread,
    where a commit would break the test's transaction."""
    return not thread_runs_a_test()


def parse_reminder_days(text):
    """``"15, 3, 1"`` as ``(15, 3, 1)``: whole days from 1 to 366, most days first, each
    once. Raises ValueError on anything else, an empty text included."""
    days = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        value = int(part)
        if not 0 < value <= 366:
            raise ValueError(f"{value} is not between 1 and 366")
        days.add(value)
    if not days:
        raise ValueError("no days")
    return tuple(sorted(days, reverse=True))


def clean_text(value, limit):
    """``value`` as text PostgreSQL can store, at most ``limit`` characters: without NUL
    characters, and with lone surrogates (which JSON allows) replaced."""
    text = str(value).replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")[:limit]


def callback_id(value):
    """A Salt Edge id as a callback gives it (a string or a number) as text; None for
    anything else, for an empty or over-long one, or one with what text cannot hold."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    if not text or len(text) > 64 or clean_text(text, 64) != text:
        return None
    return text


def fields_given(records, vals, creating=False):
    """The names of the fields ``vals`` writes on ``records``' model; on a create also
    those the context's ``default_<field>`` keys fill in (defaults are added after the
    model's own ``create`` has seen ``vals``)."""
    names = set(vals)
    if creating:
        names.update(
            key[len("default_") :]
            for key in records.env.context
            if isinstance(key, str) and key.startswith("default_")
        )
    return names


def changed_values(current, vals):
    """The values of ``vals`` that differ from what ``current`` holds: a record (compared
    as the ORM writes them: an id for a many2one, False for empty) or a row read by SQL (a
    dict, compared as read). None counts as empty."""
    fields = getattr(current, "_fields", None)
    changed = {}
    for name, value in vals.items():
        if fields is not None:
            held = fields[name].convert_to_write(current[name], current)
        else:
            held = current[name]
        if (False if held is None else held) != (False if value is None else value):
            changed[name] = value
    return changed


def write_changed(record, vals):
    """Write on ``record`` only the values that change, and nothing when none does: a row
    every run or callback reads again is not rewritten (no write date, no tracking, no
    concurrent writer met for nothing). Returns the values written."""
    record.ensure_one()
    changed = changed_values(record, vals)
    if changed:
        record.write(changed)
    return changed

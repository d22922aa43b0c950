"""All of the sandbox's state in one JSON-serialisable dict, behind one lock.

Kept in memory, and written atomically to ``state_path`` after every change when one is
configured, so a restart loses nothing. The sandbox clock is real time plus an offset that
the control API moves; everything Salt Edge would date (consents, refresh limits, connect
sessions, transactions) uses it, while request signatures use real time, as the client's
clock does.
"""

import datetime
import json
import logging
import os
import tempfile
import threading
import time

_logger = logging.getLogger(__name__)

COLLECTIONS = (
    "customers",
    "connections",
    "consents",
    "attempts",
    "accounts",
    "transactions",
    "sessions",
)
FIRST_ID = 100000000001  # 12 digits: ids sort the same as strings and as numbers


def iso(moment):
    """ISO 8601 UTC with a Z, seconds precision, as Salt Edge writes datetimes."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value):
    """An aware datetime from an ISO 8601 string (a trailing Z or an offset, or a date)."""
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


class State:
    """The sandbox's data, its clock and its id counter."""

    def __init__(self, path=None):
        self.path = path
        self.lock = threading.RLock()
        # Bumped by reset(): work started before (a fetch under way) sees it and stops.
        self.generation = 0
        self.data = self._empty()
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
            self.data.update(loaded)
            _logger.info("sandbox state loaded from %s", path)

    @staticmethod
    def _empty():
        data = {name: {} for name in COLLECTIONS}
        data.update(next_id=FIRST_ID, clock_offset=0.0, clock_frozen_at=None, faults=[])
        return data

    def reset(self):
        """Forget everything: customers, connections, clock offset, faults."""
        with self.lock:
            self.generation += 1
            self.data = self._empty()
            self.save()

    def save(self):
        """Write the state file (atomically), when there is one."""
        if not self.path:
            return
        with self.lock:
            directory = os.path.dirname(os.path.abspath(self.path))
            fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(self.data, handle, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    def __getitem__(self, collection):
        return self.data[collection]

    def new_id(self):
        """The next id: a string of digits, larger than every id given before."""
        with self.lock:
            value = self.data["next_id"]
            self.data["next_id"] = value + 1
            return str(value)

    # --- clock -----------------------------------------------------------------------
    def now(self):
        """The sandbox's current time (aware, UTC)."""
        frozen = self.data.get("clock_frozen_at")
        moment = frozen if frozen is not None else time.time() + self.data["clock_offset"]
        return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)

    def today(self):
        """The sandbox's current date (UTC)."""
        return self.now().date()

    def now_iso(self):
        return iso(self.now())

    def advance(self, seconds):
        """Move the sandbox clock forward (or back, with a negative number)."""
        with self.lock:
            if self.data.get("clock_frozen_at") is not None:
                self.data["clock_frozen_at"] += float(seconds)
            else:
                self.data["clock_offset"] += float(seconds)
            self.save()

    def set_now(self, moment=None, freeze=None):
        """Make the clock show ``moment`` (default: its own now); ``freeze`` stops or starts it.

        A frozen clock only moves when told to, which makes tests exact to the second;
        ``freeze=None`` keeps the clock as frozen or running as it was.
        """
        with self.lock:
            moment = moment or self.now()
            if freeze is None:
                freeze = self.data.get("clock_frozen_at") is not None
            self.data["clock_frozen_at"] = moment.timestamp() if freeze else None
            self.data["clock_offset"] = moment.timestamp() - time.time()
            self.save()

"""The fetch that follows a connect, reconnect or refresh, stage by stage, in real time.

Salt Edge fetches asynchronously: the connect (or refresh) answers at once, the attempt
records ``start`` and ``connect``, and the rest comes later, each stage with a ``notify``
callback: ``fetch_accounts``, ``fetch_recent``, ``fetch_full``, then ``finish`` and one to
three ``success`` callbacks. ``Fetches`` runs those later stages in a background thread,
spread over ``fetch_seconds`` of real time (not the sandbox clock, which tests freeze),
the first one a quarter of it after the start; with ``fetch_seconds=0`` they run at once,
inside the request. A reset of the sandbox (the state's ``generation``) or ``stop()``
makes a running fetch stop without touching the state again.
"""

import logging
import threading
import time

_logger = logging.getLogger(__name__)

STEPS_PER_FETCH = 4  # fetch_accounts, fetch_recent, fetch_full, finish


class FetchAbandoned(Exception):
    """A step found its connection or attempt gone: the fetch stops quietly."""


class Fetches:
    """The fetches under way, one per connection at most."""

    def __init__(self, state, config):
        self.state = state
        self.config = config
        self._condition = threading.Condition()
        self._running = {}  # connection id -> entry
        self._stopped = threading.Event()

    # --- what tests and the API see --------------------------------------------------
    def _current(self):
        generation = self.state.generation
        return [e for e in self._running.values() if e["generation"] == generation]

    def running(self, connection_id):
        """The fetch under way for ``connection_id`` (a dict), or None."""
        with self._condition:
            entry = self._running.get(str(connection_id))
            if entry is None or entry["generation"] != self.state.generation:
                return None
            return dict(entry)

    def list(self):
        """``[{connection_id, attempt_id, stage}]`` of the fetches under way."""
        with self._condition:
            return [
                {key: entry[key] for key in ("connection_id", "attempt_id", "stage")}
                for entry in sorted(self._current(), key=lambda e: int(e["connection_id"]))
            ]

    def wait(self, timeout):
        """Block until no fetch runs, at most ``timeout`` seconds; the number still running."""
        with self._condition:
            self._condition.wait_for(lambda: not self._current(), timeout)
            return len(self._current())

    # --- running ---------------------------------------------------------------------
    def begin(self, connection_id, attempt_id, stage, steps):
        """Run ``steps`` (``[(stage name, callable)]``) now or in a background thread.

        Called under the state lock, once the attempt has its first stages (``stage`` is
        the last of them). Each step runs under the state lock and the state is saved
        after it; a step that raises ``FetchAbandoned`` ends the fetch.
        """
        if self.config.fetch_seconds <= 0:
            for _name, step in steps:
                try:
                    step()
                except FetchAbandoned:
                    break
            return
        entry = {
            "connection_id": str(connection_id),
            "attempt_id": str(attempt_id),
            "stage": stage,
            "generation": self.state.generation,
            "started": time.monotonic(),
        }
        with self._condition:
            self._running[entry["connection_id"]] = entry
        thread = threading.Thread(
            target=self._run, args=(entry, steps), daemon=True, name="sandbox-fetch"
        )
        thread.start()

    def _run(self, entry, steps):
        try:
            for index, (name, step) in enumerate(steps, 1):
                due = entry["started"] + self.config.fetch_seconds * index / STEPS_PER_FETCH
                if self._stopped.wait(max(0.0, due - time.monotonic())):
                    return
                with self.state.lock:
                    if self._superseded(entry):
                        return
                    try:
                        step()
                    except FetchAbandoned:
                        return
                    finally:
                        self.state.save()
                    with self._condition:
                        entry["stage"] = name
        except Exception:
            _logger.exception("sandbox fetch of connection %s failed", entry["connection_id"])
        finally:
            with self._condition:
                if self._running.get(entry["connection_id"]) is entry:
                    del self._running[entry["connection_id"]]
                self._condition.notify_all()

    def _superseded(self, entry):
        """Whether the fetch must stop: server stopped, state reset, or a newer fetch of
        the same connection (a reconnect finished meanwhile) took its place."""
        with self._condition:
            return (
                self._stopped.is_set()
                or self.state.generation != entry["generation"]
                or self._running.get(entry["connection_id"]) is not entry
            )

    def forget_old(self):
        """After a reset: the fetches of the old state no longer count (they stop soon)."""
        with self._condition:
            generation = self.state.generation
            for key in [k for k, e in self._running.items() if e["generation"] != generation]:
                del self._running[key]
            self._condition.notify_all()

    def stop(self):
        """The server stops: every fetch stops at its next step."""
        self._stopped.set()
        with self._condition:
            self._condition.notify_all()

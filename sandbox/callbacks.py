"""Signed callbacks to the client's callback URL, sent from background threads.

Like Salt Edge: POST, ``Content-Type: application/json``, header ``Signature`` = base64
RSA-SHA256 over ``"<callback URL>|<raw body>"`` with the sandbox's private key. A callback
that cannot be delivered is logged and forgotten; it never disturbs the API.
"""

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request

from . import signing, witness

_logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class CallbackSender:
    """Sends callbacks in background threads, those of one connection in order.

    Each connection has its own queue and worker thread, so a fetch's stages arrive in the
    order they happened while a slow receiver of one connection delays no other. A callback
    queued before a reset of the sandbox (``generation`` changed) is dropped.
    """

    def __init__(self, config, private_key, clock, generation=None):
        self.config = config
        self.private_key = private_key
        self.clock = clock
        self.generation = generation or (lambda: 0)
        self.sent = collections.deque(maxlen=200)
        self._lock = threading.Lock()
        self._queues = {}
        self._threads = {}

    def url_for(self, kind):
        url = self.config.callback_url
        return url.replace("{kind}", kind) if url and "{kind}" in url else url

    def send(self, callbacks):
        """Queue ``[(kind, data), ...]``; returns at once."""
        if not callbacks or not self.config.callback_url:
            return
        generation = self.generation()
        with self._lock:
            for kind, data in callbacks:
                key = data.get("connection_id")
                self._queues.setdefault(key, collections.deque()).append((generation, kind, data))
                thread = self._threads.get(key)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(
                        target=self._drain, args=(key,), daemon=True, name="sandbox-cb"
                    )
                    self._threads[key] = thread
                    thread.start()

    def wait(self, timeout=10):
        """Wait (at most ``timeout`` seconds) for the callbacks under way (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [t for t in self._threads.values() if t.is_alive()]
            remaining = deadline - time.monotonic()
            if not threads or remaining <= 0:
                return
            threads[0].join(remaining)

    def _drain(self, key):
        while True:
            with self._lock:
                queue = self._queues.get(key)
                if not queue:
                    self._queues.pop(key, None)
                    self._threads.pop(key, None)
                    return
                generation, kind, data = queue.popleft()
            if generation == self.generation():
                self._deliver(kind, data)

    def _deliver(self, kind, data):
        url = self.url_for(kind)
        if not url:
            return
        document = {"data": data, "meta": {"version": "6", "time": self.clock()}}
        body = json.dumps(document, separators=(",", ":")).encode("utf-8")
        signature = signing.sign(self.private_key, signing.callback_message(url, body))
        witness.record(self.config.secrets_file, "signature", signature)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Signature": signature},
        )
        record = {"kind": kind, "url": url, "data": data, "status": None, "error": None}
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                record["status"] = answer.status
        except urllib.error.HTTPError as error:
            record["status"] = error.code
            _logger.warning("callback %s to %s answered %s", kind, url, error.code)
        except (OSError, ValueError) as error:
            record["error"] = type(error).__name__
            _logger.warning("callback %s to %s failed: %s", kind, url, error)
        self.sent.append(record)

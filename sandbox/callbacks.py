"""Signed callbacks to the client's callback URL, sent from a background thread.

Like Salt Edge: POST, ``Content-Type: application/json``, header ``Signature`` = base64
RSA-SHA256 over ``"<callback URL>|<raw body>"`` with the sandbox's private key. A callback
that cannot be delivered is logged and forgotten; it never disturbs the API.
"""

import collections
import json
import logging
import threading
import urllib.error
import urllib.request

from . import signing, witness

_logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class CallbackSender:
    """Sends each batch of callbacks in order, in its own daemon thread."""

    def __init__(self, config, private_key, clock):
        self.config = config
        self.private_key = private_key
        self.clock = clock
        self.sent = collections.deque(maxlen=200)
        self._threads = []

    def url_for(self, kind):
        url = self.config.callback_url
        return url.replace("{kind}", kind) if url and "{kind}" in url else url

    def send(self, callbacks):
        """Queue ``[(kind, data), ...]``; returns at once."""
        if not callbacks or not self.config.callback_url:
            return
        thread = threading.Thread(
            target=self._deliver_all, args=(list(callbacks),), daemon=True, name="sandbox-cb"
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout=10):
        """Wait for the callbacks under way (tests and shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _deliver_all(self, callbacks):
        for kind, data in callbacks:
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

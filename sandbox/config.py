"""The sandbox's settings, from keyword arguments or from ``SANDBOX_*`` environment variables."""

import os
from dataclasses import dataclass


@dataclass
class SandboxConfig:
    """Everything that changes how the sandbox behaves.

    ``client_public_key_pem``: when set, requests are checked against it; every request
    must then be signed unless ``require_signature`` is False (a "test" app that signs
    only sometimes). Without a key, a signed request has its Expires-at checked and its
    signature logged as unverified, since there is nothing to verify it with.
    ``callback_url``: where callbacks go; a ``{kind}`` in it is replaced by success, fail,
    notify or destroy, otherwise every kind is posted to the URL as it is.
    ``secrets_file``: the file that learns every secret of the sandbox, for the log scan
    of the tests (``ABC_SECRETS_FILE`` by default; none when unset).
    ``fetch_seconds``: how long (real time) the fetch after a connect, reconnect or refresh
    takes; its stages are spread over it in a background thread. 0 fetches everything
    inside the request (the callbacks are the same).
    ``success_callbacks``: how many identical ``success`` callbacks end a fetch (1 to 3,
    as Salt Edge announces). ``recent_days``: the days the ``fetch_recent`` stage brings;
    older history comes with ``fetch_full``.
    """

    app_id: str = "sandbox-app-id"
    secret: str = "sandbox-secret"
    client_public_key_pem: bytes = None
    require_signature: bool = None
    callback_url: str = None
    signing_key_pem: bytes = None
    state_path: str = None
    page_size: int = 100
    n_transactions: int = 1500
    refresh_interval: int = 300
    fetch_seconds: float = 3.0
    success_callbacks: int = 2
    recent_days: int = 30
    host: str = "127.0.0.1"
    port: int = 0
    # Where the sandbox writes the secrets it knows and sees (see witness.py).
    secrets_file: str = None

    def __post_init__(self):
        if self.secrets_file is None:
            self.secrets_file = os.environ.get("ABC_SECRETS_FILE") or None
        if isinstance(self.client_public_key_pem, str):
            self.client_public_key_pem = self.client_public_key_pem.encode()
        if isinstance(self.signing_key_pem, str):
            self.signing_key_pem = self.signing_key_pem.encode()
        if self.require_signature is None:
            self.require_signature = self.client_public_key_pem is not None
        self.page_size = max(1, int(self.page_size))
        self.n_transactions = max(0, int(self.n_transactions))
        self.refresh_interval = max(0, int(self.refresh_interval))
        self.fetch_seconds = max(0.0, float(self.fetch_seconds))
        self.success_callbacks = min(3, max(1, int(self.success_callbacks)))
        self.recent_days = max(1, int(self.recent_days))

    @classmethod
    def from_env(cls, environ=None):
        """The settings of ``python -m sandbox``: SANDBOX_* variables, with their defaults."""
        env = os.environ if environ is None else environ

        def read_file(name):
            path = env.get(name)
            if not path:
                return None
            with open(path, "rb") as handle:
                return handle.read()

        require = env.get("SANDBOX_REQUIRE_SIGNATURE")
        return cls(
            app_id=env.get("SANDBOX_APP_ID", cls.app_id),
            secret=env.get("SANDBOX_SECRET", cls.secret),
            client_public_key_pem=read_file("SANDBOX_CLIENT_PUBLIC_KEY"),
            require_signature=None if require is None else require.lower() in ("1", "true", "yes"),
            callback_url=env.get("SANDBOX_CALLBACK_URL") or None,
            signing_key_pem=read_file("SANDBOX_SIGNING_KEY"),
            state_path=env.get("SANDBOX_STATE") or None,
            page_size=int(env.get("SANDBOX_PAGE_SIZE", cls.page_size)),
            n_transactions=int(env.get("SANDBOX_N_TRANSACTIONS", cls.n_transactions)),
            refresh_interval=int(env.get("SANDBOX_REFRESH_INTERVAL", cls.refresh_interval)),
            fetch_seconds=float(env.get("SANDBOX_FETCH_SECONDS", cls.fetch_seconds)),
            success_callbacks=int(env.get("SANDBOX_SUCCESS_CALLBACKS", cls.success_callbacks)),
            recent_days=int(env.get("SANDBOX_RECENT_DAYS", cls.recent_days)),
            host=env.get("SANDBOX_HOST", cls.host),
            port=int(env.get("SANDBOX_PORT", 8071)),
        )

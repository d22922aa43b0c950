"""The sandbox's provider catalogue: Belgian demo banks and Salt Edge's fake banks (XF).

Each provider says how it behaves (pending transactions, new transactions on every refresh,
a connect that fails, a balance snapshot on each transaction...) and which accounts a
customer has there. The Belgian IBANs are fixed: demo journals and tests elsewhere in the
project rely on them. Of the Belgian banks only Belfius sends
``extra.account_balance_snapshot``, as some real banks do and others do not.
"""

import hashlib
from dataclasses import dataclass

BE_DEMO_IBANS = {
    "kbc_sandbox_be": ("BE73735012345660", "BE55735065432144"),
    "belfius_sandbox_be": ("BE56363123456788", "BE23363765432191"),
    "bnp_fortis_sandbox_be": ("BE21001234567803",),
    "ing_sandbox_be": ("BE38068556677872",),
    "argenta_sandbox_be": ("BE69979111111178", "BE43523809001701"),
}

BUSINESS_HOLDER = "Demo Company BV"
PERSONAL_HOLDER = "Jan Janssens"


def iban_check_digits(country, bban):
    """The two ISO 13616 check digits of an IBAN made of ``country`` and ``bban``."""
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


def make_iban(country, bban):
    """A valid IBAN from a country code and a BBAN."""
    return f"{country}{iban_check_digits(country, bban)}{bban}"


def is_valid_iban(iban):
    """Whether ``iban`` passes the ISO 13616 mod-97 check."""
    iban = iban.replace(" ", "").upper()
    if len(iban) < 5 or not iban.isalnum():
        return False
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def belgian_iban(bank_code, number):
    """A valid Belgian IBAN: 3-digit bank code, 7-digit account number, mod-97 check."""
    account = f"{int(bank_code):03d}{int(number) % 10**7:07d}"
    check = int(account) % 97 or 97
    return make_iban("BE", f"{account}{check:02d}")


def stable_number(*parts):
    """A deterministic non-negative integer from strings (Python's hash() is salted)."""
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()
    return int(digest[:15], 16)


@dataclass(frozen=True)
class AccountTemplate:
    """An account a customer has at a provider."""

    iban: str
    name: str
    nature: str = "account"  # Salt Edge natures: account, savings, card, ...
    currency_code: str = "EUR"


@dataclass(frozen=True)
class Provider:
    """A bank of the catalogue and how the sandbox makes it behave."""

    code: str
    name: str
    country_code: str
    bic: str
    accounts: tuple
    max_consent_days: int = 180
    mode: str = "oauth"
    color: str = "#1f4e79"
    sandbox: bool = False  # listed only with include_sandboxes=true
    pending_days: int = 0  # transactions this recent are pending; 0 = never pending
    updates_on_refresh: bool = False  # new transactions on every refresh
    n_transactions: bool = False  # history of SANDBOX_N_TRANSACTIONS on one account
    connect_error: tuple = ()  # (error_class, message) when connecting always fails
    # extra.account_balance_snapshot on each booked transaction: the balance right after it
    balance_snapshots: bool = False
    login_methods: tuple = ("itsme", "card_reader")


def _be(code, name, bic, names, color, max_days=180, balance_snapshots=False):
    ibans = BE_DEMO_IBANS[code]
    natures = ("account", "savings")
    accounts = tuple(
        AccountTemplate(iban, label, natures[min(index, 1)])
        for index, (iban, label) in enumerate(zip(ibans, names, strict=True))
    )
    return Provider(
        code,
        name,
        "BE",
        bic,
        accounts,
        max_consent_days=max_days,
        color=color,
        pending_days=1,
        balance_snapshots=balance_snapshots,
    )


def _fake(code, name, bank_code, **kwargs):
    accounts = (
        AccountTemplate(belgian_iban(bank_code, 1000001), "Fake Checking Account"),
        AccountTemplate(belgian_iban(bank_code, 1000002), "Fake Savings Account", "savings"),
    )
    if kwargs.get("n_transactions"):
        accounts = accounts[:1]
    kwargs.setdefault("mode", "oauth" if "oauth" in code else "web")
    return Provider(code, name, "XF", "FAKEXFXX", accounts, color="#6c757d", sandbox=True, **kwargs)


PROVIDERS = (
    _be(
        "kbc_sandbox_be",
        "KBC Bank (sandbox)",
        "KREDBEBB",
        ("Zakelijke zichtrekening", "Spaarrekening"),
        "#00aeef",
    ),
    _be(
        "belfius_sandbox_be",
        "Belfius (sandbox)",
        "GKCCBEBB",
        ("Belfius Business Zichtrekening", "Belfius Spaarrekening"),
        "#c30045",
        balance_snapshots=True,
    ),
    _be(
        "bnp_fortis_sandbox_be",
        "BNP Paribas Fortis (sandbox)",
        "GEBABEBB",
        ("Business Start Zichtrekening",),
        "#00965e",
    ),
    _be(
        "ing_sandbox_be", "ING Belgium (sandbox)", "BBRUBEBB", ("ING Business Account",), "#ff6200"
    ),
    _be(
        "argenta_sandbox_be",
        "Argenta (sandbox)",
        "ARSPBE22",
        ("Argenta Zichtrekening", "Argenta Spaarrekening"),
        "#7ab51d",
        max_days=90,
    ),
    _fake("fakebank_simple_xf", "Fake Bank Simple", 951, mode="web"),
    _fake("fakebank_oauth_xf", "Fake Bank with OAuth", 952),
    _fake("fakebank_oauth_with_pending_xf", "Fake OAuth Bank with Pending", 953, pending_days=3),
    _fake(
        "fakebank_oauth_with_n_transactions_xf",
        "Fake OAuth Bank with N transactions",
        954,
        n_transactions=True,
    ),
    _fake("fakebank_with_updates_xf", "Fake Bank with Updates", 955, updates_on_refresh=True),
    _fake(
        "fakebank_with_error_xf",
        "Fake Bank with Error",
        956,
        connect_error=("ProviderUnavailable", "The provider is temporarily unavailable."),
    ),
)

PROVIDERS_BY_CODE = {provider.code: provider for provider in PROVIDERS}
# Stable ids, sorted like the catalogue, so from_id works on /providers too.
PROVIDER_IDS = {provider.code: str(1000 + index) for index, provider in enumerate(PROVIDERS)}


def matching_providers(country_code=None, include_sandboxes=False):
    """The banks a country filter shows, as Salt Edge lists them: those of ``country_code``
    (every country when None). Fake banks (country XF) only with ``include_sandboxes``,
    so ``BE`` never lists them; ``XF`` or no country does."""
    country = (country_code or "").upper() or None
    return [
        provider
        for provider in PROVIDERS
        if (include_sandboxes or not provider.sandbox)
        and (country is None or provider.country_code == country)
    ]


def provider_json(provider, base_url):
    """The provider as Salt Edge's ``GET /providers`` shows it."""
    extra_fields = [
        "account_number",
        "additional",
        "end_to_end_id",
        "information",
        "original_amount",
        "original_currency_code",
        "payee",
        "payee_information",
        "payer",
        "payer_information",
        "posting_date",
    ]
    if provider.balance_snapshots:
        extra_fields = sorted([*extra_fields, "account_balance_snapshot"])
    return {
        "id": PROVIDER_IDS[provider.code],
        "code": provider.code,
        "name": provider.name,
        "mode": provider.mode,
        "status": "active",
        "country_code": provider.country_code,
        "logo_url": f"{base_url}/sandbox/logos/{provider.code}.svg",
        "home_url": f"https://www.example.com/{provider.code}",
        "login_url": f"https://www.example.com/{provider.code}/login",
        "max_consent_days": provider.max_consent_days,
        "automatic_fetch": True,
        "interactive": False,
        "regulated": True,
        "timezone": "Europe/Brussels",
        "refresh_timeout": 60,
        "max_fetch_interval": 90,
        "identification_mode": "client",
        "bic_codes": [provider.bic],
        "supported_fetch_scopes": ["accounts", "transactions"],
        "supported_account_natures": sorted({a.nature for a in provider.accounts}),
        "supported_account_types": ["business", "personal"],
        "supported_account_extra_fields": ["account_name", "holder_name", "iban", "swift"],
        "supported_transaction_extra_fields": extra_fields,
        "created_at": "2024-01-15T09:00:00Z",
        "updated_at": "2025-01-15T09:00:00Z",
    }


def logo_svg(provider):
    """A small SVG logo: the bank's initials on its colour."""
    words = [word for word in provider.name.replace("(sandbox)", "").split() if word[0].isalpha()]
    initials = "".join(word[0] for word in words[:3]).upper() or "?"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<rect width="64" height="64" rx="12" fill="{provider.color}"/>'
        '<text x="32" y="40" font-family="Arial, sans-serif" font-size="20" font-weight="bold" '
        f'fill="#ffffff" text-anchor="middle">{initials}</text></svg>'
    )

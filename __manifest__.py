{
    "name": "Bank Connections (Salt Edge)",
    "summary": "Connect bank accounts through Salt Edge open banking, import their "
    "transactions and renew the consent in time",
    "version": "18.0.1.0.0",
    "category": "Accounting/Accounting",
    "author": "account_bank_connection contributors",
    "website": "https://github.com/account-bank-connection/account_bank_connection",
    "license": "LGPL-3",
    "depends": ["account", "mail"],
    "external_dependencies": {"python": ["requests", "cryptography"]},
    "data": [
        "security/account_bank_connection_security.xml",
        "security/ir.model.access.csv",
        "views/account_bank_connection_views.xml",
        "views/account_journal_views.xml",
        "views/menus.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "account_bank_connection/static/tests/tours/*.js",
        ],
    },
    "installable": True,
    "application": False,
}

# Run by make run (and make screenshots) through scripts/odoo_script.py on every start: makes sure
# the demo company has the Belgian chart, two bank journals with the sandbox banks' IBANs, Odoo
# points at the local Salt Edge sandbox, a few customers of the KBC history have their bank
# account and an open invoice that one of their KBC payments pays, the Belfius journal is
# connected (through the sandbox's real connect screens) with a consent that ends in a few
# days, and its renewal reminder is in the outbox. The KBC journal stays unconnected: the
# visitor clicks Connect bank there, and its lines then show those customers and invoices.
# Idempotent: a second run reuses the customers, the invoices and the Belfius connection and
# sends no second reminder.
#
# DEMO_LANG=nl (or fr) makes the admin's language Belgian Dutch (or French); English otherwise.
# DEMO_CONSENT_DAYS (default 10) is the length of the Belfius consent when it is first made.
import datetime
import os
from urllib.parse import parse_qs, urlparse

import requests
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization

from odoo import Command
from odoo.tools import SQL

from odoo.addons.account_bank_connection.models import const
from odoo.addons.account_bank_connection.sandbox import ledger
from odoo.addons.account_bank_connection.sandbox.driver import complete_connect
from odoo.addons.account_bank_connection.sandbox.providers import (
    BUSINESS_HOLDER,
    PROVIDERS_BY_CODE,
)

env = env  # noqa: F821 (given by scripts/odoo_script.py)
company = env.ref("base.main_company")
if not company.chart_template:
    env["account.chart.template"].try_loading("be_comp", company, install_demo=True)

JOURNALS = [
    ("KBC Zichtrekening", "KBC", "BE73735012345660"),
    ("Belfius Zichtrekening", "BFS", "BE56363123456788"),
]
for name, code, iban in JOURNALS:
    if not env["account.journal"].search_count(
        [("company_id", "=", company.id), ("bank_acc_number", "=", iban)]
    ):
        env["account.journal"].create(
            {
                "name": name,
                "code": code,
                "type": "bank",
                "bank_acc_number": iban,
                "company_id": company.id,
            }
        )

with open(os.environ["DEMO_SIGNING_KEY"], "rb") as key_file:
    key = serialization.load_pem_private_key(key_file.read(), None, default_backend())
public_pem = (
    key.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
params = env["ir.config_parameter"].sudo()
params.set_param("web.base.url", os.environ["DEMO_ODOO_URL"])
params.set_param(
    "account_bank_connection.saltedge_base_url", os.environ["DEMO_SANDBOX_URL"] + "/api/v6"
)
params.set_param("account_bank_connection.saltedge_app_id", "sandbox-app-id")
env["account.bank.credential"]._set(const.PARAM_SECRET, "sandbox-secret")
params.set_param("account_bank_connection.saltedge_public_key", public_pem)
params.set_param("account_bank_connection.include_sandboxes", "True")
admin = env.ref("base.user_admin")
# Only when it differs: each password change sends the admin a security e-mail, which would
# pile up in the outbox beside the reminder.
[(password_hash,)] = env.execute_query(
    SQL("SELECT COALESCE(password, '') FROM res_users WHERE id = %s", admin.id)
)
try:
    password_ok = admin._crypt_context().verify("admin", password_hash)
except ValueError:
    password_ok = False
if not password_ok:
    admin.write({"password": "admin"})
if not admin.email:
    admin.email = "admin@example.com"
if not company.email:
    company.email = "boekhouding@example.com"

# The admin's language: English unless DEMO_LANG names another (nl, fr or a full code).
LANGS = {"": "en_US", "en": "en_US", "nl": "nl_BE", "fr": "fr_BE"}
lang_code = LANGS.get(os.environ.get("DEMO_LANG", "").strip().lower(), os.environ.get("DEMO_LANG"))
if admin.lang != lang_code:
    lang = env["res.lang"].with_context(active_test=False).search([("code", "=", lang_code)])
    if not lang:
        raise SystemExit(f"DEMO_LANG: no language {lang_code!r} in Odoo")
    if not lang.active:
        env["base.language.install"].create({"lang_ids": [(6, 0, lang.ids)]}).lang_install()
    admin.lang = lang_code
    print(f"demo: admin's language is {lang_code}")
env.cr.commit()

# Customers of the KBC history and their open invoices, from the sandbox's own ledger for the
# sandbox's today: each customer gets the bank account the sandbox's KBC is paid from, and an
# invoice with the structured communication and the amount of one of its payments of the last
# three weeks (booked ones: the KBC connect imports them). Made once: a run that finds an
# invoice with a reference of the history a KBC connect would import adds none.
KBC = PROVIDERS_BY_CODE["kbc_sandbox_be"]
KBC_ACCOUNT = next(account for account in KBC.accounts if account.iban == "BE73735012345660")
DEMO_INVOICES = 5
clock = requests.get(os.environ["DEMO_SANDBOX_URL"] + "/sandbox/clock", timeout=30)
clock.raise_for_status()
today = datetime.date.fromisoformat(clock.json()["data"]["today"])
kbc_history = ledger.drafts_for_period(
    KBC,
    KBC_ACCOUNT,
    BUSINESS_HOLDER,
    today - datetime.timedelta(days=ledger.HISTORY_DAYS - 1),
    today - datetime.timedelta(days=KBC.pending_days),
)
customer_payments = [
    draft
    for draft in kbc_history
    if draft["amount"] > 0
    and draft["extra"].get("payer") in ledger.CUSTOMERS
    and (draft["reference"] or "").startswith("+++")
]
Move = env["account.move"].with_company(company)
invoiced = Move.search(
    [
        ("company_id", "=", company.id),
        ("move_type", "=", "out_invoice"),
        ("payment_reference", "in", [draft["reference"] for draft in customer_payments]),
    ]
)
if invoiced:
    print(f"demo: {len(invoiced)} customer invoices of the KBC history reused")
else:
    three_weeks_ago = (today - datetime.timedelta(days=21)).isoformat()
    latest = {}  # customer's name -> its latest payment of the last three weeks
    for draft in reversed(customer_payments):
        if draft["made_on"] >= three_weeks_ago and len(latest) < DEMO_INVOICES:
            latest.setdefault(draft["extra"]["payer"], draft)
    for name, payment in latest.items():
        partner = env["res.partner"].search(
            [("name", "=", name), ("is_company", "=", True)], limit=1
        ) or env["res.partner"].create(
            {"name": name, "is_company": True, "country_id": env.ref("base.be").id}
        )
        iban = ledger.counterparty_iban(name)
        if iban not in partner.bank_ids.mapped("sanitized_acc_number"):
            env["res.partner.bank"].create({"partner_id": partner.id, "acc_number": iban})
        paid_on = datetime.date.fromisoformat(payment["made_on"])
        invoice = Move.create(
            {
                "move_type": "out_invoice",
                "company_id": company.id,
                "partner_id": partner.id,
                "invoice_date": paid_on - datetime.timedelta(days=14),
                "payment_reference": payment["reference"],
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Advies en begeleiding",
                            "quantity": 1,
                            "price_unit": payment["amount"],
                            "tax_ids": [Command.clear()],
                        }
                    )
                ],
            }
        )
        invoice.action_post()
        print(
            f"demo: invoice {invoice.name} for {name} ({iban}), {invoice.amount_total:.2f} EUR, "
            f"{invoice.payment_reference}: paid on {paid_on} at KBC"
        )
env.cr.commit()

# The Belfius journal, connected as the admin would: the connect screens are gone through
# by the sandbox's driver, the return is what the return controller does with it.
BELFIUS = "belfius_sandbox_be"
Connection = env["account.bank.connection"].with_user(admin).with_company(company)
belfius = Connection.sudo().search(
    [("company_id", "=", company.id), ("provider_code", "=", BELFIUS)], limit=1
)
if not belfius:
    journal = env["account.journal"].search(
        [("company_id", "=", company.id), ("bank_acc_number", "=", "BE56363123456788")], limit=1
    )
    # A short consent, so the card is amber and a reminder is due; the setting itself is
    # left as it was.
    consent_days = params.get_param(const.PARAM_CONSENT_DAYS)
    params.set_param(const.PARAM_CONSENT_DAYS, os.environ.get("DEMO_CONSENT_DAYS") or "10")
    action = Connection._saltedge_start_connect(company, BELFIUS, journal=journal)
    params.set_param(const.PARAM_CONSENT_DAYS, consent_days or False)
    query = {
        key: values[0]
        for key, values in parse_qs(urlparse(complete_connect(action["url"])).query).items()
    }
    if query.get("error_class"):
        raise SystemExit(f"The sandbox refused the Belfius connect: {query['error_class']}")
    session = env["account.bank.connect.session"].with_user(admin)._consume(query.get("state"))
    belfius = Connection._saltedge_finish_return(
        session, connection_hint=query.get("connection_id")
    )
    # Salt Edge fetches after the return, as the real one does: wait for it, as the
    # waiting page would, before the first import.
    requests.post(
        os.environ["DEMO_SANDBOX_URL"] + "/sandbox/fetches/wait", json={"timeout": 60}, timeout=90
    ).raise_for_status()
    imported = belfius._saltedge_first_import_run().created_count
    env.cr.commit()
    print(f"demo: Belfius connected until {belfius.connected_until}, {imported} transactions")
else:
    print(
        f"demo: Belfius connection {belfius.id} reused "
        f"({belfius.state}, until {belfius.connected_until})"
    )

# The daily reminder run, now: the Belfius reminder (once per consent) goes to the outbox. The
# demo has no mail server, so the mail queue leaves it there as failed; the template keeps it
# (no auto-delete).
env["account.bank.connection"]._cron_send_renewal_reminders()
reminders = env["mail.mail"].search(
    [("model", "=", "account.bank.connection"), ("res_id", "=", belfius.id)]
)
for mail in reminders:
    # Settings › Technical › Emails: "Outgoing" until the mail queue runs, then "Delivery
    # Failed" (the demo has no mail server); it stays there either way.
    print(f"demo: reminder mail {mail.id} in the outbox ({mail.state}): {mail.subject}")
env.cr.commit()
print("demo set-up done")

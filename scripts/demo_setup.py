# Run by make run through scripts/odoo_script.py on every start: makes sure the demo company has the
# Belgian chart, two bank journals with the sandbox banks' IBANs, and Odoo points at the local
# Salt Edge sandbox. Idempotent.
import os

from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization

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
params.set_param("account_bank_connection.saltedge_secret", "sandbox-secret")
params.set_param("account_bank_connection.saltedge_public_key", public_pem)
params.set_param("account_bank_connection.include_sandboxes", "True")
env.ref("base.user_admin").write({"password": "admin"})
env.cr.commit()
print("demo set-up done")

# Run by make run through scripts/odoo_script.py before accounting is installed: the main company
# becomes a Belgian one, so Odoo picks the Belgian localisation and chart of accounts.
company = env.ref("base.main_company")  # noqa: F821 (given by scripts/odoo_script.py)
company.write(
    {
        "name": "Boekhouding Demo BV",
        "street": "Kortrijksesteenweg 1",
        "zip": "9000",
        "city": "Gent",
        "country_id": env.ref("base.be").id,  # noqa: F821
        "currency_id": env.ref("base.EUR").id,  # noqa: F821
        "vat": "BE0477472701",
    }
)
env.ref("base.EUR").active = True  # noqa: F821
env.cr.commit()  # noqa: F821

"""Run a Python file against an Odoo database with ``env`` defined, then commit.

    python scripts/odoo_script.py SCRIPT.py [odoo options: -c, -d, --addons-path, --db_*]

Used by make run to set up the demo (``odoo-bin shell`` does not read every config file).
"""

import sys

import odoo


def main():
    script, odoo_args = sys.argv[1], sys.argv[2:]
    odoo.tools.config.parse_config(odoo_args)
    db_name = odoo.tools.config["db_name"]
    registry = odoo.modules.registry.Registry(db_name)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        with open(script, encoding="utf-8") as source:
            code = compile(source.read(), script, "exec")
        exec(code, {"env": env, "__name__": "__main__"})
        cr.commit()


if __name__ == "__main__":
    main()

"""Run a Python file against an Odoo database with ``env`` defined, then commit.

    python scripts/odoo_script.py SCRIPT.py [odoo options: -c, -d, --addons-path, --db_*]

Used by make run to set up the demo (``odoo-bin shell`` does not read every config file).
"""

import importlib
import importlib.util
import sys

# Odoo 19's odoo is a namespace package that odoo.init sets up; Odoo 18's does it on import.
if importlib.util.find_spec("odoo.init"):
    importlib.import_module("odoo.init")

from odoo import SUPERUSER_ID, api, tools
from odoo.modules.registry import Registry


def main():
    script, odoo_args = sys.argv[1], sys.argv[2:]
    tools.config.parse_config(odoo_args)
    db_name = tools.config["db_name"]
    registry = Registry(db_name)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        with open(script, encoding="utf-8") as source:
            code = compile(source.read(), script, "exec")
        exec(code, {"env": env, "__name__": "__main__"})
        cr.commit()


if __name__ == "__main__":
    main()

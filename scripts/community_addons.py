"""Print the Community modules of an addons folder, one a line (used by common.sh).

A packaged Odoo build mixes Odoo's Enterprise modules into the same folder as the
Community ones; only the manifests tell them apart. A module is kept when its license is
not proprietary and everything it depends on is kept (a few LGPL modules of the
Enterprise set depend on proprietary ones: left on the path, they would be picked for
auto-install and never load). Nothing but the license and the dependencies is read;
modules whose manifest cannot be read are left out.
"""

import ast
import os
import sys

PROPRIETARY_LICENSES = ("OEEL-1", "OPL-1")


def community_modules(addons_dir):
    """The sorted names of the folders of ``addons_dir`` that hold a Community module."""
    depends = {}
    for name in sorted(os.listdir(addons_dir)):
        manifest = os.path.join(addons_dir, name, "__manifest__.py")
        if not os.path.isfile(manifest):
            continue
        try:
            with open(manifest, encoding="utf-8") as handle:
                values = ast.literal_eval(handle.read())
        except (ValueError, SyntaxError, OSError):
            continue
        if values.get("license", "LGPL-3") not in PROPRIETARY_LICENSES:
            depends[name] = set(values.get("depends", []))
    # Drop modules that need a dropped (or absent) one, until nothing changes.
    while True:
        orphans = {name for name, needs in depends.items() if not needs <= depends.keys()}
        if not orphans:
            return sorted(depends)
        for name in orphans:
            del depends[name]


if __name__ == "__main__":
    for module in community_modules(sys.argv[1]):
        print(module)

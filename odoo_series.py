"""Everything that differs between the Odoo series this addon supports (18.0 and 19.0).

The rest of the module is written once, in the newer idiom where one exists, and asks
this file for the few things whose spelling depends on the running Odoo. Each difference
is found by looking at what the running Odoo offers (feature detection), never by
comparing version numbers, so nothing here needs touching when a series is added that
keeps 19.0's ways. When 18.0 support ends, each name below becomes a plain alias of
Odoo's own and can be inlined.

- ``Constraint``: a database constraint declared as a model class attribute, the 19.0
  way (``_key = Constraint("unique(a, b)", "message")``). On 18.0, which reads
  ``_sql_constraints`` instead (19.0 ignores that list with a warning), the same
  declaration is added to the class's ``_sql_constraints``. Either way the constraint
  in the database is named ``<table>_<key>`` and its message is reflected into
  ``ir.model.constraint``, where it is translated.
- ``JSON_ROUTE_TYPE``: the ``type`` of an ``http.route`` answering JSON-RPC
  (``json`` on 18.0, ``jsonrpc`` on 19.0, which warns on ``json``).
- ``user_groups_field``: the name of the groups of a user (``groups_id`` on 18.0,
  ``group_ids`` on 19.0), for code that writes them.
- ``group_users``: the users who have a group, directly or through a group that implies
  it (``users`` on 18.0, which lists both; ``all_user_ids`` on 19.0, whose ``user_ids``
  lists only the direct ones).
- ``field_is_readable``: whether the current user may read a field restricted to groups
  (``Field.is_accessible`` on 18.0, ``BaseModel._has_field_access`` on 19.0).
"""

from odoo import http, models

# The dispatcher of JSON-RPC requests names its own route type on every series.
JSON_ROUTE_TYPE = http.JsonRPCDispatcher.routing_type

if hasattr(models, "Constraint"):
    Constraint = models.Constraint
else:

    class Constraint:
        """A table constraint declared as a class attribute (``_key = Constraint(...)``)
        on an Odoo series that only reads ``_sql_constraints``: the declaration is
        appended to the ``_sql_constraints`` of the class being defined."""

        def __init__(self, definition, message=""):
            self.definition = definition
            self.message = message

        def __set_name__(self, owner, name):
            # Same rule and same database name (<table>_<key>) as Odoo 19's Constraint.
            assert name.startswith("_"), "Names of SQL objects in a model must start with '_'"
            own = owner.__dict__.get("_sql_constraints", [])
            owner._sql_constraints = [*own, (name[1:], self.definition, self.message)]


def user_groups_field(env):
    """The name of the field that holds a user's groups on the running Odoo."""
    return "group_ids" if "group_ids" in env["res.users"]._fields else "groups_id"


def group_users(group):
    """The users who have ``group``, directly or through a group that implies it."""
    if "all_user_ids" in group._fields:
        return group.all_user_ids
    return group.users


def field_is_readable(model, name):
    """Whether the user of ``model``'s environment may read its field ``name``."""
    field = model._fields[name]
    if hasattr(model, "_has_field_access"):
        return model._has_field_access(field, "read")
    return field.is_accessible(model.env)

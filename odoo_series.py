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
- ``serve_http_requests_throughout`` and ``holding_http_requests``, for HTTP tests: Odoo
  18.0's test server answers any request at any moment (``registry.test_lock`` holds
  them back); 19.0's answers only requests carrying the test's cookie, and only inside
  ``HttpCase.allow_requests()``. Salt Edge's callbacks come from the sandbox's threads,
  without a cookie, at moments the test does not choose.
- ``commit_progress``: commit the work done so far (a scheduled action's loop, an import
  step), and inside a scheduled action tell Odoo its progress: ``ir.cron._commit_progress``
  on 19.0, which deprecates ``_notify_progress``; ``_notify_progress`` and a commit on 18.0.
  Never in a test's own thread.
- ``thread_runs_a_test``: whether a commit now would end the test's transaction. Odoo
  18.0's runner and pytest-odoo mark the test's thread (``testing``); Odoo 19.0's runner
  only sets ``odoo.modules.module.current_test``, for every thread, so there the test's
  own thread is the one not answering an HTTP request.
"""

import contextlib
import threading

from odoo import http, models
from odoo.modules import module as odoo_module

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


def _serve_http_requests(case):
    stack = contextlib.ExitStack()
    stack.enter_context(type(case).allow_requests(case, all_requests=True))
    return stack


def serve_http_requests_throughout(case):
    """Let the HTTP server of the test ``case`` answer every request, from anyone, until
    the test ends (called from ``setUp``). Nothing to do on 18.0."""
    if not hasattr(case, "allow_requests"):
        return
    case._series_serving = _serve_http_requests(case)
    case.addCleanup(lambda: case._series_serving.close())
    # Odoo's helpers (url_open, browser_js) would release the test's lock a second time.
    case.allow_requests = lambda browser=None, all_requests=False: contextlib.nullcontext()


@contextlib.contextmanager
def holding_http_requests(case):
    """Requests wait while the body runs (their cursor is the test's), as a real request
    waits for the end of the transaction that holds its rows."""
    if hasattr(case.registry, "test_lock"):
        with case.registry.test_lock:
            yield
        return
    case._series_serving.close()
    try:
        yield
    finally:
        case._series_serving = _serve_http_requests(case)


def thread_runs_a_test():
    """Whether the current thread runs a test, whose transaction a commit would end."""
    if getattr(threading.current_thread(), "testing", False):
        return True
    return bool(odoo_module.current_test) and not http.request


def commit_progress(env, processed=0, remaining=None):
    """Commit what was done so far: every commit of the module goes through here. Inside a
    scheduled action, also its progress: ``processed`` items since the last call, and
    ``remaining`` left (by default the remaining count less ``processed``). Returns False,
    committing nothing, in a test's own thread (see ``thread_runs_a_test``), else True."""
    if thread_runs_a_test():
        return False
    cron = env["ir.cron"]
    if hasattr(cron, "_commit_progress"):
        cron._commit_progress(processed, remaining=remaining)
        return True
    progress_id = env.context.get("ir_cron_progress_id")
    if progress_id and (processed or remaining is not None):
        progress = env["ir.cron.progress"].sudo().browse(progress_id)
        if remaining is None:
            remaining = max(progress.remaining - processed, 0)
        cron._notify_progress(done=progress.done + processed, remaining=remaining)
    env.cr.commit()  # pylint: disable=invalid-commit
    return True

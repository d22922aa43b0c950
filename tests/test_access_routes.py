"""Who may use the two routes, per role: the return from the bank (auth=user) and Salt
Edge's callbacks (auth=public), over Odoo's real HTTP server with the sandbox."""

import json

from odoo import fields
from odoo.tests import tagged

from ..models import const
from ..sandbox import signing
from .common import (
    ACCOUNTANT,
    ADMIN,
    CALLBACKS_PER_SUCCESS,
    INSTANT_FETCH,
    MANAGER,
    OK,
    PORTAL,
    PUBLIC,
    ROLES,
    STRANGER,
    USER,
    AccessRolesMixin,
    BankConnectionHttpCase,
    outcome_name,
)

# The return route (auth=user) with a state started by the accounting manager, per role:
# only the manager who started it gets through; anyone else gets the page that says why.
RETURN_WITH_MANAGERS_STATE = {
    PUBLIC: "login",
    PORTAL: "another user",
    USER: "another user",
    ACCOUNTANT: "another user",
    MANAGER: OK,
    ADMIN: "another user",
    STRANGER: "another user",
}
# The same route with a state of the user's own, for a connection really made at the bank
# (a manager who lost the right within the hour, or a session row written by hand): only
# those who may connect a bank finish it.
RETURN_WITH_OWN_STATE = {
    PORTAL: "Only accounting administrators",
    USER: "Only accounting administrators",
    ACCOUNTANT: "Only accounting administrators",
    ADMIN: OK,
}
# The callback route (auth=public): the Signature is the authentication, whoever posts.
CALLBACK_UNSIGNED = {role: 403 for role in ROLES}
CALLBACK_SIGNED = {role: 200 for role in ROLES}


@tagged("post_install", "-at_install")
class TestRouteAccess(AccessRolesMixin, BankConnectionHttpCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_roles()
        cls.Connection = cls.env["account.bank.connection"]
        cls.Session = cls.env["account.bank.connect.session"]

    def setUp(self):
        super().setUp()
        self.reset_sandbox()
        self.connects = 0

    def login_as(self, role):
        user = self.users[role]
        if role == PUBLIC:
            self.authenticate(None, None)
        else:
            self.authenticate(user.login, user.login)

    def bank_screens(self, user):
        """Bank verbinden as ``user`` through the sandbox, its callbacks answered; returns the
        return URL's parameters."""
        self.env.flush_all()
        params = self.connect(user=user)
        self.connects += 1
        self.wait_for_callbacks(self.connects * CALLBACKS_PER_SUCCESS)
        self.env.invalidate_all()
        return params

    def open_return(self, params):
        self.env.flush_all()
        query = "&".join(f"{key}={value}" for key, value in params.items())
        response = self.url_open(f"{const.RETURN_ROUTE}?{query}", timeout=120)
        self.env.invalidate_all()
        return response

    def check_return(self, role, params, expected, mismatches):
        session = self.Session.sudo().browse(int(params["state"].split(".")[0]))
        before = self.Connection.search_count([])
        self.login_as(role)
        response = self.open_return(params)
        created = self.Connection.search_count([]) - before
        if expected == OK:
            good = response.status_code == 200 and created == 1 and session.used_at
        elif expected == "login":
            good = "/web/login" in response.url and not created and not session.used_at
        else:
            good = (
                response.status_code == 400
                and expected in response.text
                and not created
                # Another user's state stays usable for its owner.
                and (session.user_id == self.users[role] or not session.used_at)
            )
        if not good:
            mismatches.append(
                f"{role}: expected {outcome_name(expected)}, got {response.status_code} "
                f"(used: {bool(session.used_at)}, created: {created})"
            )

    def test_the_return_route_with_the_managers_state_serves_only_the_manager(self):
        manager = self.users[MANAGER]
        mismatches = []
        for role, expected in RETURN_WITH_MANAGERS_STATE.items():
            if expected == OK:
                params = self.bank_screens(manager)
            else:
                # Refused before Salt Edge is asked: a state of an unfinished connect will do.
                session = self.Session.with_user(manager)._start(
                    self.company, journal=self.kbc_journal, provider_code="kbc_sandbox_be"
                )
                params = {"state": session._token(), "connection_id": "1"}
            self.check_return(role, params, expected, mismatches)
        self.assertFalse(mismatches, "\n" + "\n".join(mismatches))

    def test_the_return_route_finishes_a_connect_only_for_who_may_connect(self):
        manager = self.users[MANAGER]
        mismatches = []
        for role, expected in RETURN_WITH_OWN_STATE.items():
            params = self.bank_screens(manager)
            session = self.Session.sudo().browse(int(params["state"].split(".")[0]))
            # The state as if the role had started it: signed for the role.
            session.user_id = self.users[role]
            params["state"] = session._token()
            self.check_return(role, params, expected, mismatches)
        self.assertFalse(mismatches, "\n" + "\n".join(mismatches))

    def test_the_callback_route_listens_to_the_signature_not_to_who_posts(self):
        connection = self.connected()
        url = f"{self.base_url()}{const.CALLBACK_ROUTE}/notify"
        mismatches = []
        for role in ROLES:
            self.login_as(role)
            cases = ((False, CALLBACK_UNSIGNED[role]), (True, CALLBACK_SIGNED[role]))
            for signed, expected in cases:
                stage = f"acl-{role}-{signed}"[:64]
                body = json.dumps(
                    {
                        "data": {
                            "connection_id": connection.saltedge_connection_id,
                            "customer_id": connection.saltedge_customer_id,
                            "stage": stage,
                        },
                        # Sent now: Odoo refuses a callback more than a day old.
                        "meta": {"version": "6", "time": fields.Datetime.now().isoformat()},
                    }
                ).encode()
                headers = {"Content-Type": "application/json"}
                if signed:
                    headers["Signature"] = signing.sign(
                        self.sandbox.app.private_key, signing.callback_message(url, body)
                    )
                    self.record_secrets("signature", headers["Signature"])
                self.env.flush_all()
                response = self.url_open(url, data=body, headers=headers, timeout=30)
                self.env.invalidate_all()
                applied = connection.last_stage == stage
                if response.status_code != expected or applied != (expected == 200):
                    mismatches.append(
                        f"{role} / signed={signed}: expected {expected}, "
                        f"got {response.status_code} (applied: {applied})"
                    )
        self.assertFalse(mismatches, "\n" + "\n".join(mismatches))

"""The ``state`` of the return URL: every way to get it wrong, refused in the model and over
HTTP through the return route, with the session left unused and no connection made.

The same table drives both: each row builds a token for a session started by an
accounting manager (who is the one returning), and names the sentence of the refusal.
"""

import datetime

from odoo import fields
from odoo.tests import new_test_user, tagged
from odoo.tools.misc import hmac

from ..models import const
from ..models.account_bank_connect_session import STATE_SCOPE, ConnectStateError
from .common import INSTANT_FETCH, BankConnectionCase, BankConnectionHttpCase

NOT_VALID = "not valid"


def _parts(case):
    session = case.start_session()
    return session, *session._token().split(".")


def forged_signature(case):
    session, sid, nonce, signature = _parts(case)
    return session, f"{sid}.{nonce}.{'0' * len(signature)}", NOT_VALID


def forged_nonce(case):
    session, sid, nonce, signature = _parts(case)
    return session, f"{sid}.{nonce[:-2]}xx.{signature}", NOT_VALID


def truncated_signature(case):
    session, sid, nonce, signature = _parts(case)
    return session, f"{sid}.{nonce}.{signature[:32]}", NOT_VALID


def without_signature(case):
    session, sid, nonce, _signature = _parts(case)
    return session, f"{sid}.{nonce}", NOT_VALID


def with_an_extra_part(case):
    session = case.start_session()
    return session, f"{session._token()}.x", NOT_VALID


def empty(case):
    return case.start_session(), "", NOT_VALID


def id_not_a_number(case):
    session, sid, nonce, signature = _parts(case)
    return session, f"{sid}a.{nonce}.{signature}", NOT_VALID


def id_of_no_session(case):
    session, _sid, nonce, signature = _parts(case)
    return session, f"{'9' * 30}.{nonce}.{signature}", NOT_VALID


def nonce_and_signature_of_another_session(case):
    session, sid, _nonce, _signature = _parts(case)
    _other, _osid, other_nonce, other_signature = _parts(case)
    return session, f"{sid}.{other_nonce}.{other_signature}", NOT_VALID


def signed_for_another_journal(case):
    """A correct HMAC, but over another journal than the session's."""
    session, sid, nonce, _signature = _parts(case)
    bound = f"{session.user_id.id}.{session.company_id.id}.{case.belfius_journal.id}"
    message = f"{sid}.{nonce}.{bound}"
    return session, f"{sid}.{nonce}.{hmac(case.env(su=True), STATE_SCOPE, message)}", NOT_VALID


def signed_for_another_user(case):
    session, sid, nonce, _signature = _parts(case)
    message = f"{sid}.{nonce}.{case.colleague.id}.{session.company_id.id}.{session.journal_id.id}"
    return session, f"{sid}.{nonce}.{hmac(case.env(su=True), STATE_SCOPE, message)}", NOT_VALID


def signed_with_another_database_secret(case):
    """The token a copy of the database (another database.secret) would have made."""
    session = case.start_session()
    params = case.env["ir.config_parameter"].sudo()
    secret = params.get_param("database.secret")
    params.set_param("database.secret", "another-database-secret")
    token = session._token()
    params.set_param("database.secret", secret)
    case.assertNotEqual(token, session._token())
    return session, token, NOT_VALID


def session_moved_to_another_journal(case):
    """The session's row changed after the token was made (its journal)."""
    session = case.start_session()
    token = session._token()
    session.journal_id = case.belfius_journal
    return session, token, NOT_VALID


def session_moved_to_another_user(case):
    session = case.start_session()
    token = session._token()
    session.user_id = case.colleague
    # Moved back to the returning user, but the token was signed for the colleague.
    colleague_token = session._token()
    session.user_id = case.manager
    case.assertNotEqual(token, colleague_token)
    return session, colleague_token, NOT_VALID


def expired(case):
    session = case.start_session()
    session.expires_at = fields.Datetime.now() - datetime.timedelta(seconds=1)
    return session, session._token(), "more than an hour ago"


def of_another_user(case):
    session = case.start_session(user=case.colleague)
    return session, session._token(), "another user"


def of_a_company_the_user_no_longer_has(case):
    case.manager.company_ids = [(4, case.other_company.id)]
    session = case.start_session(company=case.other_company, journal=False)
    case.manager.company_ids = [(3, case.other_company.id)]
    return session, session._token(), "no access"


BAD_TOKENS = (
    forged_signature,
    forged_nonce,
    truncated_signature,
    without_signature,
    with_an_extra_part,
    empty,
    id_not_a_number,
    id_of_no_session,
    nonce_and_signature_of_another_session,
    signed_for_another_journal,
    signed_for_another_user,
    signed_with_another_database_secret,
    session_moved_to_another_journal,
    session_moved_to_another_user,
    expired,
    of_another_user,
    of_a_company_the_user_no_longer_has,
)


class StateTokenMixin:
    @classmethod
    def setup_users(cls):
        cls.other_company = cls.env["res.company"].create({"name": "Andere BV"})
        cls.manager = cls._manager("abc_state_manager")
        cls.colleague = cls._manager("abc_state_colleague")

    @classmethod
    def _manager(cls, login):
        return new_test_user(
            cls.env,
            login=login,
            password=login + "-password",
            groups="base.group_user,account.group_account_manager",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )

    def start_session(self, user=None, company=None, journal=None):
        user = user or self.manager
        journal = self.kbc_journal if journal is None else (journal or None)
        Session = self.env["account.bank.connect.session"].with_user(user)
        return Session._start(company or self.company, journal=journal, provider_code="kbc")


class TestStateTokenInTheModel(StateTokenMixin, BankConnectionCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_users()

    def test_a_good_token_is_accepted_once(self):
        # The rows below can only pass for a reason: the unspoiled token works.
        session = self.start_session()
        Session = self.env["account.bank.connect.session"].with_user(self.manager)
        self.assertEqual(Session._consume(session._token()), session)
        with self.assertRaisesRegex(ConnectStateError, "already handled"):
            Session._consume(session._token())

    def test_every_bad_token_is_refused_and_leaves_the_session_unused(self):
        Session = self.env["account.bank.connect.session"].with_user(self.manager)
        for make in BAD_TOKENS:
            with self.subTest(make.__name__):
                session, token, text = make(self)
                with self.assertRaisesRegex(ConnectStateError, text, msg=make.__name__):
                    Session._consume(token)
                self.assertFalse(session.used_at, make.__name__)
        self.assertFalse(self.env["account.bank.connection"].search([]))


@tagged("post_install", "-at_install")
class TestStateTokenOverHttp(StateTokenMixin, BankConnectionHttpCase):
    sandbox_kwargs = INSTANT_FETCH  # see tests/common.py

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_users()

    def setUp(self):
        super().setUp()
        self.authenticate(self.manager.login, self.manager.login + "-password")

    def return_page(self, token, **params):
        self.env.flush_all()
        query = "&".join(f"{key}={value}" for key, value in {"state": token, **params}.items())
        response = self.url_open(f"{const.RETURN_ROUTE}?{query}", timeout=60)
        self.env.invalidate_all()
        return response

    def test_every_bad_token_gets_a_clear_page_and_changes_nothing(self):
        for make in BAD_TOKENS:
            with self.subTest(make.__name__):
                session, token, text = make(self)
                response = self.return_page(token, connection_id="1")
                self.assertEqual(response.status_code, 400, make.__name__)
                self.assertIn(text, response.text, make.__name__)
                self.assertFalse(session.used_at, make.__name__)
        self.assertFalse(self.env["account.bank.connection"].search([]))
        # Refused before anything was asked of Salt Edge.
        self.assertFalse(self.sandbox_api_requests(path="/connections/1"))

    def test_a_used_token_gets_a_clear_page(self):
        session = self.start_session()
        token = session._token()
        self.env["account.bank.connect.session"].with_user(self.manager)._consume(token)
        response = self.return_page(token, connection_id="1")
        self.assertEqual(response.status_code, 400)
        self.assertIn("already handled", response.text)

    def test_without_a_login_the_return_asks_to_log_in_and_uses_nothing(self):
        session = self.start_session()
        self.authenticate(None, None)
        response = self.return_page(session._token(), connection_id="1")
        self.assertIn("/web/login", response.url)
        self.assertFalse(session.used_at)

"""The login flow's functions, directly: attempts, the ID-token assembly, reauthentication, the
backend's result handed over on the request."""

from __future__ import annotations

import base64
import hashlib
import time
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from authgear_django import login_flow
from authgear_django.authorization import LoginAttempt
from authgear_django.exceptions import (
    LoginAttemptError,
    ReauthenticationFailed,
    TokenValidationError,
)
from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


def request_with_session(path: str = "/", **query: str) -> Any:
    request = RequestFactory().get(path, query)
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    return request


def test_start_login_remembers_the_attempt_and_binds_it_with_state_nonce_and_pkce(
    fake_authgear: FakeAuthgear,
) -> None:
    request = request_with_session()
    url = login_flow.start_login(request, next_url="/next/", options={"x_page": "signup"})
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    attempt = login_flow.take_attempt(request_with_session_like(request, state=params["state"]))
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(attempt.code_verifier.encode()).digest()
    ).rstrip(b"=")
    assert params["code_challenge"] == challenge.decode()
    assert params["code_challenge_method"] == "S256"
    assert params["nonce"] == attempt.nonce and params["x_page"] == "signup"
    assert attempt.next_url == "/next/"


def request_with_session_like(original: Any, **query: str) -> Any:
    request = RequestFactory().get("/auth/callback/", query)
    request.session = original.session
    return request


def test_take_attempt_burns_the_state(fake_authgear: FakeAuthgear) -> None:
    request = request_with_session()
    url = login_flow.start_login(request, next_url=None, options={})
    state = parse_qs(urlsplit(url).query)["state"][0]
    login_flow.take_attempt(request_with_session_like(request, state=state))
    with pytest.raises(LoginAttemptError):
        login_flow.take_attempt(request_with_session_like(request, state=state))


def test_an_expired_attempt_is_refused(fake_authgear: FakeAuthgear, settings: Any) -> None:
    settings.AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT = 60
    request = request_with_session()
    url = login_flow.start_login(request, next_url=None, options={})
    state = parse_qs(urlsplit(url).query)["state"][0]
    import time_machine

    with time_machine.travel(time.time() + 61), pytest.raises(LoginAttemptError):
        login_flow.take_attempt(request_with_session_like(request, state=state))


def claims(fake: FakeAuthgear, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": fake.issuer, "aud": [fake.client_id], "sub": "s1", "iat": now, "exp": now + 300}
    return {**base, **changes}


def test_verify_id_token_uses_our_issuer_audience_keys_and_leeway(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    settings.AUTHGEAR_CLOCK_LEEWAY = 60
    now = int(time.time())
    token = fake_authgear.sign(claims(fake_authgear, nonce="n1"))
    assert login_flow.verify_id_token(token, nonce="n1")["sub"] == "s1"
    with pytest.raises(TokenValidationError, match="nonce"):
        login_flow.verify_id_token(token, nonce="n2")
    with pytest.raises(TokenValidationError, match="issuer"):
        login_flow.verify_id_token(fake_authgear.sign(claims(fake_authgear, iss="https://x")))
    with pytest.raises(TokenValidationError, match="audience"):
        login_flow.verify_id_token(fake_authgear.sign(claims(fake_authgear, aud=["other"])))
    expired = fake_authgear.sign(claims(fake_authgear, iat=now - 500, exp=now - 90))
    with pytest.raises(TokenValidationError, match="expired"):
        login_flow.verify_id_token(expired)
    assert login_flow.verify_id_token(expired, extra_leeway=31)["sub"] == "s1"


def attempt(**changes: Any) -> LoginAttempt:
    return LoginAttempt.start(redirect_uri="https://app.test/cb", next_url=None, **changes)


def test_check_reauthentication_rules(settings: Any) -> None:
    settings.AUTHGEAR_CLOCK_LEEWAY = 60
    now = 2_000_000_000.0
    reauth = attempt(max_age=300, expected_sub="s1")
    login_flow.check_reauthentication(reauth, {"sub": "s1", "auth_time": now - 360}, now=now)
    login_flow.check_reauthentication(attempt(), {"sub": "anyone"}, now=now)  # no rules
    for refused in (
        {"sub": "s2", "auth_time": now},
        {"sub": "s1", "auth_time": now - 361},
        {"sub": "s1"},
        {"sub": "s1", "auth_time": True},
    ):
        with pytest.raises(ReauthenticationFailed):
            login_flow.check_reauthentication(reauth, refused, now=now)


def test_the_login_result_is_handed_over_on_the_request_once() -> None:
    request = RequestFactory().get("/")
    assert login_flow.take_login_result(request) is None
    result = login_flow.LoginResult(
        tokens=None,  # type: ignore[arg-type]
        id_token_claims={},
        claims={},
        account=None,  # type: ignore[arg-type]
        created=False,
    )
    login_flow.record_login_result(request, result)
    assert login_flow.take_login_result(request) is result
    assert login_flow.take_login_result(request) is None


def test_the_user_object_carries_no_login_result(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    """The backend hands its result over on the request, not as an attribute of the user."""
    from authgear_django.signals import login_linked

    users: list[Any] = []
    login_linked.connect(lambda **kw: users.append(kw["user"]), weak=False, dispatch_uid="u")
    try:
        assert LoginFlow(Client(), fake_authgear).login(authgear_user).status_code == 302
    finally:
        login_linked.disconnect(dispatch_uid="u")
    (user,) = users
    assert not hasattr(user, "authgear_login_result")
    assert AuthgearLogin.objects.get().account.user == user

"""Every way a callback can fail: a clear page, the right status, nobody logged in.

State and provider failures; ID tokens and logging are in the ``test_callback_failures_*``
modules beside this one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearLogin
from authgear_django.store import SESSION_ATTEMPTS_KEY
from tests.callback_failure_helpers import assert_error_page, assert_nobody_logged_in
from tests.conftest import LoginFlow
from tests.fake_authgear import (
    CONNECT_TIMEOUT,
    CONNECTION_REFUSED,
    READ_TIMEOUT,
    FakeAuthgear,
    FakeUser,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_user_cancelling_at_authgear_shows_an_error_page_and_burns_the_state(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear
) -> None:
    url = login_flow.start()
    response = login_flow.finish(fake_authgear.deny(url))
    assert_error_page(response, 403, b"You cancelled signing in")
    assert SESSION_ATTEMPTS_KEY not in client.session
    assert_nobody_logged_in(client)


def test_other_authgear_errors_show_a_400_page(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear
) -> None:
    response = login_flow.finish(fake_authgear.deny(login_flow.start(), error="invalid_scope"))
    assert_error_page(response, 400, b"refused this sign-in request")
    assert_nobody_logged_in(client)


@pytest.mark.parametrize(
    "query",
    ["code=abc", "code=abc&state=", "code=abc&state=unknown-state", "code=abc&state=" + "x" * 5000],
)
def test_missing_or_unknown_state_is_refused(
    client: Client, fake_authgear: FakeAuthgear, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="django.security.authgear_django"):
        response = client.get(f"/auth/callback/?{query}")
    assert_error_page(response, 400, b"expired or was already used")
    assert any(r.name == "django.security.authgear_django" for r in caplog.records)
    assert fake_authgear.calls["token"] == 0
    assert_nobody_logged_in(client)


def test_tampered_state_is_refused(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    response = login_flow.finish(callback.replace("state=", "state=x"))
    assert_error_page(response, 400, b"expired or was already used")
    assert_nobody_logged_in(client)


def test_replayed_callback_is_refused(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    assert login_flow.finish(callback).status_code == 302
    attacker = Client()
    assert attacker.get(callback).status_code == 400
    assert login_flow.finish(callback).status_code == 400
    assert fake_authgear.calls["token"] == 1
    assert AuthgearLogin.objects.count() == 1


def test_callback_from_another_browser_is_refused(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    other = Client()
    assert other.get(callback).status_code == 400
    assert "_auth_user_id" not in other.session


def test_expired_login_attempt_is_refused(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    with time_machine.travel(time.time() - 3600, tick=False):
        url = login_flow.start()
    response = login_flow.finish(fake_authgear.authorize(url, authgear_user))
    assert_error_page(response, 400, b"expired")
    assert fake_authgear.calls["token"] == 0
    assert_nobody_logged_in(client)


def test_callback_without_code_is_refused(login_flow: LoginFlow, client: Client) -> None:
    from urllib.parse import parse_qs, urlsplit

    state = parse_qs(urlsplit(login_flow.start()).query)["state"][0]
    response = client.get(f"/auth/callback/?state={state}")
    assert_error_page(response, 400, b"expired or was already used")
    assert_nobody_logged_in(client)


def test_code_already_used_at_authgear_is_a_400(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    for entry in fake_authgear.codes.values():
        entry["used"] = True
    assert_error_page(login_flow.finish(callback), 400, b"expired or was already used")
    assert_nobody_logged_in(client)


def test_wrong_client_secret_is_a_502(
    login_flow: LoginFlow, client: Client, authgear_user: FakeUser, settings
) -> None:
    settings.AUTHGEAR_CLIENT_SECRET = "wrong"
    assert_error_page(login_flow.login(authgear_user), 502, b"unexpected answer")
    assert_nobody_logged_in(client)


@pytest.mark.parametrize(
    ("call", "failure", "status", "text"),
    [
        ("token", {"status": 500, "body": "<html>oops</html>"}, 502, b"unexpected answer"),
        ("token", {"status": 502, "body": "bad gateway"}, 502, b"unexpected answer"),
        ("token", {"status": 200, "body": "<html>not json</html>"}, 502, b"unexpected answer"),
        (
            "token",
            {"status": 200, "body": "[1, 2]", "content_type": "application/json"},
            502,
            b"unexpected",
        ),
        (
            "token",
            {"status": 200, "body": "{}", "content_type": "application/json"},
            502,
            b"unexpected",
        ),
        (
            "token",
            {
                "status": 429,
                "body": '{"error":"x_rate_limited"}',
                "content_type": "application/json",
                "headers": {"Retry-After": "30"},
            },
            503,
            b"busy",
        ),
        ("token", {"exception": CONNECT_TIMEOUT}, 504, b"did not answer in time"),
        ("token", {"exception": READ_TIMEOUT}, 504, b"did not answer in time"),
        ("token", {"exception": CONNECTION_REFUSED}, 503, b"cannot be reached"),
        ("userinfo", {"status": 500}, 502, b"unexpected answer"),
        ("userinfo", {"exception": READ_TIMEOUT}, 504, b"did not answer in time"),
        ("jwks", {"status": 503}, 502, b"unexpected answer"),
        (
            "jwks",
            {"status": 200, "body": '{"keys": "nope"}', "content_type": "application/json"},
            502,
            b"unexpected",
        ),
    ],
)
def test_provider_failures_during_the_callback(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    call: str,
    failure: dict[str, Any],
    status: int,
    text: bytes,
) -> None:
    url = login_flow.start()
    fake_authgear.fail(call, **failure)
    response = login_flow.finish(fake_authgear.authorize(url, authgear_user))
    assert_error_page(response, status, text)
    if status == 503 and "headers" in failure:
        assert response["Retry-After"] == "30"
    assert User.objects.count() == 0
    assert_nobody_logged_in(client)


def test_discovery_with_another_issuer_is_refused(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear
) -> None:
    fake_authgear.discovery_overrides["issuer"] = "https://authgear.test/"
    response = client.get("/auth/login/")
    assert_error_page(response, 502, b"not configured correctly")

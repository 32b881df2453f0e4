"""A failed callback logs no secret and no forged line, and sends ``user_login_failed``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from tests.callback_failure_helpers import assert_nobody_logged_in, tamper
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


def test_failures_never_log_secrets(
    login_flow: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    caplog: pytest.LogCaptureFixture,
    settings,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = login_flow.start()
    callback = fake_authgear.authorize(url, authgear_user)
    code = callback.split("code=")[1].split("&")[0]
    fake_authgear.fail(
        "token", status=400, body='{"error":"invalid_grant"}', content_type="application/json"
    )
    login_flow.finish(callback)
    fake_authgear.heal()
    fake_authgear.id_token_tamper = tamper(nonce="bad")
    login_flow.login(authgear_user)
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records
    for secret in (
        code,
        fake_authgear.client_secret,
        *fake_authgear.live_refresh_tokens(),
        *fake_authgear.access_tokens,
    ):
        assert secret not in text


FORGED_LINE = "2026-01-01 12:00:00 INFO authgear_django: user 1 (admin) logged in"


def lines_logged_by_views(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the HTTP glue logged (the views, and the error responses they render)."""
    glue = ("authgear_django/views.py", "authgear_django/responses.py")
    return [r.getMessage() for r in caplog.records if r.pathname.endswith(glue)]


@pytest.mark.parametrize("separator", ["\n", "\r\n", "\r", "\u2028", "\x85"])
@pytest.mark.parametrize("parameter", ["error", "error_description"])
def test_callback_error_parameters_cannot_forge_log_lines(
    login_flow: LoginFlow,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    separator: str,
    parameter: str,
) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    state = parse_qs(urlsplit(login_flow.start()).query)["state"][0]
    values = {"error": "access_denied", "error_description": "user cancelled"}
    values[parameter] += separator + FORGED_LINE
    caplog.set_level(logging.DEBUG)
    response = client.get("/auth/callback/?" + urlencode({**values, "state": state}))
    assert response.status_code in (400, 403)
    logged = lines_logged_by_views(caplog)
    assert any(FORGED_LINE in line for line in logged), logged
    for line in logged:
        assert line.splitlines() == [line], line
    assert_nobody_logged_in(client)


def test_a_provider_error_body_cannot_forge_log_lines(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json

    body = json.dumps({"error": "invalid_grant", "error_description": "gone\n" + FORGED_LINE})
    fake_authgear.fail("token", status=400, body=body, content_type="application/json")
    caplog.set_level(logging.DEBUG)
    response = login_flow.login(authgear_user)
    assert response.status_code == 400
    logged = lines_logged_by_views(caplog)
    assert any(FORGED_LINE in line for line in logged), logged
    for line in logged:
        assert line.splitlines() == [line], line
    assert_nobody_logged_in(client)


# --- Django's user_login_failed, on every failed callback --------------------------------------


@pytest.fixture
def failed_logins() -> Any:
    from django.contrib.auth.signals import user_login_failed

    received: list[dict[str, Any]] = []
    user_login_failed.connect(
        lambda **kw: received.append(kw), weak=False, dispatch_uid="failed_logins"
    )
    yield received
    user_login_failed.disconnect(dispatch_uid="failed_logins")


def test_a_cancelled_login_sends_user_login_failed_with_the_request(
    login_flow: LoginFlow, client: Client, failed_logins: list[dict[str, Any]]
) -> None:
    from urllib.parse import parse_qs, urlsplit

    state = parse_qs(urlsplit(login_flow.start()).query)["state"][0]
    response = client.get("/auth/callback/", {"error": "access_denied", "state": state})
    assert response.status_code == 403
    (sent,) = failed_logins
    assert sent["credentials"] == {
        "authgear_error": "access_denied",
        "authgear_failure": "AuthorizationDenied",
    }
    assert sent["request"] is response.wsgi_request


@pytest.mark.parametrize(
    "how", ["replayed state", "no code", "invalid_grant", "bad nonce", "userinfo down"]
)
def test_every_failed_callback_sends_user_login_failed_without_secrets(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    failed_logins: list[dict[str, Any]],
    how: str,
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    if how == "replayed state":
        login_flow.finish(callback)
        failed_logins.clear()
    elif how == "no code":
        callback = callback.replace("code=", "not_code=")
    elif how == "invalid_grant":
        fake_authgear.fail(
            "token",
            status=400,
            body='{"error": "invalid_grant"}',
            content_type="application/json",
        )
    elif how == "bad nonce":
        fake_authgear.id_token_tamper = tamper(nonce="another-nonce")
    else:
        fake_authgear.fail("userinfo", status=503)
    response = login_flow.finish(callback)
    assert response.status_code >= 400
    (sent,) = failed_logins
    credentials = sent["credentials"]
    assert set(credentials) == {"authgear_error", "authgear_failure"}
    text = repr(credentials)
    for secret in (
        callback,
        *callback.split("?", 1)[1].split("&"),
        fake_authgear.client_secret,
        *fake_authgear.access_tokens,
    ):
        assert secret not in text

"""Every way a callback can fail: a clear page, the right status, nobody logged in."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.store import SESSION_ATTEMPTS_KEY
from tests.conftest import LoginFlow
from tests.fake_authgear import (
    CONNECT_TIMEOUT,
    CONNECTION_REFUSED,
    READ_TIMEOUT,
    FakeAuthgear,
    FakeUser,
    apply_changes,
    rsa_key,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


def assert_nobody_logged_in(client: Client) -> None:
    assert "_auth_user_id" not in client.session
    assert AuthgearLogin.objects.count() == 0
    assert client.get("/private/").status_code == 302


def assert_error_page(response: Any, status: int, text: bytes) -> None:
    assert response.status_code == status
    assert text in response.content, response.content
    assert b"Try again" in response.content
    assert b'href="/auth/login/' in response.content


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


def tamper(**changes: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def apply(claims: dict[str, Any], header: dict[str, Any]) -> None:
        apply_changes(claims, header, changes)

    return apply


@pytest.mark.parametrize(
    "tampering",
    [
        tamper(iss="https://evil.example"),
        tamper(iss="https://authgear.test/"),
        tamper(aud=["someone-else"]),
        tamper(aud=["a1b2c3d4e5f60718", "other"]),  # several audiences and no azp
        tamper(azp="someone-else"),
        tamper(nonce="another-nonce"),
        tamper(nonce=None),
        tamper(sub=None),
        tamper(exp=int(time.time()) - 600, iat=int(time.time()) - 900),
        tamper(iat=int(time.time()) + 3600, exp=int(time.time()) + 4000),
        tamper(header_kid="unknown-kid"),
    ],
    ids=[
        "iss",
        "iss-slash",
        "aud",
        "multi-aud",
        "azp",
        "nonce",
        "no-nonce",
        "no-sub",
        "expired",
        "future-iat",
        "unknown-kid",
    ],
)
def test_invalid_id_tokens_are_refused(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    tampering: Callable[[dict[str, Any], dict[str, Any]], None],
) -> None:
    fake_authgear.id_token_tamper = tampering
    response = login_flow.login(authgear_user)
    assert_error_page(response, 400, b"could not verify your sign-in")
    assert User.objects.count() == 0 and AuthgearAccount.objects.count() == 0
    assert_nobody_logged_in(client)


def _swap_id_token(fake: FakeAuthgear, make: Callable[[dict[str, Any]], str]) -> None:
    """Replace the ID token of the next token response, keeping everything else genuine."""
    original = fake._issue

    def issue(grant: Any, *, nonce: str | None, with_refresh: bool) -> dict[str, Any]:
        body = original(grant, nonce=nonce, with_refresh=with_refresh)
        import jwt as pyjwt

        claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
        body["id_token"] = make(claims)
        return body

    fake._issue = issue  # type: ignore[method-assign]


@pytest.mark.parametrize("attack", ["alg-none", "hs256-with-client-secret", "other-key", "garbage"])
def test_forged_id_tokens_are_refused(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    attack: str,
) -> None:
    import jwt as pyjwt

    def forge(claims: dict[str, Any]) -> str:
        if attack == "alg-none":
            return pyjwt.encode(claims, None, algorithm="none", headers={"kid": fake_authgear.kid})
        if attack == "hs256-with-client-secret":
            return pyjwt.encode(
                claims,
                fake_authgear.client_secret,
                algorithm="HS256",
                headers={"kid": fake_authgear.kid},
            )
        if attack == "other-key":
            return fake_authgear.sign(claims, key=rsa_key("attacker"))
        return "not.a.jwt"

    _swap_id_token(fake_authgear, forge)
    response = login_flow.login(authgear_user)
    assert_error_page(response, 400, b"could not verify your sign-in")
    assert_nobody_logged_in(client)


def test_userinfo_about_another_user_is_refused(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    fake_authgear.userinfo_tamper = lambda claims: claims.update(sub="someone-else")
    assert_error_page(login_flow.login(authgear_user), 400, b"could not verify")
    assert_nobody_logged_in(client)


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

"""Every call to Authgear x every way it can fail: the outcome documented in the README table.

Call sites: discovery (login page), JWKS, token and userinfo (callback), revocation (logout),
refresh (the middleware, while the token is still valid and after it expired), and the JWKS
during a rotating refresh whose ID token has a new ``kid``. Faults: timeout, connection refused,
5xx, 429 with Retry-After, malformed JSON, an HTML page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, READ_TIMEOUT, FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager_refresh(settings: Any) -> None:
    """These tests are about eager refreshes (before expiry, on any request): the setting
    that keeps them (lazy refreshes: tests/test_refresh_lazy.py)."""
    settings.AUTHGEAR_EAGER_REFRESH = True


FAULTS: dict[str, dict[str, Any]] = {
    "timeout": {"exception": READ_TIMEOUT},
    "refused": {"exception": CONNECTION_REFUSED},
    "5xx": {"status": 500, "body": '{"error":"server_error"}', "content_type": "application/json"},
    "429": {
        "status": 429,
        "body": '{"error":"x_rate_limited"}',
        "content_type": "application/json",
        "headers": {"Retry-After": "30"},
    },
    "bad-json": {"status": 200, "body": '{"broken', "content_type": "application/json"},
    "html": {
        "status": 200,
        "body": "<html><body>Maintenance</body></html>",
        "content_type": "text/html",
    },
}

# The README's fault table, cell by cell: call site -> fault -> outcome.
LOGIN_PAGE = {
    "timeout": "504",
    "refused": "503",
    "5xx": "502",
    "429": "503 + Retry-After",
    "bad-json": "502",
    "html": "502",
}
EXPECTED: dict[str, dict[str, str]] = {
    "discovery": LOGIN_PAGE,
    "jwks": LOGIN_PAGE,
    "token": LOGIN_PAGE,
    "userinfo": LOGIN_PAGE,
    "revoke": dict.fromkeys(FAULTS, "logged out here"),
    "refresh": dict.fromkeys(FAULTS, "stays logged in; 503 after expiry + grace"),
}
EXPECTED["revoke"]["bad-json"] = EXPECTED["revoke"]["html"] = "logged out (200 = revoked)"
# Not in the README table yet: the JWKS while a refresh brings an ID token with a new kid.
EXPECTED["refresh-jwks"] = dict.fromkeys(
    FAULTS, "stays logged in on the new tokens; ID token verified later"
)


def status_of(outcome: str) -> int:
    return int(outcome.split()[0])


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("call", ["discovery", "jwks", "token", "userinfo"])
def test_login_and_callback_faults(fake_authgear: FakeAuthgear, call: str, fault: str) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    expected = EXPECTED[call][fault]
    if call == "discovery":
        fake_authgear.fail(call, **FAULTS[fault])
        response = flow.client.get("/auth/login/")
    else:
        url = flow.start()
        fake_authgear.fail(call, **FAULTS[fault])
        response = flow.finish(fake_authgear.authorize(url, FakeUser()))
    assert response.status_code == status_of(expected)
    assert b"Try again" in response.content
    if "Retry-After" in expected:
        assert response["Retry-After"] == "30"
    assert "_auth_user_id" not in flow.client.session
    assert AuthgearLogin.objects.count() == 0


@pytest.mark.parametrize("fault", FAULTS)
def test_revocation_faults_never_keep_anyone_logged_in(
    fake_authgear: FakeAuthgear, fault: str
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    fake_authgear.fail("revoke", **FAULTS[fault])
    response = flow.client.post("/auth/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://authgear.test/oauth2/end_session?")
    assert AuthgearLogin.objects.count() == 0
    assert flow.client.get("/private/").status_code == 302
    assert EXPECTED["revoke"][fault].startswith("logged out")


@pytest.mark.parametrize("fault", FAULTS)
def test_refresh_faults_keep_the_user_until_expiry_then_503(
    fake_authgear: FakeAuthgear, clock: Any, fault: str
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    cache.clear()  # also re-fetch discovery and keys during the refresh
    fake_authgear.fail("refresh", **FAULTS[fault])
    clock.shift(1800 - 30)
    assert flow.client.get("/private/").status_code == 200
    clock.shift(30 + 31)
    response = flow.client.get("/private/")
    assert response.status_code == 503
    assert b"Try again" in response.content
    assert AuthgearLogin.objects.count() == 1
    fake_authgear.heal()
    # A 429's Retry-After (30 s) is honoured: the second 429, at 1831 s, holds every refresh
    # back until 1861 s; other faults are retried after AUTHGEAR_REFRESH_RETRY_INTERVAL.
    clock.shift(31 if fault == "429" else 11)
    assert flow.client.get("/private/").status_code == 200
    assert EXPECTED["refresh"][fault].startswith("stays logged in")


@pytest.mark.parametrize("fault", FAULTS)
def test_jwks_faults_during_a_rotating_refresh_lose_no_token(
    fake_authgear: FakeAuthgear, clock: Any, fault: str
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    fake_authgear.rotation = True
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", **FAULTS[fault])
    clock.shift(1800)
    assert flow.client.get("/private/").status_code == 200
    login = AuthgearLogin.objects.get()
    assert [login.refresh_token] == fake_authgear.live_refresh_tokens()  # the rotated one
    fake_authgear.heal()
    clock.shift(1800)
    assert flow.client.get("/private/").status_code == 200  # refreshed with it
    assert fake_authgear.calls["refresh"] == 2
    assert [AuthgearLogin.objects.get().refresh_token] == fake_authgear.live_refresh_tokens()
    assert EXPECTED["refresh-jwks"][fault].startswith("stays logged in")

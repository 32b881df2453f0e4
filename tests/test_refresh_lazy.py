"""Lazy refreshes (``AUTHGEAR_EAGER_REFRESH = False``, the default): a login is proven alive by
the liveness check, and its access token is renewed only when code asks for it.

Also: the staleness bound (``AUTHGEAR_MAX_STALENESS``), the middleware's answer to a view's
uncaught ``NoAccessToken``, and the per-login spread of refresh times. Time is frozen with
time-machine; Authgear is faked at the HTTP boundary.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from authgear_django.api import get_access_token
from authgear_django.models import AuthgearLogin
from authgear_django.session_entry import SESSION_LOGIN_KEY, decode
from authgear_django.store import login_refresh_at, login_refresh_leeway
from tests import urls as test_urls
from tests.conftest import CLOCK_START, LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_refresh_lazy")]

#: The tokens the view below was given, in order (a page must never show a token).
GIVEN: list[str] = []


def token_view(request: HttpRequest) -> HttpResponse:
    """Calls an API the way a site does: asks for the access token (no try/except)."""
    GIVEN.append(get_access_token(request))
    return HttpResponse("called")


urlpatterns = [path("token/", token_view), *test_urls.urlpatterns]

RATE_LIMITED = {"status": 429, "body": '{"error":"x_rate_limited"}'}


@pytest.fixture(autouse=True)
def _forget_tokens() -> Any:
    GIVEN.clear()
    yield
    GIVEN.clear()


def sign_in(fake: FakeAuthgear, lifetime: int) -> LoginFlow:
    fake.access_token_lifetime = lifetime
    flow = LoginFlow(Client(), fake)
    assert flow.login(FakeUser()).status_code == 302
    return flow


def signed_in(flow: LoginFlow) -> bool:
    return "_auth_user_id" in flow.client.session


def test_lazy_pages_that_need_no_token_refresh_once_per_check(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """10 s tokens, a page every second for 10 minutes: eager would refresh every 5 s (120
    calls); lazy refreshes only when the check (every 300 s) needs a live token."""
    flow = sign_in(fake_authgear, 10)
    for second in range(1, 601):
        clock.shift(1)
        assert flow.client.get("/private/").status_code == 200, second
    assert fake_authgear.calls["refresh"] == 2  # at the checks of 300 s and 600 s
    assert fake_authgear.calls["userinfo"] == 1 + 2  # the login's own, then one per check
    assert signed_in(flow)
    assert AuthgearLogin.objects.get().refresh_count == 2


def test_the_eager_setting_restores_a_refresh_before_every_expiry(
    fake_authgear: FakeAuthgear, clock: Any, settings: Any
) -> None:
    settings.AUTHGEAR_EAGER_REFRESH = True
    flow = sign_in(fake_authgear, 10)
    for second in range(1, 61):
        clock.shift(1)
        assert flow.client.get("/private/").status_code == 200, second
    assert fake_authgear.calls["refresh"] == 12  # once per 5 s, as before lazy refreshes


def test_without_a_liveness_check_lazy_falls_back_to_eager(
    fake_authgear: FakeAuthgear, clock: Any, settings: Any
) -> None:
    """No check, no other proof that the login is alive: the refresh is that proof."""
    settings.AUTHGEAR_SESSION_CHECK_INTERVAL = None
    flow = sign_in(fake_authgear, 10)
    for _ in range(30):
        clock.shift(1)
        assert flow.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 6


def test_a_view_asking_for_the_token_always_gets_an_unexpired_one(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    flow = sign_in(fake_authgear, 10)
    for step in range(1, 41):
        clock.shift(3)
        url = "/token/" if step % 2 else "/private/"  # pages with and without a token
        assert flow.client.get(url).status_code == 200
    assert len(GIVEN) == 20
    for token in GIVEN:
        assert token in fake_authgear.access_tokens  # a token Authgear issued
    # each token was handed out before its expiry (the clock moved 6 s between two asks)
    asked_at = [CLOCK_START + 3 * step for step in range(1, 41, 2)]
    for token, at in zip(GIVEN, asked_at, strict=True):
        assert fake_authgear.access_tokens[token][1] > at
    # renewed on demand, no more than once per expiry: 20 asks over 120 s of 10 s tokens
    assert 10 <= fake_authgear.calls["refresh"] <= 20


def test_an_entry_written_before_the_liveness_check_is_refreshed_eagerly(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    flow = sign_in(fake_authgear, 10)
    login = AuthgearLogin.objects.get()
    session = flow.client.session
    expires = int(login.access_token_expires_at.timestamp())
    session[SESSION_LOGIN_KEY] = [login.pk.hex, login_refresh_at(login), expires]  # old format
    session.save()
    clock.shift(6)  # the token is due; a lazy entry would not come back before 300 s
    assert flow.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 1
    entry = decode(flow.client.session[SESSION_LOGIN_KEY])
    assert entry is not None and entry.check_at is not None  # rewritten: lazy from now on
    for _ in range(20):
        clock.shift(1)
        assert flow.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 1


def test_an_unproven_login_gets_503_after_the_staleness_bound_then_recovers(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Authgear's token endpoint down at the check (300 s): served on the session for
    AUTHGEAR_MAX_STALENESS (300 s) more, then 503 + Retry-After, never a logout."""
    flow = sign_in(fake_authgear, 10)
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(299)
    assert flow.client.get("/private/").status_code == 200
    for _ in range(60):  # 300 .. 595 s: the check cannot be made, the page is served
        clock.shift(5)
        assert flow.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] >= 25  # retried every AUTHGEAR_REFRESH_RETRY_INTERVAL
    clock.shift(6)  # 601 s: past interval + staleness
    response = flow.client.get("/private/")
    assert response.status_code == 503
    assert 1 <= int(response["Retry-After"]) <= 10
    clock.shift(3)
    response = flow.client.get("/private/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert json.loads(response.content)["error"] == "temporarily_unavailable"
    assert signed_in(flow) and AuthgearLogin.objects.count() == 1  # nothing lost
    fake_authgear.heal()
    clock.shift(10)
    assert flow.client.get("/private/").status_code == 200
    assert flow.client.get("/private/").status_code == 200
    assert AuthgearLogin.objects.get().refresh_count == 1


def test_a_view_asking_for_an_expired_token_authgear_cannot_renew_gets_503(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    flow = sign_in(fake_authgear, 10)
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(11)  # expired; the login was proven 11 s ago: pages are served
    assert flow.client.get("/private/").status_code == 200
    response = flow.client.get("/token/")
    assert response.status_code == 503
    assert b"Try again" in response.content
    assert 1 <= int(response["Retry-After"]) <= 10
    response = flow.client.get("/token/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert json.loads(response.content)["error"] == "temporarily_unavailable"
    assert GIVEN == []  # the expired token was never handed out
    assert signed_in(flow)
    fake_authgear.heal()
    clock.shift(10)
    assert flow.client.get("/token/").status_code == 200
    assert fake_authgear.access_tokens[GIVEN[0]][1] > time.time()


def test_a_view_asking_for_a_token_during_the_backoff_gets_its_retry_after(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    flow = sign_in(fake_authgear, 10)
    fake_authgear.fail(
        "refresh", **RATE_LIMITED, content_type="application/json", headers={"Retry-After": "40"}
    )
    clock.shift(11)
    response = flow.client.get("/token/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert 30 <= int(response["Retry-After"]) <= 40  # the backoff's, not a fixed 10 s
    assert fake_authgear.calls["refresh"] == 1
    assert flow.client.get("/private/").status_code == 200  # pages go on: proven 11 s ago
    assert flow.client.get("/token/").status_code == 503
    assert fake_authgear.calls["refresh"] == 1  # no call during the backoff


@pytest.mark.parametrize("api_caller", [False, True])
def test_a_view_asking_for_the_token_of_an_ended_login_logs_out(
    fake_authgear: FakeAuthgear, clock: Any, api_caller: bool
) -> None:
    flow = sign_in(fake_authgear, 10)
    for grant in fake_authgear.grants.values():
        grant.revoked = True  # ended at Authgear: the refresh answers invalid_grant
    clock.shift(11)
    extra = {"HTTP_ACCEPT": "application/json"} if api_caller else {}
    response = flow.client.get("/token/?page=2", **extra)
    if api_caller:
        assert response.status_code == 401
        body = json.loads(response.content)
        assert body["error"] == "login_expired"
        assert body["login_url"] == "/auth/login/?next=%2Ftoken%2F%3Fpage%3D2"
    else:
        assert response.status_code == 302
        assert response["Location"] == "/auth/login/?next=%2Ftoken%2F%3Fpage%3D2"
    assert not signed_in(flow) and AuthgearLogin.objects.count() == 0


def test_a_view_asking_for_a_token_without_an_authgear_login_sends_to_sign_in(
    fake_authgear: FakeAuthgear,
) -> None:
    response = Client().get("/token/")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Ftoken%2F"
    response = Client().get("/token/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "login_required"


def test_logins_made_together_refresh_at_spread_times(settings: Any) -> None:
    settings.AUTHGEAR_REFRESH_LEEWAY = 60
    expiry = datetime.fromtimestamp(CLOCK_START + 1800, tz=timezone.utc)

    def login(lifetime: int) -> AuthgearLogin:
        return AuthgearLogin(
            pk=uuid.uuid4(),
            encrypted_refresh_token="x",
            access_token_expires_at=expiry,
            access_token_lifetime=lifetime,
        )

    long_lived = [login(1800) for _ in range(200)]
    leeways = [login_refresh_leeway(each) for each in long_lived]
    assert all(60 <= leeway < 90 for leeway in leeways)  # 0-50 % of the leeway added
    assert len({login_refresh_at(each) for each in long_lived}) >= 25  # not in lockstep
    same = long_lived[0]
    assert login_refresh_leeway(same) == login_refresh_leeway(same)  # deterministic
    # never more than half the lifetime: a 10 s token is still refreshed once per expiry
    assert {login_refresh_leeway(login(10)) for _ in range(50)} == {5.0}
    assert all(login_refresh_leeway(login(100)) <= 50 for _ in range(50))

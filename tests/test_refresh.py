"""The token lifecycle: refresh, rotation, failures, the API helper, logout everywhere.

Time is controlled with time-machine (the fake Authgear and our code read the same clock).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import responses
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import AsyncClient, Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authgear_django.api import get_access_token, refresh_access_token
from authgear_django.models import AuthgearLogin
from authgear_django.refresh import Outcome, refresh_session_login
from authgear_django.signals import login_revoked, refresh_failed, tokens_refreshed
from authgear_django.store import login_refresh_at
from tests.conftest import CLOCK_START, LoginFlow, assert_session_entry
from tests.fake_authgear import CONNECTION_REFUSED, READ_TIMEOUT, FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager_refresh(settings: Any) -> None:
    """These tests are about eager refreshes (before expiry, on any request): the setting
    that keeps them (lazy refreshes: tests/test_refresh_lazy.py)."""
    settings.AUTHGEAR_EAGER_REFRESH = True


START = CLOCK_START


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    return login_flow


def refreshes(fake: FakeAuthgear) -> int:
    return fake.calls["refresh"]


def test_fresh_token_costs_no_query_and_no_call(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    clock.shift(60)
    calls_before = sum(fake_authgear.calls.values())
    with CaptureQueriesContext(connection) as ours:
        assert logged_in.client.get("/private/").status_code == 200
    assert sum(fake_authgear.calls.values()) == calls_before

    get_user_model().objects.create_user("plain", password="pw")
    plain = Client()
    plain.login(username="plain", password="pw")
    with CaptureQueriesContext(connection) as theirs:
        assert plain.get("/private/").status_code == 200
    assert len(ours) == len(theirs) == 2  # the session row and the user row, nothing else


def test_token_is_refreshed_within_the_leeway_before_the_view(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    old = AuthgearLogin.objects.get()
    due = login_refresh_at(old)
    assert due is not None
    # the leeway is 60 s plus this login's spread of up to 30 s
    assert START + 1800 - 90 <= due <= START + 1800 - 60
    clock.shift(due - START - 1)
    logged_in.client.get("/private/")
    assert refreshes(fake_authgear) == 0
    clock.shift(1)
    assert logged_in.client.get("/private/").status_code == 200
    assert refreshes(fake_authgear) == 1
    login = AuthgearLogin.objects.get()
    assert login.access_token != old.access_token
    assert login.refresh_token == old.refresh_token  # rotation off: the old one is kept
    assert login.refresh_count == 1 and login.last_refreshed_at is not None
    assert login.access_token_expires_at.timestamp() == due + 1800
    assert_session_entry(logged_in.client.session, login)
    logged_in.client.get("/private/")
    assert refreshes(fake_authgear) == 1


def test_rotation_stores_the_new_refresh_token(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.rotation = True
    old_refresh = AuthgearLogin.objects.get().refresh_token
    for expiry in range(3):
        clock.shift(1800)
        assert logged_in.client.get("/private/").status_code == 200
        assert refreshes(fake_authgear) == expiry + 1
    new_refresh = AuthgearLogin.objects.get().refresh_token
    assert new_refresh != old_refresh
    assert fake_authgear.live_refresh_tokens() == [new_refresh]


def test_short_lived_tokens_are_refreshed_once_per_expiry(
    fake_authgear: FakeAuthgear, clock: Any, authgear_user: FakeUser
) -> None:
    fake_authgear.access_token_lifetime = 10  # leeway becomes 5 s, not the default 60 s
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(authgear_user)
    for second in range(1, 31):
        clock.shift(1)
        assert flow.client.get("/private/").status_code == 200, second
    assert refreshes(fake_authgear) == 6  # at 5, 10, 15, 20, 25, 30 s: once per 5 s


def test_invalid_grant_logs_out_and_redirects_to_login(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    for grant in fake_authgear.grants.values():
        grant.revoked = True  # e.g. the user was disabled at Authgear
    clock.shift(1800)
    response = logged_in.client.get("/private/?tab=2")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Fprivate%2F%3Ftab%3D2"
    assert AuthgearLogin.objects.count() == 0
    assert "_auth_user_id" not in logged_in.client.session
    assert logged_in.client.get("/private/").status_code == 302


def test_invalid_grant_answers_json_401_to_api_callers(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.fail(
        "refresh", status=400, body='{"error":"invalid_grant"}', content_type="application/json"
    )
    clock.shift(1800)
    response = logged_in.client.get("/private/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    body = json.loads(response.content)
    assert body["error"] == "login_expired" and body["login_url"].startswith("/auth/login/")


@pytest.mark.parametrize(
    "failure",
    [
        {"exception": CONNECTION_REFUSED},
        {"exception": READ_TIMEOUT},
        {"status": 503},
        {"status": 200, "body": "<html>maintenance</html>"},
    ],
    ids=["refused", "timeout", "5xx", "html"],
)
def test_authgear_down_keeps_the_user_logged_in_until_the_token_really_expires(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    failure: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_authgear.fail("refresh", **failure)
    clock.shift(1800 - 30)  # refresh due, token still valid for 30 s
    with caplog.at_level(logging.WARNING, logger="authgear_django"):
        assert logged_in.client.get("/private/").status_code == 200
    assert any("refreshing login" in r.getMessage() for r in caplog.records)
    assert refreshes(fake_authgear) == 1
    clock.shift(5)
    assert logged_in.client.get("/private/").status_code == 200
    assert refreshes(fake_authgear) == 1  # waits AUTHGEAR_REFRESH_RETRY_INTERVAL before retrying
    clock.shift(10)
    assert logged_in.client.get("/private/").status_code == 200
    assert refreshes(fake_authgear) == 2  # retried on a later request
    clock.shift(60)  # now past expiry + grace
    response = logged_in.client.get("/private/")
    assert response.status_code == 503
    assert b"Try again" in response.content and response["Retry-After"]
    assert AuthgearLogin.objects.count() == 1  # nothing lost
    fake_authgear.heal()
    clock.shift(10)
    assert logged_in.client.get("/private/").status_code == 200
    assert AuthgearLogin.objects.get().refresh_count == 1


def test_a_429_on_a_due_refresh_waits_for_the_backoff_then_refreshes(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """A 429 is not retried after AUTHGEAR_REFRESH_RETRY_INTERVAL like an outage: the shared
    backoff holds the refresh back as late as the token allows, so no call in between."""
    fake_authgear.fail(
        "refresh", status=429, body='{"error":"x_rate_limited"}', content_type="application/json"
    )
    clock.shift(1800 - 30)  # refresh due, token still valid for 30 s
    assert logged_in.client.get("/private/").status_code == 200
    assert refreshes(fake_authgear) == 1
    for _ in range(3):
        clock.shift(5)  # 1775..1785: the backoff is over, yet the token can wait (to >= 1815)
        assert logged_in.client.get("/private/").status_code == 200
    assert refreshes(fake_authgear) == 1
    clock.shift(60)  # past expiry + grace: the deferred retry is made, and is refused again
    response = logged_in.client.get("/private/")
    assert refreshes(fake_authgear) == 2
    assert response.status_code == 503
    assert 1 <= int(response["Retry-After"]) <= 5  # the new backoff, not a fixed 10 s
    assert AuthgearLogin.objects.count() == 1  # nothing lost
    fake_authgear.heal()
    clock.shift(10)  # the backoff is over
    assert logged_in.client.get("/private/").status_code == 200
    assert AuthgearLogin.objects.get().refresh_count == 1


def test_refreshed_id_token_of_another_user_ends_the_login(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(sub="someone-else")
    clock.shift(1800)
    assert logged_in.client.get("/private/").status_code == 302
    assert AuthgearLogin.objects.count() == 0


def test_a_rejected_refreshed_id_token_is_reported_and_its_refresh_token_revoked(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    events: list[dict[str, Any]] = []
    login_revoked.connect(lambda **kw: events.append(kw), weak=False, dispatch_uid="c")
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(sub="someone-else")
    try:
        clock.shift(1800)
        assert logged_in.client.get("/private/").status_code == 302
    finally:
        login_revoked.disconnect(dispatch_uid="c")
    assert [(e["reason"], e["revoked"]) for e in events] == [("id_token_invalid", True)]
    assert fake_authgear.live_refresh_tokens() == []  # its Authgear session is over too


def test_login_revoked_elsewhere_is_logged_out_at_the_next_refresh(
    logged_in: LoginFlow, clock: Any
) -> None:
    AuthgearLogin.objects.all().delete()
    clock.shift(1800)
    assert logged_in.client.get("/private/").status_code == 302
    assert "_auth_user_id" not in logged_in.client.session


def test_logout_is_not_blocked_by_a_due_refresh(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(4000)
    response = logged_in.client.post("/auth/logout/")
    assert response["Location"].startswith("https://authgear.test/oauth2/end_session")
    assert refreshes(fake_authgear) == 0


def test_signals_report_refreshes_and_failures(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    tokens_refreshed.connect(
        lambda **kw: events.append(("refreshed", kw)), weak=False, dispatch_uid="a"
    )
    refresh_failed.connect(lambda **kw: events.append(("failed", kw)), weak=False, dispatch_uid="b")
    try:
        clock.shift(1800)
        logged_in.client.get("/private/")
        fake_authgear.fail("refresh", status=500)
        clock.shift(1800)
        logged_in.client.get("/private/")
    finally:
        tokens_refreshed.disconnect(dispatch_uid="a")
        refresh_failed.disconnect(dispatch_uid="b")
    assert [name for name, _ in events] == ["refreshed", "failed"]
    assert events[0][1]["rotated"] is False
    assert events[1][1]["fatal"] is False


@pytest.mark.django_db(transaction=True)
def test_async_requests_are_refreshed_too(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    import asyncio

    async_client = AsyncClient()
    async_client.cookies = logged_in.client.cookies

    async def fetch() -> Any:
        return await async_client.get("/async-private/")

    assert asyncio.run(fetch()).status_code == 200
    assert refreshes(fake_authgear) == 0
    clock.shift(1800)
    response = asyncio.run(fetch())
    assert response.status_code == 200 and response.content == b"async private for jane"
    assert refreshes(fake_authgear) == 1
    # close the connection the request opened in asgiref's worker thread
    asyncio.run(sync_to_async(connections.close_all)())


def test_api_helper_sends_the_bearer_token_and_retries_once_after_a_401(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    seen: list[str] = []

    def api(request: Any) -> Any:
        token = request.headers["Authorization"][7:]
        seen.append(token)
        current = AuthgearLogin.objects.get().access_token
        if len(seen) == 1:
            return (401, {}, "expired")  # the API considers the first token revoked
        return (200, {}, f"data for {'current' if token == current else 'stale'} token")

    fake_authgear.mock.add_callback(responses.GET, "https://api.test/data", callback=api)
    response = logged_in.client.get("/api-call/")
    assert response.status_code == 200
    assert response.content == b"data for current token"
    assert refreshes(fake_authgear) == 1
    assert len(seen) == 2 and seen[0] != seen[1]


def test_logout_everywhere_ends_every_device(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    laptop, phone = LoginFlow(Client(), fake_authgear), LoginFlow(Client(), fake_authgear)
    laptop.login(authgear_user)
    phone.login(authgear_user)
    assert b"every device" in laptop.client.get("/auth/logout/everywhere/").content
    response = laptop.client.post("/auth/logout/everywhere/")
    assert response["Location"].startswith("https://authgear.test/oauth2/end_session")
    assert AuthgearLogin.objects.count() == 0
    assert fake_authgear.live_refresh_tokens() == []
    assert laptop.client.get("/private/").status_code == 302
    assert phone.client.get("/private/").status_code == 302


def test_the_login_follows_a_cycled_session_key(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    logged_in.client.get("/cycle-session/")
    new_key = logged_in.client.session.session_key
    assert AuthgearLogin.objects.get().session_key != new_key
    clock.shift(1800)
    assert logged_in.client.get("/private/").status_code == 200
    assert AuthgearLogin.objects.get().session_key == new_key


def _request_of(flow: LoginFlow) -> Any:
    request = RequestFactory().get("/")
    request.session = flow.client.session
    return request


def test_a_forced_refresh_for_a_token_already_replaced_calls_nobody(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    current = AuthgearLogin.objects.get().access_token
    request = _request_of(logged_in)
    assert refresh_access_token(request, rejected_access_token="an-older-one") == current
    assert refreshes(fake_authgear) == 0


def test_a_login_without_refresh_token_is_never_refreshed_even_when_forced(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    AuthgearLogin.objects.update(encrypted_refresh_token="")
    current = AuthgearLogin.objects.get().access_token
    assert refresh_access_token(_request_of(logged_in), rejected_access_token=current) == current
    assert refreshes(fake_authgear) == 0


def test_a_forced_refresh_replaces_an_unreadable_access_token(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    AuthgearLogin.objects.update(encrypted_access_token="not-a-ciphertext")
    new = refresh_access_token(_request_of(logged_in), rejected_access_token="whatever")
    assert new == AuthgearLogin.objects.get().access_token
    assert refreshes(fake_authgear) == 1


def test_an_oauth_error_other_than_invalid_grant_keeps_the_login(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    old = AuthgearLogin.objects.get().access_token
    clock.shift(1800 - 30)  # due, not yet expired
    fake_authgear.fail(
        "refresh", status=400, body='{"error":"invalid_request"}', content_type="application/json"
    )
    assert get_access_token(_request_of(logged_in)) == old
    assert refreshes(fake_authgear) == 1
    assert AuthgearLogin.objects.get().access_token == old


def test_a_pending_verification_with_no_id_token_left_is_cleared(logged_in: LoginFlow) -> None:
    AuthgearLogin.objects.update(id_token_unverified_since=timezone.now(), encrypted_id_token="")
    result = refresh_session_login(logged_in.client.session)
    assert result.outcome is Outcome.FRESH
    assert AuthgearLogin.objects.get().id_token_unverified_since is None


def test_a_pending_verification_of_an_unreadable_id_token_ends_the_login(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    AuthgearLogin.objects.update(
        id_token_unverified_since=timezone.now(), encrypted_id_token="not-a-ciphertext"
    )
    result = refresh_session_login(logged_in.client.session)
    assert result.outcome is Outcome.ENDED
    assert not AuthgearLogin.objects.exists()
    assert fake_authgear.calls["revoke"] == 0  # an unreadable login has no token to revoke

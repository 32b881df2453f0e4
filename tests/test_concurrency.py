"""Concurrent first logins of the same Authgear user (two tabs, two devices): one Django user."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests.bursts import request_burst
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _needs_row_locking_database() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises writers")


def test_simultaneous_first_logins_link_one_user(fake_authgear: FakeAuthgear) -> None:
    parallel = 4
    user = FakeUser(email="race@example.com")
    flows = [LoginFlow(Client(), fake_authgear) for _ in range(parallel)]
    callbacks = [fake_authgear.authorize(flow.start(), user) for flow in flows]
    # Authgear answers userinfo to all callbacks at the same moment, so that every callback
    # then finds no linked account and races to create one.
    barrier = threading.Barrier(parallel, timeout=10)
    fake_authgear.userinfo_tamper = lambda claims: barrier.wait()

    def finish(index: int) -> Any:
        try:
            return flows[index].finish(callbacks[index]).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(parallel) as pool:
        statuses = list(pool.map(finish, range(parallel)))

    assert statuses == [302] * parallel
    assert get_user_model().objects.count() == 1
    assert AuthgearAccount.objects.count() == 1
    assert AuthgearLogin.objects.count() == parallel
    for flow in flows:
        assert flow.client.get("/private/").status_code == 200


@pytest.mark.parametrize("rotation", [True, False], ids=["rotation-on", "rotation-off"])
def test_twenty_concurrent_requests_over_two_processes_make_one_refresh(
    settings: Any, rotation: bool
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from authgear_django.store import SESSION_LOGIN_KEY
    from tests.fake_authgear_server import serve_fake_authgear

    processes, threads_each = 2, 10
    with serve_fake_authgear() as fake:
        settings.AUTHGEAR_ENDPOINT = fake.endpoint
        settings.DEBUG = True  # http endpoint on loopback
        fake.rotation = rotation
        fake.refresh_latency = 0.3  # a slow Authgear: every request is queued before it answers
        flow = LoginFlow(Client(), fake)
        assert flow.login(FakeUser()).status_code == 302
        original_refresh_token = AuthgearLogin.objects.get().refresh_token

        # The access token has just expired (in the record and in the session's copy).
        expired = timezone.now() - timedelta(seconds=1)
        AuthgearLogin.objects.update(access_token_expires_at=expired)
        session = flow.client.session
        login_id = session[SESSION_LOGIN_KEY][0]
        session[SESSION_LOGIN_KEY] = [login_id, expired.timestamp(), expired.timestamp()]
        session.save()
        cookies = {name: morsel.value for name, morsel in flow.client.cookies.items()}

        outcomes = request_burst(
            cookies, path="/private/", processes=processes, threads_each=threads_each
        )

        assert [status for status, _ in outcomes] == [200] * 20
        assert all(body.startswith("private for ") for _, body in outcomes)
        assert fake.calls["refresh"] == 1
        login = AuthgearLogin.objects.get()
        assert login.refresh_count == 1
        assert fake.live_refresh_tokens() == [login.refresh_token]
        assert (login.refresh_token != original_refresh_token) is rotation
        assert flow.client.get("/private/").status_code == 200  # nobody was logged out


def _make_the_check_due(flow: LoginFlow) -> dict[str, str]:
    """Back-date the last confirmation (row) and the session's check time: the check is due
    for every request of the burst. Returns the session cookies."""
    from datetime import timedelta

    from django.utils import timezone

    from authgear_django.store import SESSION_LOGIN_KEY

    AuthgearLogin.objects.update(last_checked_at=timezone.now() - timedelta(seconds=301))
    session = flow.client.session
    entry = list(session[SESSION_LOGIN_KEY])
    due = timezone.now().timestamp() - 1
    entry[1] = due  # refresh at: come back now (the token itself is fresh)
    entry += [None] * (7 - len(entry))
    entry[6] = due  # check at
    session[SESSION_LOGIN_KEY] = entry
    session.save()
    return {name: morsel.value for name, morsel in flow.client.cookies.items()}


@pytest.mark.parametrize("ended", [False, True], ids=["alive", "ended-at-authgear"])
def test_twenty_concurrent_requests_over_two_processes_make_one_session_check(
    settings: Any, ended: bool
) -> None:
    import time

    from tests.fake_authgear_server import serve_fake_authgear

    with serve_fake_authgear() as fake:
        settings.AUTHGEAR_ENDPOINT = fake.endpoint
        settings.DEBUG = True  # http endpoint on loopback
        user = FakeUser()
        flow = LoginFlow(Client(), fake)
        assert flow.login(user).status_code == 302
        assert fake.calls["userinfo"] == 1  # the login's
        checked_before = AuthgearLogin.objects.get().last_checked_at
        # a slow Authgear: every request is queued behind the one check before it answers
        fake.userinfo_tamper = lambda claims: time.sleep(0.3)
        if ended:
            fake.end_sessions_of(user)
        cookies = _make_the_check_due(flow)

        outcomes = request_burst(cookies, path="/private/", processes=2, threads_each=10)

        assert fake.calls["userinfo"] == 2  # one check for twenty requests
        assert fake.calls["refresh"] == 0
        if ended:
            assert [status for status, _ in outcomes] == [302] * 20
            assert AuthgearLogin.objects.count() == 0
            assert fake.calls["revoke"] == 0
        else:
            assert [status for status, _ in outcomes] == [200] * 20
            login = AuthgearLogin.objects.get()
            assert login.last_checked_at is not None and checked_before is not None
            assert login.last_checked_at > checked_before

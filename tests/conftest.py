from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.core.cache import cache
from django.test import Client

from tests.fake_authgear import FakeAuthgear, FakeUser


@pytest.fixture(autouse=True)
def _no_secret_leaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test after which a log record or a received page contains a secret."""
    from django.test.client import AsyncClient, Client

    from tests import leak_guard

    leak_guard.SECRETS.clear()
    handler = leak_guard.RecordingHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    pages: list[str] = []

    def recording(original: Any) -> Any:
        def request(self: Any, **request: Any) -> Any:
            response = original(self, **request)
            if not getattr(response, "streaming", False):
                pages.append(response.content.decode("utf-8", "replace"))
            return response

        return request

    def recording_async(original: Any) -> Any:
        async def request(self: Any, **request: Any) -> Any:
            response = await original(self, **request)
            if not getattr(response, "streaming", False):
                pages.append(response.content.decode("utf-8", "replace"))
            return response

        return request

    monkeypatch.setattr(Client, "request", recording(Client.request))
    monkeypatch.setattr(AsyncClient, "request", recording_async(AsyncClient.request))
    try:
        yield
    finally:
        root.removeHandler(handler)
    found = leak_guard.leaks(handler.texts + pages)
    assert not found, f"secrets leaked into logs or pages: {found}"


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Each test starts with an empty cache and no per-process memory of provider fetches."""
    from authgear_django.client import reset_process_memory

    cache.clear()
    reset_process_memory()
    yield
    cache.clear()
    reset_process_memory()


CLOCK_START = 1_900_000_000  # a fixed instant, well clear of real time


@pytest.fixture
def clock() -> Iterator[Any]:
    """Frozen time (ours and the fake Authgear's); ``clock.shift(seconds)`` moves it."""
    import time_machine

    with time_machine.travel(CLOCK_START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def fake_authgear() -> Iterator[FakeAuthgear]:
    """Authgear faked at the HTTP boundary; any other outgoing request fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeAuthgear(mock)


@pytest.fixture
def authgear_user() -> FakeUser:
    return FakeUser()


class LoginFlow:
    """Drive the browser side of a login: our login view → fake Authgear → our callback."""

    def __init__(self, client: Client, fake: FakeAuthgear) -> None:
        self.client = client
        self.fake = fake

    def start(self, query: str = "") -> str:
        response = self.client.get("/auth/login/" + (f"?{query}" if query else ""))
        assert response.status_code == 302, response.content
        return str(response["Location"])

    def finish(self, callback_url: str, **extra: Any) -> Any:
        return self.client.get(callback_url, **extra)

    def login(self, user: FakeUser, query: str = "") -> Any:
        return self.finish(self.fake.authorize(self.start(query), user))


@pytest.fixture
def login_flow(client: Client, fake_authgear: FakeAuthgear) -> LoginFlow:
    return LoginFlow(client, fake_authgear)


def assert_session_entry(session: Any, login: Any, *, check_interval: int | None = 300) -> None:
    """The session's entry for ``login``: its id, the token's expiry, the next liveness check,
    and a refresh time that is the earlier of "leeway before expiry" and that check."""
    import math

    from authgear_django.session_entry import decode
    from authgear_django.store import SESSION_LOGIN_KEY

    entry = decode(session[SESSION_LOGIN_KEY])
    assert entry is not None and entry.login_id == login.pk.hex
    expires = int(login.access_token_expires_at.timestamp())
    assert entry.expires_at == expires
    due = [expires - 60]
    if check_interval is not None:
        assert entry.check_at == math.ceil(login.last_checked_at.timestamp() + check_interval)
        due.append(entry.check_at)
    assert entry.refresh_at == min(due)

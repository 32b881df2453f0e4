"""Discovery and JWKS caching, key rotation, issuer checks: through real logins."""

from __future__ import annotations

import pytest
from django.test import Client

from authgear_django.provider import get_client
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


def test_discovery_and_jwks_are_fetched_once_and_shared(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    for _ in range(3):
        assert LoginFlow(Client(), fake_authgear).login(authgear_user).status_code == 302
    assert fake_authgear.calls["discovery"] == 1
    assert fake_authgear.calls["jwks"] == 1


def test_discovery_is_fetched_again_after_its_ttl(fake_authgear: FakeAuthgear, settings) -> None:
    import time_machine

    settings.AUTHGEAR_DISCOVERY_CACHE_TTL = 60
    with time_machine.travel(0, tick=False) as traveller:
        get_client().metadata()
        traveller.shift(59)
        get_client().metadata()
        assert fake_authgear.calls["discovery"] == 1
        traveller.shift(2)
        get_client().metadata()
    assert fake_authgear.calls["discovery"] == 2


def test_rotated_signing_key_is_picked_up_with_one_refetch(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    LoginFlow(Client(), fake_authgear).login(authgear_user)
    fake_authgear.rotate_signing_key()
    response = LoginFlow(Client(), fake_authgear).login(authgear_user)
    assert response.status_code == 302
    assert fake_authgear.calls["jwks"] == 2


def test_unknown_kids_refetch_at_most_once_per_cooldown(
    fake_authgear: FakeAuthgear,
) -> None:
    client = get_client()
    assert client.signing_key("nope-1") is None
    assert client.signing_key("nope-2") is None
    assert client.signing_key("nope-3") is None
    assert fake_authgear.calls["jwks"] == 2  # first fetch + one forced refetch


def test_endpoint_with_trailing_slash_matches_the_bare_issuer(
    fake_authgear: FakeAuthgear, settings
) -> None:
    settings.AUTHGEAR_ENDPOINT = "https://authgear.test/"
    assert get_client().metadata().issuer == "https://authgear.test"


def test_every_call_has_a_timeout(fake_authgear: FakeAuthgear, settings, monkeypatch) -> None:
    import requests

    seen: list[object] = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs.get("timeout"))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    settings.AUTHGEAR_HTTP_TIMEOUT = 2.5
    LoginFlow(Client(), fake_authgear).login(FakeUser())
    assert seen and all(timeout == 2.5 for timeout in seen)


def test_a_broken_cache_does_not_break_login(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, settings
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    settings.AUTHGEAR_CACHE_ALIAS = "broken"
    assert LoginFlow(Client(), fake_authgear).login(authgear_user).status_code == 302

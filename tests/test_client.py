"""Discovery and JWKS caching, key rotation, issuer checks: through real logins."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.core.cache import cache
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.test import Client

from authgear_django.client import (
    FAILED_FETCH_COOLDOWN,
    JWKS_REFETCH_COOLDOWN,
    reset_process_memory,
)
from authgear_django.exceptions import ProviderTimeout
from authgear_django.provider import get_client
from tests.conftest import LoginFlow
from tests.fake_authgear import READ_TIMEOUT, FakeAuthgear, FakeUser

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


def test_a_token_without_kid_matches_only_a_single_published_key(
    fake_authgear: FakeAuthgear,
) -> None:
    """OIDC Core 10.1: without ``kid`` the key is unambiguous only when one key is published."""
    from authgear_django.exceptions import TokenValidationError

    client = get_client()
    assert client.signing_key(None) == fake_authgear.published_keys[0]
    fake_authgear.rotate_signing_key()  # now two keys are published
    cache.clear()
    from authgear_django.client import reset_process_memory

    reset_process_memory()
    with pytest.raises(TokenValidationError, match="several signing keys"):
        client.signing_key(None)


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


# --- amplification: forged kids, DummyCache, a failing cache, an outage, concurrency ---------

FORGED = 50
DUMMY_CACHE = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
FAILING_CACHE = {"BACKEND": "tests.test_client.UnreachableCache"}


class UnreachableCache(BaseCache):
    """A shared cache whose server is down: every operation raises, as redis-py's would."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        raise ConnectionError("cache server unreachable")

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        raise ConnectionError("cache server unreachable")

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        raise ConnectionError("cache server unreachable")

    def delete(self, key: Any, version: Any = None) -> bool:
        raise ConnectionError("cache server unreachable")

    def clear(self) -> None:
        raise ConnectionError("cache server unreachable")


@pytest.fixture(autouse=True)
def _cold_process() -> Iterator[None]:
    """Each test starts as a fresh process: no remembered documents, cooldowns or failures."""
    from authgear_django import bearer

    reset_process_memory()
    bearer._validators.clear()
    yield
    reset_process_memory()
    bearer._validators.clear()


@pytest.fixture(params=["dummy", "failing"])
def unhelpful_cache(request: pytest.FixtureRequest, settings: Any) -> str:
    """The app's cache alias is a DummyCache, or a shared cache whose get/set raise."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "authgear": DUMMY_CACHE if request.param == "dummy" else FAILING_CACHE,
    }
    settings.AUTHGEAR_CACHE_ALIAS = "authgear"
    return str(request.param)


def forged_access_token(fake: FakeAuthgear) -> str:
    """A really signed access token whose ``kid`` names no key Authgear publishes."""
    return fake.jwt_access_token(FakeUser(), header_kid="forged-" + secrets.token_hex(8))


def test_forged_access_tokens_cost_one_jwks_refetch_per_cooldown(
    fake_authgear: FakeAuthgear, unhelpful_cache: str, clock: Any
) -> None:
    def send_forged_tokens() -> None:
        for _ in range(FORGED):
            token = forged_access_token(fake_authgear)
            response = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 401  # never a 500, whatever the cache does

    send_forged_tokens()
    # The first load, then one refetch for the unknown kid; the other 49 tokens wait it out.
    assert fake_authgear.calls["jwks"] == 2
    assert fake_authgear.calls["discovery"] == 1
    clock.shift(JWKS_REFETCH_COOLDOWN + 1)
    send_forged_tokens()
    assert fake_authgear.calls["jwks"] == 3
    assert fake_authgear.calls["discovery"] == 1
    assert len(fake_authgear.mock.calls) == 4  # nothing else left the process


def test_forged_id_tokens_cost_one_jwks_refetch_per_cooldown(
    fake_authgear: FakeAuthgear, unhelpful_cache: str, clock: Any
) -> None:
    def log_in_with_forged_id_tokens() -> None:
        for _ in range(FORGED):
            forged_kid = "forged-" + secrets.token_hex(8)
            fake_authgear.id_token_tamper = lambda claims, header, kid=forged_kid: header.update(
                kid=kid
            )
            response = LoginFlow(Client(), fake_authgear).login(FakeUser())
            assert response.status_code == 400

    log_in_with_forged_id_tokens()
    assert fake_authgear.calls["jwks"] == 2
    assert fake_authgear.calls["discovery"] == 1
    clock.shift(JWKS_REFETCH_COOLDOWN + 1)
    log_in_with_forged_id_tokens()
    assert fake_authgear.calls["jwks"] == 3
    assert fake_authgear.calls["discovery"] == 1
    fake_authgear.id_token_tamper = None
    assert LoginFlow(Client(), fake_authgear).login(FakeUser()).status_code == 302


@pytest.mark.parametrize("document", ["discovery", "jwks"])
def test_an_outage_after_the_ttl_costs_one_fetch_per_cooldown_then_fails_fast(
    fake_authgear: FakeAuthgear, clock: Any, caplog: pytest.LogCaptureFixture, document: str
) -> None:
    get_client().jwks()  # discovery and keys cached
    fake_authgear.fail(document, exception=READ_TIMEOUT)
    clock.shift(3600 + 1)  # both TTLs have run out; Authgear does not answer
    failed_at = time.time()
    caplog.set_level(logging.WARNING, logger="authgear_django")
    for _ in range(20):
        with pytest.raises(ProviderTimeout):
            get_client().signing_key(fake_authgear.kid)
    assert fake_authgear.calls[document] == 2  # the cached fetch, then one failed attempt
    assert get_client().fetch_failed_at(document) == failed_at
    warnings = [r for r in caplog.records if f"{document} fetch failed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "ProviderTimeout" in warnings[0].getMessage()

    clock.shift(FAILED_FETCH_COOLDOWN + 1)
    for _ in range(20):
        with pytest.raises(ProviderTimeout):
            get_client().signing_key(fake_authgear.kid)
    assert fake_authgear.calls[document] == 3  # one retry per cooldown

    fake_authgear.heal()
    clock.shift(FAILED_FETCH_COOLDOWN + 1)
    assert get_client().signing_key(fake_authgear.kid) is not None
    assert get_client().fetch_failed_at(document) is None


def test_api_calls_during_a_jwks_outage_do_not_each_wait_for_authgear(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    person = FakeUser()
    LoginFlow(Client(), fake_authgear).login(person)  # links the Django user to the sub
    token = fake_authgear.jwt_access_token(person)
    assert Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    fake_authgear.fail("jwks", exception=READ_TIMEOUT)
    clock.shift(3600 + 1)
    for _ in range(20):  # new tokens (not yet validated); the validator keeps its known keys
        token = fake_authgear.jwt_access_token(person)
        assert Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert fake_authgear.calls["jwks"] == 2  # one failed attempt, not twenty


@pytest.mark.parametrize("cache_backend", ["locmem", "dummy"])
def test_concurrent_requests_for_a_missing_document_make_one_fetch(
    fake_authgear: FakeAuthgear, settings: Any, cache_backend: str
) -> None:
    if cache_backend == "dummy":
        settings.CACHES = {"default": DUMMY_CACHE}
    serve_jwks = fake_authgear.routes[("GET", "/oauth2/jwks")]

    def slow_jwks(request: Any) -> Any:
        time.sleep(0.3)  # an Authgear slow enough for every thread to ask meanwhile
        return serve_jwks(request)

    fake_authgear.mock.replace(
        responses.CallbackResponse("GET", fake_authgear.url("/oauth2/jwks"), callback=slow_jwks)
    )
    threads = 8
    start = threading.Barrier(threads)
    results: list[object] = []

    def ask() -> None:
        start.wait()
        try:
            results.append(get_client().jwks())
        except Exception as exc:  # recorded, so the assertion below names it
            results.append(exc)

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    assert len(results) == threads
    assert all(isinstance(result, dict) and result.get("keys") for result in results), results
    assert fake_authgear.calls["jwks"] == 1
    assert fake_authgear.calls["discovery"] == 1


def test_cache_errors_are_logged_once_per_cooldown_not_per_request(
    fake_authgear: FakeAuthgear, settings: Any, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = {"default": FAILING_CACHE}
    caplog.set_level(logging.WARNING, logger="authgear_django")
    for _ in range(10):
        assert get_client().signing_key(fake_authgear.kid) is not None
    assert len([r for r in caplog.records if "cache" in r.getMessage()]) == 1
    assert fake_authgear.calls["jwks"] == 1

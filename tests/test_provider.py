"""``authgear_django.provider.get_client``: the protocol client built from the current settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches

from authgear_django.client import reset_process_memory
from authgear_django.provider import get_client
from tests.fake_authgear import CLIENT_ID, CLIENT_SECRET, ENDPOINT, FakeAuthgear


def test_the_client_reflects_the_settings_at_call_time(settings: Any) -> None:
    client = get_client()
    assert (client.endpoint, client.client_id, client.client_secret) == (
        ENDPOINT,
        CLIENT_ID,
        CLIENT_SECRET,
    )
    settings.AUTHGEAR_ENDPOINT = "https://other.authgear.test/"
    settings.AUTHGEAR_HTTP_TIMEOUT = 2.5
    settings.AUTHGEAR_DISCOVERY_CACHE_TTL = 120
    settings.AUTHGEAR_JWKS_CACHE_TTL = 240
    client = get_client()
    assert client.endpoint == "https://other.authgear.test"  # the issuer has no trailing slash
    assert client.timeout == 2.5
    assert (client.discovery_ttl, client.jwks_ttl) == (120, 240)


def test_a_public_client_never_carries_the_configured_secret(settings: Any) -> None:
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "none"
    client = get_client()
    assert client.client_auth_method == "none" and client.client_secret == ""


@pytest.fixture
def authgear_cache(settings: Any) -> Any:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "authgear": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "authgear-only",
        },
    }
    settings.AUTHGEAR_CACHE_ALIAS = "authgear"
    yield caches["authgear"]
    caches["authgear"].clear()


def test_provider_documents_are_shared_through_the_configured_cache_alias(
    fake_authgear: FakeAuthgear, authgear_cache: Any
) -> None:
    """Every process shares discovery through ``AUTHGEAR_CACHE_ALIAS``, not the default cache."""
    assert get_client().metadata().issuer == ENDPOINT
    assert fake_authgear.calls["discovery"] == 1

    reset_process_memory()  # another process: only the shared cache is common
    caches["default"].clear()
    assert get_client().metadata().issuer == ENDPOINT
    assert fake_authgear.calls["discovery"] == 1  # read from the "authgear" cache

    reset_process_memory()
    authgear_cache.clear()
    get_client().metadata()
    assert fake_authgear.calls["discovery"] == 2

"""Django glue for the protocol core: an :class:`AuthgearClient` configured from ``conf``."""

from __future__ import annotations

from django.core.cache import caches

from authgear_django.client import AuthgearClient
from authgear_django.conf import conf


def get_client() -> AuthgearClient:
    """Build a client from the current settings (cheap: no I/O until a method is called)."""
    return AuthgearClient(
        endpoint=conf.AUTHGEAR_ENDPOINT,
        client_id=conf.AUTHGEAR_CLIENT_ID,
        client_secret=conf.AUTHGEAR_CLIENT_SECRET,
        client_auth_method=conf.AUTHGEAR_CLIENT_AUTH_METHOD,
        timeout=conf.AUTHGEAR_HTTP_TIMEOUT,
        cache=caches[conf.AUTHGEAR_CACHE_ALIAS],
        discovery_ttl=conf.AUTHGEAR_DISCOVERY_CACHE_TTL,
        jwks_ttl=conf.AUTHGEAR_JWKS_CACHE_TTL,
    )

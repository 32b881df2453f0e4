"""System checks: catch misconfiguration at start-up, not at a user's first login.

IDs are stable and listed in the README's catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from authgear_django.conf import conf

BACKEND_PATH = "authgear_django.backends.AuthgearBackend"


@checks.register(checks.Tags.security)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for name in ("AUTHGEAR_ENDPOINT", "AUTHGEAR_CLIENT_ID", "AUTHGEAR_CLIENT_SECRET"):
        value = getattr(settings, name, None)
        if not isinstance(value, str) or not value.strip():
            messages.append(
                checks.Error(
                    f"{name} is missing or blank.",
                    hint=f"Set {name} to the value shown for your application in the portal.",
                    id="authgear_django.E001",
                )
            )
    try:
        conf.AUTHGEAR_HTTP_TIMEOUT  # noqa: B018 - the property validates
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(str(exc), id="authgear_django.E002"))

    if not any(_is_our_backend(path) for path in settings.AUTHENTICATION_BACKENDS):
        messages.append(
            checks.Error(
                "authgear_django's backend is not in AUTHENTICATION_BACKENDS.",
                hint=f"Add '{BACKEND_PATH}' to AUTHENTICATION_BACKENDS.",
                id="authgear_django.E003",
            )
        )

    endpoint = getattr(settings, "AUTHGEAR_ENDPOINT", None)
    if isinstance(endpoint, str) and endpoint.strip():
        parts = urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            messages.append(
                checks.Error(
                    "AUTHGEAR_ENDPOINT is not an absolute URL.",
                    hint="Use the project's origin, e.g. https://myapp.authgear.cloud",
                    id="authgear_django.E004",
                )
            )
        elif parts.path.strip("/") or parts.query:
            messages.append(
                checks.Error(
                    "AUTHGEAR_ENDPOINT must be an origin without a path or query.",
                    hint="Authgear's issuer is the bare origin, e.g. https://myapp.authgear.cloud",
                    id="authgear_django.E005",
                )
            )
        elif parts.scheme != "https" and not settings.DEBUG:
            messages.append(
                checks.Warning(
                    "AUTHGEAR_ENDPOINT does not use https while DEBUG is off.",
                    hint="Tokens would cross the network in clear text; use https in production.",
                    id="authgear_django.W001",
                )
            )
    messages.extend(_check_middleware())
    messages.extend(_check_sessions_and_cache())
    messages.extend(_check_roles_and_keys())
    return messages


MIDDLEWARE_PATH = "authgear_django.middleware.TokenRefreshMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _subclass_index(class_path: str, candidate_paths: Sequence[str]) -> int:
    """Index of the first middleware that is ``class_path`` or a subclass of it, else -1."""
    try:
        target = import_string(class_path)
    except ImportError:
        return -1
    for index, path in enumerate(candidate_paths):
        try:
            candidate = import_string(path)
        except ImportError:
            continue
        if isinstance(candidate, type) and issubclass(candidate, target):
            return index
    return -1


def _refresh_middleware_installed() -> bool:
    return _subclass_index(MIDDLEWARE_PATH, list(settings.MIDDLEWARE)) >= 0


def _check_middleware() -> list[checks.CheckMessage]:
    middleware = list(settings.MIDDLEWARE)
    ours = _subclass_index(MIDDLEWARE_PATH, middleware)
    if ours < 0:
        return []
    for required in (SESSION_MIDDLEWARE, AUTH_MIDDLEWARE):
        index = _subclass_index(required, middleware)
        if index < 0 or index > ours:
            return [
                checks.Error(
                    f"{MIDDLEWARE_PATH} must come after {required.rsplit('.', 1)[1]}.",
                    hint="It reads the session and logs users out: place it after "
                    "SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE.",
                    id="authgear_django.E006",
                )
            ]
    return []


def _check_sessions_and_cache() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if conf.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        messages.append(
            checks.Warning(
                "The signed_cookies session engine keeps sessions in the browser.",
                hint="Login attempts (PKCE verifier, nonce) would be readable in the cookie, and "
                "sessions could not be ended from the server (logout everywhere, admin "
                "revoke). Use the db, cache or cached_db engine.",
                id="authgear_django.W002",
            )
        )
    alias = conf.AUTHGEAR_CACHE_ALIAS
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        messages.append(
            checks.Error(
                f"AUTHGEAR_CACHE_ALIAS {alias!r} is not in CACHES.",
                hint="Name a cache from CACHES, e.g. 'default'.",
                id="authgear_django.E007",
            )
        )
    elif _is_dummy_cache(str(caches[alias].get("BACKEND", ""))):
        messages.append(
            checks.Warning(
                f"The {alias!r} cache (discovery and JWKS) is a DummyCache: it keeps nothing.",
                hint="Discovery and keys cannot be shared between processes, so every worker "
                "fetches them itself (each process still keeps its own copy and its own refetch "
                "cooldown), and opaque-token answers are not cached at all. Point "
                "AUTHGEAR_CACHE_ALIAS at a real cache (Redis, Memcached; LocMemCache for one "
                "process).",
                id="authgear_django.W006",
            )
        )
    elif not settings.DEBUG and "locmem" in str(caches[alias].get("BACKEND", "")).lower():
        messages.append(
            checks.Warning(
                f"The {alias!r} cache (discovery and JWKS) is per process (LocMemCache).",
                hint="With several workers each fetches discovery and keys itself; point "
                "AUTHGEAR_CACHE_ALIAS at a shared cache (Redis, Memcached). Fine for one process.",
                id="authgear_django.W005",
            )
        )
    return messages


DUMMY_CACHE_PATH = "django.core.cache.backends.dummy.DummyCache"


def _is_dummy_cache(backend_path: str) -> bool:
    """The backend is Django's DummyCache or a subclass (both silently keep nothing)."""
    if backend_path == DUMMY_CACHE_PATH:
        return True
    try:
        backend = import_string(backend_path)
    except ImportError:
        return False
    from django.core.cache.backends.dummy import DummyCache

    return isinstance(backend, type) and issubclass(backend, DummyCache)


def _check_roles_and_keys() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if _refresh_middleware_installed():
        try:
            scopes = conf.AUTHGEAR_SCOPES.split()
        except ImproperlyConfigured:
            scopes = []
        if "offline_access" not in scopes:
            messages.append(
                checks.Warning(
                    "TokenRefreshMiddleware is installed but AUTHGEAR_SCOPES lacks offline_access.",
                    hint="Without offline_access Authgear issues no refresh token, so nothing can "
                    "be refreshed. Add it to AUTHGEAR_SCOPES or remove the middleware.",
                    id="authgear_django.W003",
                )
            )
    if conf.token_keys_derived_from_secret_key and not settings.DEBUG:
        messages.append(
            checks.Warning(
                "Stored tokens are encrypted with a key derived from SECRET_KEY.",
                hint="Set AUTHGEAR_TOKEN_ENCRYPTION_KEYS from your secret store, so rotating "
                "SECRET_KEY and rotating the token key are separate decisions.",
                id="authgear_django.W004",
            )
        )
    try:
        conf.AUTHGEAR_ROLE_GROUPS  # noqa: B018 - the property validates
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(str(exc), id="authgear_django.E008"))
    return messages


def _is_our_backend(path: str) -> bool:
    if path == BACKEND_PATH:
        return True
    try:
        backend = import_string(path)
    except ImportError:
        return False
    from authgear_django.backends import AuthgearBackend

    return isinstance(backend, type) and issubclass(backend, AuthgearBackend)

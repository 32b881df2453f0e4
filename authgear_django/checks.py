"""System checks: catch misconfiguration at start-up, not at a user's first login.

IDs are stable and listed in docs/reference/system-checks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig, apps
from django.core import checks
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from authgear_django.client import CLIENT_AUTH_NONE
from authgear_django.conf import conf
from authgear_django.exceptions import AuthgearError

BACKEND_PATH = "authgear_django.backends.AuthgearBackend"


@checks.register(checks.Tags.security)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    # Each setting's rule lives in its conf property; the checks report what it raises at use.
    messages: list[checks.CheckMessage] = [
        checks.Error(str(error), hint=error.hint, id=error.check_id) for error in conf.problems()
    ]

    if not any(_is_our_backend(path) for path in conf.AUTHENTICATION_BACKENDS):
        messages.append(
            checks.Error(
                "authgear_django's backend is not in AUTHENTICATION_BACKENDS.",
                hint=f"Add '{BACKEND_PATH}' to AUTHENTICATION_BACKENDS.",
                id="authgear_django.E003",
            )
        )

    if not conf.DEBUG and _endpoint_scheme() == "http":
        messages.append(
            checks.Warning(
                "AUTHGEAR_ENDPOINT does not use https while DEBUG is off.",
                hint="Tokens would cross the network in clear text; use https in production.",
                id="authgear_django.W001",
            )
        )
    messages.extend(_check_client_auth_method())
    messages.extend(_check_middleware())
    messages.extend(_check_sessions_and_cache())
    messages.extend(_check_roles_and_keys())
    messages.extend(_check_mozilla_leftovers())
    messages.extend(_check_admin_link())
    messages.extend(_check_login_url())
    return messages


def _endpoint_scheme() -> str | None:
    """The scheme of a valid ``AUTHGEAR_ENDPOINT``; ``None`` if invalid (E001/E004/E005)."""
    try:
        return urlsplit(conf.AUTHGEAR_ENDPOINT).scheme
    except ImproperlyConfigured:
        return None


def _check_client_auth_method() -> list[checks.CheckMessage]:
    try:
        method = conf.AUTHGEAR_CLIENT_AUTH_METHOD
    except ImproperlyConfigured:
        return []  # E009: its rule is in conf, reported with the others by conf.problems()
    messages: list[checks.CheckMessage] = []
    try:
        secret_is_set = bool(conf.AUTHGEAR_CLIENT_SECRET.strip())
    except ImproperlyConfigured:
        secret_is_set = True  # set, but not a string (its own rule reports that)
    if method == CLIENT_AUTH_NONE and secret_is_set:
        messages.append(
            checks.Error(
                'AUTHGEAR_CLIENT_AUTH_METHOD is "none" but AUTHGEAR_CLIENT_SECRET is set.',
                hint="A public client (Public Client, Cookie SSO, Native App) has no secret, so "
                "it is never sent. Remove AUTHGEAR_CLIENT_SECRET; or, for a Confidential Client, "
                "use client_secret_post or client_secret_basic.",
                id="authgear_django.E010",
            )
        )
    advertised = _auth_methods_in_known_discovery()
    if advertised and method not in advertised:
        messages.append(
            checks.Warning(
                f"Authgear's discovery does not list AUTHGEAR_CLIENT_AUTH_METHOD {method!r} in "
                f"token_endpoint_auth_methods_supported ({', '.join(advertised)}).",
                hint="Logins and refreshes will fail at the token endpoint. Pick a listed method "
                "(client_secret_basic needs Authgear from 2026-07-21 on; client_secret_post "
                "works everywhere). Run manage.py authgear_check to ask Authgear live.",
                id="authgear_django.W007",
            )
        )
    return messages


def _auth_methods_in_known_discovery() -> tuple[str, ...]:
    """The methods in the discovery document this deployment already fetched (shared cache or
    this process); ``()`` if none is known. Never fetches: checks run offline."""
    from authgear_django.provider import get_client

    try:
        metadata = get_client().cached_metadata()
    except (ImproperlyConfigured, InvalidCacheBackendError, AuthgearError, TypeError, ValueError):
        return ()  # a broken setting is reported by its own check
    return metadata.token_endpoint_auth_methods_supported if metadata is not None else ()


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
    return _subclass_index(MIDDLEWARE_PATH, conf.MIDDLEWARE) >= 0


def _check_middleware() -> list[checks.CheckMessage]:
    middleware = conf.MIDDLEWARE
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
    try:
        alias = conf.AUTHGEAR_CACHE_ALIAS
    except ImproperlyConfigured:
        return messages  # E007, from conf.problems()
    caches = conf.CACHES
    if _is_dummy_cache(str(caches[alias].get("BACKEND", ""))):
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
    elif not conf.DEBUG and "locmem" in str(caches[alias].get("BACKEND", "")).lower():
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
            scopes = ["offline_access"]  # unknown: the broken setting is reported by its rule
        if "offline_access" not in scopes:
            messages.append(
                checks.Warning(
                    "TokenRefreshMiddleware is installed but AUTHGEAR_SCOPES lacks offline_access.",
                    hint="Without offline_access Authgear issues no refresh token, so nothing can "
                    "be refreshed. Add it to AUTHGEAR_SCOPES or remove the middleware.",
                    id="authgear_django.W003",
                )
            )
    if conf.token_keys_derived_from_secret_key and not conf.DEBUG:
        messages.append(
            checks.Warning(
                "Stored tokens are encrypted with a key derived from SECRET_KEY.",
                hint="Set AUTHGEAR_TOKEN_ENCRYPTION_KEYS from your secret store, so rotating "
                "SECRET_KEY and rotating the token key are separate decisions.",
                id="authgear_django.W004",
            )
        )
    return messages


def _check_mozilla_leftovers() -> list[checks.CheckMessage]:
    """mozilla-django-oidc settings left behind look effective but are never read."""
    return [
        checks.Warning(
            f"{name} is a mozilla-django-oidc setting; authgear_django does not read it.",
            hint=f"Use {equivalent} instead, and delete {name}.",
            id="authgear_django.W008",
        )
        for name, equivalent in conf.leftover_mozilla_settings().items()
    ]


def _check_admin_link() -> list[checks.CheckMessage]:
    """The user admin should show each user's Authgear link (and its logins)."""
    if not apps.is_installed("django.contrib.admin"):
        return []
    from authgear_django.admin import user_admin_shows_link

    if user_admin_shows_link() is not False:
        return []  # shown, or no user admin registered at all
    return [
        checks.Warning(
            "The user admin does not show the Authgear link.",
            hint="List authgear_django after django.contrib.admin in INSTALLED_APPS (its "
            "user admin is then extended automatically), or add "
            "authgear_django.admin.AuthgearUserAdminMixin to your own UserAdmin.",
            id="authgear_django.W009",
        )
    ]


OUR_LOGIN_URL_NAME = "authgear_django:login"


def _check_login_url() -> list[checks.CheckMessage]:
    """``login_required`` and ``LoginRequiredMiddleware`` send visitors to ``LOGIN_URL``.

    Django's default (``/accounts/login/``) is usually a 404 in a project that logs in only
    through Authgear; with a password backend it may well be a real login page, so then quiet.
    """
    if _password_backend_installed() or _login_url_is_ours():
        return []
    return [
        checks.Warning(
            "LOGIN_URL is not authgear_django's login view, and no password backend "
            "(ModelBackend) is in AUTHENTICATION_BACKENDS.",
            hint=f'Set LOGIN_URL = "{OUR_LOGIN_URL_NAME}", so that login_required and '
            "LoginRequiredMiddleware send visitors to Authgear (and back to the page they "
            "asked for).",
            id="authgear_django.W011",
        )
    ]


def _login_url_is_ours() -> bool:
    """``LOGIN_URL`` (a URL name, path or URL) resolves to :class:`AuthgearLoginView`."""
    from django.shortcuts import resolve_url
    from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve

    from authgear_django.views import AuthgearLoginView

    try:
        path = urlsplit(str(resolve_url(conf.LOGIN_URL))).path
    except (NoReverseMatch, ValueError):
        return False
    prefix = get_script_prefix()  # reverse() adds it; resolve() expects the path without it
    if prefix != "/" and path.startswith(prefix):
        path = "/" + path[len(prefix) :]
    try:
        match = resolve(path)
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return isinstance(view_class, type) and issubclass(view_class, AuthgearLoginView)


def _password_backend_installed() -> bool:
    """A ``ModelBackend`` (or a password-login subclass): its login page may be ``LOGIN_URL``.

    OpenID Connect backends (ours, mozilla's) and ``RemoteUserBackend`` subclass it too, yet
    offer no login page.
    """
    from django.contrib.auth.backends import ModelBackend, RemoteUserBackend
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    for path in conf.AUTHENTICATION_BACKENDS:
        try:
            backend = import_string(path)
        except ImportError:
            continue
        if (
            isinstance(backend, type)
            and issubclass(backend, ModelBackend)
            and not issubclass(backend, (OIDCAuthenticationBackend, RemoteUserBackend))
        ):
            return True
    return False


def _is_our_backend(path: str) -> bool:
    if path == BACKEND_PATH:
        return True
    try:
        backend = import_string(path)
    except ImportError:
        return False
    from authgear_django.backends import AuthgearBackend

    return isinstance(backend, type) and issubclass(backend, AuthgearBackend)

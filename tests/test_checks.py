"""System checks: one ID per problem, from a production-grade baseline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core import checks
from django.core.cache.backends.dummy import DummyCache
from django.core.management import call_command
from django.test import override_settings
from django.urls import get_script_prefix, reverse_lazy, set_script_prefix

from authgear_django.admin import AuthgearUserAdminMixin
from authgear_django.checks import check_settings

ROOT = Path(__file__).resolve().parent.parent


class SilentCache(DummyCache):
    """A project's own no-op cache: W006 must see through the subclass."""


# A production-grade baseline: every test then changes one thing and expects one ID.
GOOD: dict[str, Any] = {
    "AUTHGEAR_TOKEN_ENCRYPTION_KEYS": ["a-key-from-the-secret-store"],
    "CACHES": {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/9",
        }
    },
}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "authgear_django.middleware.TokenRefreshMiddleware",
]


def messages(**overrides: object) -> list[checks.CheckMessage]:
    with override_settings(**{**GOOD, **overrides}):
        return check_settings()


def ids(**overrides: object) -> list[str]:
    return sorted(message.id or "" for message in messages(**overrides))


@pytest.mark.django_db
def test_good_configuration_is_silent() -> None:
    assert ids() == []
    with override_settings(**GOOD):
        call_command("check")


def test_check_ids_are_unique_and_stable() -> None:
    """Each ID is defined once: in checks.py, or (setting rules) as a constant in conf.py."""
    found = []
    for module in ("checks.py", "conf.py"):
        source = (ROOT / "authgear_django" / module).read_text()
        found += re.findall(r'"(authgear_django\.[EW]\d{3})"', source)
    assert len(found) == len(set(found)) == 21
    assert "authgear_django.W008" in found and "authgear_django.W009" in found
    assert "authgear_django.W011" in found


def test_every_check_is_registered_with_django() -> None:
    with override_settings(**{**GOOD, "AUTHGEAR_CLIENT_ID": ""}):
        found = [message.id for message in checks.run_checks(tags=[checks.Tags.security])]
    assert "authgear_django.E001" in found


def test_missing_backend_is_e003() -> None:
    assert ids(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]) == [
        "authgear_django.E003"
    ]
    assert ids(AUTHENTICATION_BACKENDS=["tests.custom_backend.CustomBackend"]) == []


def test_http_endpoint_in_production_is_w001() -> None:
    assert ids(AUTHGEAR_ENDPOINT="http://myapp.authgear.cloud") == ["authgear_django.W001"]
    assert ids(AUTHGEAR_ENDPOINT="http://127.0.0.1:9000", DEBUG=True) == []


def test_middleware_before_session_or_auth_is_e006() -> None:
    assert ids(MIDDLEWARE=MIDDLEWARE) == []
    assert ids(MIDDLEWARE=[MIDDLEWARE[2], MIDDLEWARE[0], MIDDLEWARE[1]]) == ["authgear_django.E006"]
    assert ids(MIDDLEWARE=[MIDDLEWARE[0], MIDDLEWARE[2], MIDDLEWARE[1]]) == ["authgear_django.E006"]
    assert ids(MIDDLEWARE=[MIDDLEWARE[0], MIDDLEWARE[2]]) == ["authgear_django.E006"]
    subclassed = [MIDDLEWARE[0], "tests.custom_backend.CustomAuthMiddleware", MIDDLEWARE[2]]
    assert ids(MIDDLEWARE=subclassed) == []


def test_cookie_sessions_are_w002() -> None:
    engine = "django.contrib.sessions.backends.signed_cookies"
    assert ids(SESSION_ENGINE=engine) == ["authgear_django.W002"]


def test_refresh_middleware_without_offline_access_is_w003() -> None:
    assert ids(MIDDLEWARE=MIDDLEWARE, AUTHGEAR_SCOPES="openid email") == ["authgear_django.W003"]
    assert ids(AUTHGEAR_SCOPES="openid email", MIDDLEWARE=MIDDLEWARE[:2]) == []


def test_keys_derived_from_secret_key_in_production_is_w004() -> None:
    assert ids(AUTHGEAR_TOKEN_ENCRYPTION_KEYS=None) == ["authgear_django.W004"]
    assert ids(AUTHGEAR_TOKEN_ENCRYPTION_KEYS=None, DEBUG=True) == []


def test_per_process_cache_in_production_is_w005() -> None:
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert ids(CACHES=locmem) == ["authgear_django.W005"]
    assert ids(CACHES=locmem, DEBUG=True) == []


def test_dummy_cache_is_w006_in_production_and_in_debug() -> None:
    dummy = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    redis = GOOD["CACHES"]["default"]
    assert ids(CACHES={"default": dummy}) == ["authgear_django.W006"]
    assert ids(CACHES={"default": dummy}, DEBUG=True) == ["authgear_django.W006"]
    subclass = {"BACKEND": "tests.test_checks.SilentCache"}
    assert ids(CACHES={"default": subclass}) == ["authgear_django.W006"]
    # Only the alias the app uses counts.
    both = {"default": dummy, "authgear": redis}
    assert ids(CACHES=both, AUTHGEAR_CACHE_ALIAS="authgear") == []
    both = {"default": redis, "authgear": dummy}
    assert ids(CACHES=both, AUTHGEAR_CACHE_ALIAS="authgear") == ["authgear_django.W006"]


def test_w006_hint_explains_what_is_lost() -> None:
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    (message,) = messages(CACHES=dummy)
    assert isinstance(message, checks.Warning)
    assert "cannot be shared" in (message.hint or "")
    assert "own refetch cooldown" in (message.hint or "")


# --- W008: mozilla-django-oidc settings left behind -------------------------------------------


def test_leftover_mozilla_settings_are_w008_naming_our_setting() -> None:
    found = messages(
        OIDC_CREATE_USER=False,
        OIDC_RP_CLIENT_ID="a1b2c3d4e5f60718",
        OIDC_RP_CLIENT_SECRET="leftover-secret-value",
        OIDC_OP_TOKEN_ENDPOINT="https://myapp.authgear.cloud/oauth2/token",
        OIDC_USE_PKCE=True,
    )
    by_setting = {message.msg.split()[0]: message for message in found}
    assert {message.id for message in found} == {"authgear_django.W008"}
    assert sorted(by_setting) == [
        "OIDC_CREATE_USER",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_RP_CLIENT_ID",
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_USE_PKCE",
    ]
    assert "AUTHGEAR_CREATE_USERS" in (by_setting["OIDC_CREATE_USER"].hint or "")
    assert "AUTHGEAR_CLIENT_ID" in (by_setting["OIDC_RP_CLIENT_ID"].hint or "")
    assert "AUTHGEAR_CLIENT_SECRET" in (by_setting["OIDC_RP_CLIENT_SECRET"].hint or "")
    assert "AUTHGEAR_ENDPOINT" in (by_setting["OIDC_OP_TOKEN_ENDPOINT"].hint or "")
    assert "nothing" in (by_setting["OIDC_USE_PKCE"].hint or "")
    # Values are never shown: a leftover secret must not end up in the check output.
    assert not any("leftover-secret-value" in f"{m.msg} {m.hint}" for m in found)


def test_no_oidc_setting_no_w008() -> None:
    assert "authgear_django.W008" not in ids(LOGIN_REDIRECT_URL="/home/")


# --- W009: the user admin does not show the Authgear link -------------------------------------


@pytest.fixture
def user_admin() -> Iterator[dict[Any, Any]]:
    """The admin site's registry, restored afterwards (tests replace the user admin)."""
    registry = admin.site._registry
    user_model = get_user_model()
    original = registry[user_model]
    yield registry
    registry[user_model] = original


def test_user_admin_without_the_link_is_w009(user_admin: dict[Any, Any]) -> None:
    user_model = get_user_model()
    assert ids() == []  # authgear_django is listed after django.contrib.admin: link attached
    user_admin[user_model] = UserAdmin(user_model, admin.site)  # e.g. re-registered later
    (message,) = messages()
    assert message.id == "authgear_django.W009"
    assert "after django.contrib.admin" in (message.hint or "")
    assert "AuthgearUserAdminMixin" in (message.hint or "")


def test_user_admin_with_the_mixin_is_silent(user_admin: dict[Any, Any]) -> None:
    class ProjectUserAdmin(AuthgearUserAdminMixin, UserAdmin):  # type: ignore[misc]
        pass

    user_model = get_user_model()
    user_admin[user_model] = ProjectUserAdmin(user_model, admin.site)
    assert ids() == []


def test_no_user_admin_at_all_is_silent(user_admin: dict[Any, Any]) -> None:
    del user_admin[get_user_model()]
    assert ids() == []


# --- W011: LOGIN_URL does not lead to Authgear, and there is no password login ----------------

ONLY_AUTHGEAR = ["authgear_django.backends.AuthgearBackend"]
PASSWORD_LOGIN = "password_login"  # tests/urls.py: Django's LoginView at /accounts/login/


@pytest.mark.parametrize(
    "login_url", ["/accounts/login/", PASSWORD_LOGIN, "https://sso.example.com/login/", "nowhere"]
)
def test_login_url_elsewhere_without_password_backend_is_w011(login_url: str) -> None:
    (message,) = messages(AUTHENTICATION_BACKENDS=ONLY_AUTHGEAR, LOGIN_URL=login_url)
    assert isinstance(message, checks.Warning)
    assert message.id == "authgear_django.W011"
    assert 'LOGIN_URL = "authgear_django:login"' in (message.hint or "")


def test_django_default_login_url_without_password_backend_is_w011(
    settings: Any,
) -> None:
    del settings.LOGIN_URL  # Django's default: /accounts/login/
    assert ids(AUTHENTICATION_BACKENDS=ONLY_AUTHGEAR) == ["authgear_django.W011"]


@pytest.mark.parametrize(
    "login_url",
    [
        "authgear_django:login",
        "authgear_django:signup",  # the same view, opening Authgear's sign-up page
        "/auth/login/",
        "http://testserver/auth/login/",
        reverse_lazy("authgear_django:login"),
    ],
)
def test_login_url_of_our_login_view_is_silent(login_url: object) -> None:
    assert ids(AUTHENTICATION_BACKENDS=ONLY_AUTHGEAR, LOGIN_URL=login_url) == []


def test_login_url_name_under_a_script_prefix_is_silent() -> None:
    """reverse() adds the prefix (FORCE_SCRIPT_NAME, a sub-path deployment); resolve() must not
    see it."""
    before = get_script_prefix()
    set_script_prefix("/app/")
    try:
        assert ids(AUTHENTICATION_BACKENDS=ONLY_AUTHGEAR, LOGIN_URL="authgear_django:login") == []
        assert ids(AUTHENTICATION_BACKENDS=ONLY_AUTHGEAR, LOGIN_URL=PASSWORD_LOGIN) == [
            "authgear_django.W011"
        ]
    finally:
        set_script_prefix(before)


@pytest.mark.parametrize(
    "password_backend",
    [
        "django.contrib.auth.backends.ModelBackend",
        "django.contrib.auth.backends.AllowAllUsersModelBackend",  # a subclass counts
    ],
)
def test_login_url_elsewhere_with_a_password_backend_is_silent(password_backend: str) -> None:
    """A password login page may rightly be LOGIN_URL (e.g. the admin's staff log in there)."""
    backends = [*ONLY_AUTHGEAR, password_backend]
    assert ids(AUTHENTICATION_BACKENDS=backends, LOGIN_URL=PASSWORD_LOGIN) == []


def test_oidc_and_remote_user_backends_are_not_password_backends() -> None:
    """They subclass ModelBackend too, yet offer no login page of their own."""
    backends = [
        "tests.custom_backend.CustomBackend",
        "mozilla_django_oidc.auth.OIDCAuthenticationBackend",
        "django.contrib.auth.backends.RemoteUserBackend",
    ]
    assert ids(AUTHENTICATION_BACKENDS=backends, LOGIN_URL=PASSWORD_LOGIN) == [
        "authgear_django.W011"
    ]

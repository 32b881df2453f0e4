from __future__ import annotations

import pytest
from django.core import checks
from django.core.cache.backends.dummy import DummyCache
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from authgear_django.checks import check_settings
from authgear_django.conf import DEFAULT_SCOPES, conf


class SilentCache(DummyCache):
    """A project's own no-op cache: W006 must see through the subclass."""


# A production-grade baseline: every test then changes one thing and expects one ID.
GOOD = {
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


def ids(**overrides: object) -> list[str]:
    with override_settings(**{**GOOD, **overrides}):
        return sorted(message.id or "" for message in check_settings())


@pytest.mark.django_db
def test_good_configuration_is_silent() -> None:
    assert ids() == []
    with override_settings(**GOOD):
        call_command("check")


def test_check_ids_are_unique_and_stable() -> None:
    import re
    from pathlib import Path

    import authgear_django.checks as module

    source = Path(module.__file__).read_text()
    found = re.findall(r'id="(authgear_django\.[EW]\d{3})"', source)
    assert len(found) == len(set(found)) == 14


def test_middleware_before_session_or_auth_is_e006() -> None:
    assert ids(MIDDLEWARE=MIDDLEWARE) == []
    assert ids(MIDDLEWARE=[MIDDLEWARE[2], MIDDLEWARE[0], MIDDLEWARE[1]]) == ["authgear_django.E006"]
    assert ids(MIDDLEWARE=[MIDDLEWARE[0], MIDDLEWARE[2], MIDDLEWARE[1]]) == ["authgear_django.E006"]
    assert ids(MIDDLEWARE=[MIDDLEWARE[0], MIDDLEWARE[2]]) == ["authgear_django.E006"]
    subclassed = [MIDDLEWARE[0], "tests.custom_backend.CustomAuthMiddleware", MIDDLEWARE[2]]
    assert ids(MIDDLEWARE=subclassed) == []


def test_unknown_cache_alias_is_e007() -> None:
    assert ids(AUTHGEAR_CACHE_ALIAS="authgear") == ["authgear_django.E007"]


def test_invalid_role_mapping_is_e008() -> None:
    assert ids(AUTHGEAR_ROLE_GROUPS=["admin"]) == ["authgear_django.E008"]
    assert ids(AUTHGEAR_ROLE_GROUPS={"admin": ""}) == ["authgear_django.E008"]
    assert ids(AUTHGEAR_ROLE_GROUPS={"admin": ["Admins"]}) == []
    assert ids(AUTHGEAR_ROLE_GROUPS="*") == []


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
    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    redis = GOOD["CACHES"]["default"]  # type: ignore[index]
    assert ids(CACHES={"default": dummy}) == ["authgear_django.W006"]
    assert ids(CACHES={"default": dummy}, DEBUG=True) == ["authgear_django.W006"]
    subclass = {"BACKEND": "tests.test_checks_and_conf.SilentCache"}
    assert ids(CACHES={"default": subclass}) == ["authgear_django.W006"]
    # Only the alias the app uses counts.
    both = {"default": dummy, "authgear": redis}
    assert ids(CACHES=both, AUTHGEAR_CACHE_ALIAS="authgear") == []
    both = {"default": redis, "authgear": dummy}
    assert ids(CACHES=both, AUTHGEAR_CACHE_ALIAS="authgear") == ["authgear_django.W006"]
    # LocMem keeps values: W005 in production (per process), nothing in DEBUG; never W006.
    assert ids(CACHES={"default": locmem}) == ["authgear_django.W005"]
    assert ids(CACHES={"default": locmem}, DEBUG=True) == []


def test_w006_hint_explains_what_is_lost() -> None:
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    with override_settings(**{**GOOD, "CACHES": dummy}):
        (message,) = check_settings()
    assert isinstance(message, checks.Warning)
    assert "cannot be shared" in (message.hint or "")
    assert "own refetch cooldown" in (message.hint or "")


@pytest.mark.parametrize(
    "name", ["AUTHGEAR_ENDPOINT", "AUTHGEAR_CLIENT_ID", "AUTHGEAR_CLIENT_SECRET"]
)
def test_missing_required_setting_is_e001(name: str) -> None:
    assert ids(**{name: ""}) == ["authgear_django.E001"]


def test_bad_timeout_is_e002() -> None:
    assert ids(AUTHGEAR_HTTP_TIMEOUT=0) == ["authgear_django.E002"]
    assert ids(AUTHGEAR_HTTP_TIMEOUT=None) == ["authgear_django.E002"]


def test_missing_backend_is_e003() -> None:
    assert ids(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]) == [
        "authgear_django.E003"
    ]


def test_subclassed_backend_counts() -> None:
    assert ids(AUTHENTICATION_BACKENDS=["tests.custom_backend.CustomBackend"]) == []


def test_endpoint_shape_checks() -> None:
    assert ids(AUTHGEAR_ENDPOINT="myapp.authgear.cloud") == ["authgear_django.E004"]
    assert ids(AUTHGEAR_ENDPOINT="https://myapp.authgear.cloud/oauth2") == ["authgear_django.E005"]
    assert ids(AUTHGEAR_ENDPOINT="http://myapp.authgear.cloud") == ["authgear_django.W001"]
    assert ids(AUTHGEAR_ENDPOINT="http://127.0.0.1:9000", DEBUG=True) == []


def test_every_check_is_registered_with_django() -> None:
    from django.core import checks

    with override_settings(**{**GOOD, "AUTHGEAR_CLIENT_ID": ""}):
        found = [message.id for message in checks.run_checks(tags=[checks.Tags.security])]
    assert "authgear_django.E001" in found


def test_defaults() -> None:
    assert conf.AUTHGEAR_SCOPES == DEFAULT_SCOPES
    assert conf.AUTHGEAR_HTTP_TIMEOUT == 5.0
    assert conf.AUTHGEAR_REDIRECT_URI is None
    assert conf.AUTHGEAR_LINK_USERS_BY_EMAIL is False
    assert conf.AUTHGEAR_CREATE_USERS is True
    assert conf.token_keys_derived_from_secret_key


def test_settings_are_read_when_used() -> None:
    with override_settings(
        AUTHGEAR_ENDPOINT="https://other.authgear.cloud/", AUTHGEAR_SCOPES=["email"]
    ):
        assert conf.AUTHGEAR_ENDPOINT == "https://other.authgear.cloud"
        assert conf.AUTHGEAR_SCOPES == "openid email"
    assert conf.AUTHGEAR_ENDPOINT == "https://authgear.test"


def test_invalid_values_raise_improperly_configured() -> None:
    with override_settings(AUTHGEAR_ENDPOINT=""), pytest.raises(ImproperlyConfigured):
        _ = conf.AUTHGEAR_ENDPOINT
    with override_settings(AUTHGEAR_HTTP_TIMEOUT="forever"), pytest.raises(ImproperlyConfigured):
        _ = conf.AUTHGEAR_HTTP_TIMEOUT


def test_mozilla_settings_are_supplied_by_us() -> None:
    assert conf.mozilla_setting("OIDC_RP_SIGN_ALGO") == "RS256"
    assert conf.mozilla_setting("OIDC_USE_PKCE") is True
    assert conf.mozilla_setting("OIDC_TIMEOUT") == 5.0
    assert conf.mozilla_setting("OIDC_RP_CLIENT_ID") == "a1b2c3d4e5f60718"


@pytest.mark.django_db
def test_migrations_are_complete() -> None:
    call_command("makemigrations", "authgear_django", "--check", "--dry-run", verbosity=0)

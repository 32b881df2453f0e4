from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from authgear_django.checks import check_settings
from authgear_django.conf import DEFAULT_SCOPES, conf


def ids(**overrides: object) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in check_settings()]


@pytest.mark.django_db
def test_good_configuration_is_silent() -> None:
    assert ids() == []
    call_command("check")


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

"""conf.py: the one reader of settings, one rule per setting (raised at use, reported by checks)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings

from authgear_django.checks import check_settings
from authgear_django.conf import DEFAULT_SCOPES, SettingError, conf
from tests.conftest import LoginFlow
from tests.custom_backend import username_from_claims
from tests.fake_authgear import FakeAuthgear, FakeUser
from tests.test_checks import GOOD

PACKAGE = Path(__file__).resolve().parent.parent / "authgear_django"
E001, E002, E004, E005 = (f"authgear_django.E00{n}" for n in (1, 2, 4, 5))
E007, E008, E011 = "authgear_django.E007", "authgear_django.E008", "authgear_django.E011"
DAY = 24 * 3600

# Modules that may still import django.conf.settings. Migrations are written by Django
# (``swappable_dependency(settings.AUTH_USER_MODEL)``); models.py should read
# ``conf.AUTH_USER_MODEL`` instead: when it does, remove it here (a test below insists).
STILL_IMPORTING_SETTINGS = {"models.py"}


def _imports_django_settings(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names}
            if (node.module == "django.conf" and names & {"settings", "*"}) or (
                node.module == "django" and "conf" in names
            ):
                return True
        if isinstance(node, ast.Import) and any(a.name == "django.conf" for a in node.names):
            return True
    return False


def test_only_conf_imports_django_settings() -> None:
    readers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and _imports_django_settings(path)
    }
    assert readers - STILL_IMPORTING_SETTINGS == {"conf.py"}


def test_settings_import_detector_and_its_allowance_are_current() -> None:
    assert _imports_django_settings(PACKAGE / "conf.py")
    assert not _imports_django_settings(PACKAGE / "checks.py")
    for name in STILL_IMPORTING_SETTINGS:
        assert _imports_django_settings(PACKAGE / name), f"{name} is clean: drop its allowance"


# Each broken value: the property raises SettingError at use, and the check reports the very
# same error (same ID, same message) — one rule, two places it is seen.
BROKEN: list[tuple[str, Any, str]] = [
    ("AUTHGEAR_ENDPOINT", "", E001),
    ("AUTHGEAR_ENDPOINT", "myapp.authgear.cloud", E004),
    ("AUTHGEAR_ENDPOINT", "https://myapp.authgear.cloud/oauth2", E005),
    ("AUTHGEAR_ENDPOINT", "https://myapp.authgear.cloud?x=1", E005),
    ("AUTHGEAR_CLIENT_ID", "  ", E001),
    ("AUTHGEAR_CLIENT_SECRET", "", E001),
    ("AUTHGEAR_CLIENT_SECRET", 1234, E011),
    ("AUTHGEAR_HTTP_TIMEOUT", 0, E002),
    ("AUTHGEAR_HTTP_TIMEOUT", None, E002),
    ("AUTHGEAR_HTTP_TIMEOUT", "forever", E002),
    ("AUTHGEAR_CACHE_ALIAS", "authgear", E007),
    ("AUTHGEAR_ROLE_GROUPS", ["admin"], E008),
    ("AUTHGEAR_ROLE_GROUPS", {"admin": ""}, E008),
    ("AUTHGEAR_ROLE_GROUPS", {"admin": 5}, E008),
    ("AUTHGEAR_STAFF_ROLES", ["admin", 7], E011),
    ("AUTHGEAR_SUPERUSER_ROLES", 1, E011),
    ("AUTHGEAR_SCOPES", ["openid", 3], E011),
    ("AUTHGEAR_REDIRECT_ALLOWED_HOSTS", "example.com", E011),
    ("AUTHGEAR_DISCOVERY_CACHE_TTL", "an hour", E011),
    ("AUTHGEAR_MAX_LOGIN_ATTEMPTS", None, E011),
    ("AUTHGEAR_CLOCK_LEEWAY", True, E011),
    ("AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS", [], E011),
    ("AUTHGEAR_WEBHOOK_DELETED_USERS", "purge", E011),
    ("AUTHGEAR_WEBHOOK_MAX_BODY_SIZE", 0, E011),
    ("AUTHGEAR_TOKEN_ENCRYPTION_KEYS", ["current", ""], E011),
    ("AUTHGEAR_USERNAME_ALGO", "tests.custom_backend.no_such_function", E011),
    ("AUTHGEAR_USERNAME_ALGO", 42, E011),
    ("AUTHGEAR_LOGOUT_STATE_MAX_AGE", 0, E011),
    ("AUTHGEAR_WEBHOOK_MAX_EVENT_AGE", "a week", E011),
    ("AUTHGEAR_WEBHOOK_EVENT_RETENTION", 3 * DAY, E011),  # shorter than the 7-day max age
]


@pytest.mark.parametrize(("name", "value", "check_id"), BROKEN)
def test_each_rule_raises_at_use_and_is_the_check(name: str, value: Any, check_id: str) -> None:
    with override_settings(**{**GOOD, name: value}):
        with pytest.raises(SettingError) as raised:
            getattr(conf, name)
        (message,) = check_settings()
    assert raised.value.check_id == check_id
    assert (message.id, message.msg) == (check_id, str(raised.value))
    assert message.is_serious()


def test_rules_never_echo_the_value() -> None:
    secret = "sk-pasted-into-the-wrong-setting"
    for name in ("AUTHGEAR_HTTP_TIMEOUT", "AUTHGEAR_WEBHOOK_DELETED_USERS", "AUTHGEAR_SCOPES"):
        with override_settings(**{name: [secret, 1]}):
            messages = check_settings()
        assert messages and not any(secret in f"{m.msg} {m.hint}" for m in messages), name


def test_a_public_client_needs_no_secret() -> None:
    with override_settings(**GOOD, AUTHGEAR_CLIENT_SECRET="", AUTHGEAR_CLIENT_AUTH_METHOD="none"):
        assert conf.AUTHGEAR_CLIENT_SECRET == ""
        assert check_settings() == []


def test_retention_must_exceed_the_event_age() -> None:
    with (
        override_settings(AUTHGEAR_WEBHOOK_MAX_EVENT_AGE=DAY, AUTHGEAR_WEBHOOK_EVENT_RETENTION=DAY),
        pytest.raises(SettingError, match="longer than"),
    ):
        _ = conf.AUTHGEAR_WEBHOOK_EVENT_RETENTION
    with override_settings(
        AUTHGEAR_WEBHOOK_MAX_EVENT_AGE=DAY, AUTHGEAR_WEBHOOK_EVENT_RETENTION=2 * DAY
    ):
        assert conf.AUTHGEAR_WEBHOOK_EVENT_RETENTION == 2 * DAY


def test_one_staff_role_given_as_a_string_is_one_role() -> None:
    # Before: iterated character by character, so a user with role "a" became staff.
    with override_settings(AUTHGEAR_STAFF_ROLES="admin", AUTHGEAR_SUPERUSER_ROLES=("root",)):
        assert conf.AUTHGEAR_STAFF_ROLES == ["admin"]
        assert conf.AUTHGEAR_SUPERUSER_ROLES == ["root"]


def test_defaults() -> None:
    assert conf.AUTHGEAR_SCOPES == DEFAULT_SCOPES
    assert conf.AUTHGEAR_HTTP_TIMEOUT == 5.0
    assert conf.AUTHGEAR_REDIRECT_URI is None
    assert conf.AUTHGEAR_LINK_USERS_BY_EMAIL is False
    assert conf.AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF is False
    assert conf.AUTHGEAR_CREATE_USERS is True
    assert conf.AUTHGEAR_USERNAME_ALGO is None
    assert conf.AUTHGEAR_LOGOUT_STATE_MAX_AGE == 600
    assert conf.AUTHGEAR_WEBHOOK_MAX_EVENT_AGE == 7 * DAY
    assert conf.AUTHGEAR_WEBHOOK_EVENT_RETENTION == 30 * DAY
    assert conf.token_keys_derived_from_secret_key
    assert conf.problems() == []


def test_new_settings_are_read() -> None:
    with override_settings(
        AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF=True,
        AUTHGEAR_USERNAME_ALGO="tests.custom_backend.username_from_claims",
        AUTHGEAR_LOGOUT_STATE_MAX_AGE="120",
        AUTHGEAR_WEBHOOK_MAX_EVENT_AGE=3 * DAY,
        AUTHGEAR_WEBHOOK_EVENT_RETENTION=10 * DAY,
    ):
        assert conf.AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF is True
        assert conf.AUTHGEAR_USERNAME_ALGO is username_from_claims
        assert conf.AUTHGEAR_LOGOUT_STATE_MAX_AGE == 120
        assert conf.AUTHGEAR_WEBHOOK_MAX_EVENT_AGE == 3 * DAY
        assert conf.AUTHGEAR_WEBHOOK_EVENT_RETENTION == 10 * DAY
    with override_settings(AUTHGEAR_USERNAME_ALGO=username_from_claims):
        assert conf.AUTHGEAR_USERNAME_ALGO is username_from_claims


def test_settings_are_read_when_used() -> None:
    with override_settings(
        AUTHGEAR_ENDPOINT="https://other.authgear.cloud/", AUTHGEAR_SCOPES=["email"]
    ):
        assert conf.AUTHGEAR_ENDPOINT == "https://other.authgear.cloud"
        assert conf.AUTHGEAR_SCOPES == "openid email"
    assert conf.AUTHGEAR_ENDPOINT == "https://authgear.test"


# --- mozilla-django-oidc's lookups ------------------------------------------------------------


def test_mozilla_backend_lookups_are_answered_from_our_settings() -> None:
    assert conf.mozilla_setting("OIDC_RP_SIGN_ALGO") == "RS256"
    assert conf.mozilla_setting("OIDC_TIMEOUT") == 5.0
    assert conf.mozilla_setting("OIDC_RP_CLIENT_ID") == "a1b2c3d4e5f60718"
    assert conf.mozilla_setting("OIDC_CREATE_USER") is True
    assert conf.mozilla_setting("OIDC_USERNAME_ALGO") is None
    assert conf.mozilla_setting("OIDC_PROXY", None) is None
    with pytest.raises(SettingError.__mro__[1]):  # ImproperlyConfigured: no silent guess
        conf.mozilla_setting("OIDC_OP_TOKEN_ENDPOINT")


def test_django_oidc_settings_are_never_read() -> None:
    with override_settings(OIDC_USERNAME_ALGO=username_from_claims, OIDC_CREATE_USER=False):
        assert conf.mozilla_setting("OIDC_USERNAME_ALGO") is None
        assert conf.mozilla_setting("OIDC_CREATE_USER") is True
    with override_settings(AUTHGEAR_USERNAME_ALGO=username_from_claims):
        assert conf.mozilla_setting("OIDC_USERNAME_ALGO") is username_from_claims


@pytest.mark.django_db
def test_username_algo_names_new_users(fake_authgear: FakeAuthgear, settings: Any) -> None:
    """End to end: the backend's get_username (mozilla's OIDC_USERNAME_ALGO lookup) uses it."""
    settings.AUTHGEAR_USERNAME_ALGO = "tests.custom_backend.username_from_claims"
    LoginFlow(Client(), fake_authgear).login(FakeUser(given_name="Ada", family_name="Lovelace"))
    assert get_user_model().objects.get().get_username() == "ada.lovelace"


@pytest.mark.django_db
def test_migrations_are_complete() -> None:
    call_command("makemigrations", "authgear_django", "--check", "--dry-run", verbosity=0)

"""Every Authgear client type: the system checks and ``manage.py authgear_check``."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from authgear_django.checks import check_settings
from authgear_django.provider import get_client
from tests.client_auth_helpers import ALL_METHODS_ADVERTISED, METHODS
from tests.fake_authgear import CLIENT_SECRET, FakeAuthgear

# --- system checks ----------------------------------------------------------------------------


def auth_check_ids(**overrides: object) -> list[str]:
    """The IDs of the client-authentication checks among all messages (others are not ours)."""
    relevant = {f"authgear_django.{suffix}" for suffix in ("E001", "E009", "E010", "W007")}
    with override_settings(**overrides):
        return sorted(m.id or "" for m in check_settings() if m.id in relevant)


def test_checks_accept_each_method_with_the_matching_secret() -> None:
    assert auth_check_ids() == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="client_secret_basic") == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET="") == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET=None) == []


def test_an_unknown_method_is_e009() -> None:
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="private_key_jwt") == ["authgear_django.E009"]
    # The secret is then still required: the method may be meant as a confidential one.
    assert auth_check_ids(
        AUTHGEAR_CLIENT_AUTH_METHOD="private_key_jwt", AUTHGEAR_CLIENT_SECRET=""
    ) == ["authgear_django.E001", "authgear_django.E009"]


def test_a_secret_with_none_is_e010() -> None:
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none") == ["authgear_django.E010"]
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET="  ") == []
    with override_settings(AUTHGEAR_CLIENT_AUTH_METHOD="none"):
        [message] = [m for m in check_settings() if m.id == "authgear_django.E010"]
    assert CLIENT_SECRET not in message.msg + (message.hint or "")


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_a_secret_method_without_a_secret_is_the_missing_secret_e001(method: str) -> None:
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD=method, AUTHGEAR_CLIENT_SECRET="") == [
        "authgear_django.E001"
    ]


@pytest.mark.django_db
def test_a_method_missing_from_known_discovery_is_w007_without_fetching_it(
    fake_authgear: FakeAuthgear,
) -> None:
    fake_authgear.discovery_overrides["token_endpoint_auth_methods_supported"] = [
        "none",
        "client_secret_post",
    ]
    basic = {"AUTHGEAR_CLIENT_AUTH_METHOD": "client_secret_basic"}
    assert auth_check_ids(**basic) == []  # discovery not known yet: checks do not fetch it
    assert fake_authgear.calls["discovery"] == 0

    get_client().metadata()  # the deployment has fetched discovery (it is in the cache)
    assert auth_check_ids(**basic) == ["authgear_django.W007"]
    assert auth_check_ids() == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET="") == []
    with override_settings(**basic):
        [warning] = [m for m in check_settings() if m.id == "authgear_django.W007"]
    assert "'client_secret_basic'" in warning.msg and "none, client_secret_post" in warning.msg
    assert fake_authgear.calls["discovery"] == 1


@pytest.mark.django_db
def test_w007_is_silent_when_discovery_publishes_no_methods(fake_authgear: FakeAuthgear) -> None:
    fake_authgear.discovery_overrides["token_endpoint_auth_methods_supported"] = None
    get_client().metadata()
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="client_secret_basic") == []


# --- manage.py authgear_check -----------------------------------------------------------------


def run_check() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("authgear_check", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def check_fails() -> str:
    with pytest.raises(CommandError) as info:
        run_check()
    return str(info.value)


@pytest.mark.django_db
@pytest.mark.parametrize("method", METHODS)
def test_command_accepts_each_advertised_method(
    fake_authgear: FakeAuthgear, settings: Any, method: str
) -> None:
    fake_authgear.discovery_overrides.update(ALL_METHODS_ADVERTISED)
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = method
    if method == "none":
        settings.AUTHGEAR_CLIENT_SECRET = ""
    out, err = run_check()
    assert f"ok    token endpoint accepts {method}\n" in out
    assert CLIENT_SECRET not in out + err


@pytest.mark.django_db
def test_command_reports_a_method_authgear_does_not_advertise(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    """Authgear before 2026-07-21: no client_secret_basic (it ignored Basic credentials)."""
    fake_authgear.discovery_overrides["token_endpoint_auth_methods_supported"] = [
        "none",
        "client_secret_post",
    ]
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "client_secret_basic"
    message = check_fails()
    assert message == (
        "the token endpoint does not accept client_secret_basic (it accepts: none, "
        "client_secret_post); set AUTHGEAR_CLIENT_AUTH_METHOD to one of these"
    )


@pytest.mark.django_db
def test_command_reports_a_secret_that_does_not_fit_the_method(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    fake_authgear.discovery_overrides.update(ALL_METHODS_ADVERTISED)
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "none"
    message = check_fails()
    assert message.startswith('AUTHGEAR_CLIENT_AUTH_METHOD is "none" (a public client) but')
    assert CLIENT_SECRET not in message

    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "client_secret_basic"
    settings.AUTHGEAR_CLIENT_SECRET = ""
    assert check_fails() == "AUTHGEAR_CLIENT_SECRET must be set (it is missing or blank)."


@pytest.mark.django_db
def test_command_reports_an_unknown_method_in_one_line(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "private_key_jwt"
    assert check_fails() == (
        "AUTHGEAR_CLIENT_AUTH_METHOD must be one of client_secret_post, client_secret_basic, none."
    )
    assert fake_authgear.calls["discovery"] == 0

"""The backend's own rules: what it refuses to link, and no mozilla method left dead."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from mozilla_django_oidc.auth import OIDCAuthenticationBackend, default_username_algo

from authgear_django.backends import NOT_CALLED, AuthgearBackend, username_from_algorithm
from authgear_django.models import AuthgearAccount
from tests.conftest import LoginFlow
from tests.custom_backend import generate_username, username_from_claims
from tests.fake_authgear import FakeAuthgear, FakeUser

User = get_user_model()

# mozilla's methods this backend calls with mozilla's meaning (or Django's, for the entry points).
HONOURED = {
    "__init__",
    "authenticate",
    "get_user",
    "get_settings",
    "verify_token",
    "get_userinfo",
    "verify_claims",
    "filter_users_by_claims",
    "describe_user_by_claims",
    "get_or_create_user",
    "create_user",
    "get_username",
    "update_user",
}


def login(fake: FakeAuthgear, user: FakeUser) -> tuple[Any, Client]:
    flow = LoginFlow(Client(), fake)
    return flow.login(user), flow.client


def test_every_mozilla_method_is_either_honoured_or_refused() -> None:
    own = {
        name
        for name, _ in inspect.getmembers(OIDCAuthenticationBackend, inspect.isfunction)
        if name in vars(OIDCAuthenticationBackend)
    }
    assert own == HONOURED | set(NOT_CALLED)


@pytest.mark.parametrize("name", sorted(NOT_CALLED))
def test_mozilla_methods_we_never_call_refuse_with_what_to_use_instead(name: str) -> None:
    with pytest.raises(NotImplementedError) as raised:
        getattr(AuthgearBackend(), name)("token", "key")
    assert f"does not use {name}()" in str(raised.value)
    assert NOT_CALLED[name] in str(raised.value)


@pytest.mark.parametrize("name", sorted(NOT_CALLED))
def test_a_subclass_overriding_a_method_we_never_call_is_refused_at_import(name: str) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        type("ProjectBackend", (AuthgearBackend,), {name: lambda self, *args: None})
    assert f"overrides {name}," in str(raised.value)


def test_username_algorithms_are_called_as_mozilla_calls_them() -> None:
    claims = {"email": "\uff2aane@example.com", "given_name": "Jane", "family_name": "Doe"}
    one_argument = "tests.custom_backend.generate_username"
    assert username_from_algorithm(one_argument, claims) == generate_username(claims["email"])
    assert username_from_algorithm(username_from_claims, claims) == "jane.doe"
    mozilla_default = "mozilla_django_oidc.auth.default_username_algo"
    assert username_from_algorithm(mozilla_default, claims) == default_username_algo(
        claims["email"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_email_linking_never_hands_a_staff_or_superuser_account_over(
    settings: Any, fake_authgear: FakeAuthgear, flag: str
) -> None:
    settings.AUTHGEAR_LINK_USERS_BY_EMAIL = True
    admin = User.objects.create_user("boss", email="boss@example.com", **{flag: True})
    response, client = login(fake_authgear, FakeUser(email="boss@example.com"))
    assert response.status_code == 403
    assert b"cannot be linked" in response.content
    assert "_auth_user_id" not in client.session
    assert not AuthgearAccount.objects.exists()
    assert list(User.objects.all()) == [admin]


@pytest.mark.django_db
def test_email_linking_to_staff_only_when_the_setting_allows_it(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    settings.AUTHGEAR_LINK_USERS_BY_EMAIL = True
    settings.AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF = True
    admin = User.objects.create_user("boss", email="boss@example.com", is_staff=True)
    response, client = login(fake_authgear, FakeUser(email="boss@example.com"))
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(admin.pk)
    assert AuthgearAccount.objects.get().user == admin


@pytest.mark.django_db
def test_userinfo_from_an_override_about_another_sub_is_refused(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    settings.AUTHENTICATION_BACKENDS = ["tests.custom_backend.OtherSubUserinfoBackend"]
    response, client = login(fake_authgear, FakeUser())
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert not User.objects.exists() and not AuthgearAccount.objects.exists()


@pytest.mark.django_db
def test_a_create_user_that_hits_a_taken_username_gets_a_refusal_page_not_a_502(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    settings.AUTHENTICATION_BACKENDS = ["tests.custom_backend.MozillaCreateUserBackend"]
    User.objects.create_user("jane")
    response, _ = login(fake_authgear, FakeUser(email="jane@example.com"))
    assert response.status_code == 403
    assert b"could not set up your account" in response.content
    assert User.objects.count() == 1 and not AuthgearAccount.objects.exists()


@pytest.mark.django_db
def test_get_or_create_user_must_return_the_linked_user(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    settings.AUTHENTICATION_BACKENDS = ["tests.custom_backend.UnlinkedUserBackend"]
    with pytest.raises(ImproperlyConfigured, match=re.escape("super().get_or_create_user")):
        login(fake_authgear, FakeUser())


@pytest.mark.django_db
def test_usernames_fit_the_column_even_when_get_username_is_longer(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    settings.AUTHENTICATION_BACKENDS = ["tests.custom_backend.LongUsernameBackend"]
    login(fake_authgear, FakeUser())
    login(fake_authgear, FakeUser())
    first, second = User.objects.order_by("pk").values_list("username", flat=True)
    assert first == "x" * 150
    assert second.startswith("x") and len(second) <= 150 and second != first

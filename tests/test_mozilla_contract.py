"""A project that followed mozilla-django-oidc's documentation keeps its backend subclass.

Each test installs one subclass from ``tests/custom_backend.py`` (the logic of a snippet from
mozilla's ``docs/installation.rst``, with ``AuthgearBackend`` as the base class) and shows
through the real login view, the fake Authgear and the real callback that the hook changes
what happens at login, in mozilla's documented meaning.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
User = get_user_model()


def use_backend(settings: Any, name: str) -> None:
    settings.AUTHENTICATION_BACKENDS = [f"tests.custom_backend.{name}"]


def login(fake: FakeAuthgear, user: FakeUser) -> tuple[Any, Client]:
    """One login in a fresh browser: (the callback's response, that browser)."""
    flow = LoginFlow(Client(), fake)
    return flow.login(user), flow.client


def assert_refused(response: Any, client: Client, text: bytes) -> None:
    """A failed-login page: 403, our message, a way to try again, nobody logged in."""
    assert response.status_code == 403, response.content
    assert text in response.content, response.content
    assert b"Try again" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/private/").status_code == 302


def test_create_user_from_the_docs_runs_for_a_new_user_only(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "NamesFromClaimsBackend")
    person = FakeUser(given_name="Ada", family_name="Lovelace")
    response, client = login(fake_authgear, person)
    assert response.status_code == 302
    user = User.objects.get()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert list(user.groups.values_list("name", flat=True)) == ["Signed up with OIDC"]
    assert client.get("/private/").status_code == 200

    login(fake_authgear, person)
    assert User.objects.count() == 1
    assert user.groups.count() == 1


def test_update_user_runs_at_every_later_login_but_not_at_the_creating_one(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "ReturningUserBackend")
    person = FakeUser()
    login(fake_authgear, person)
    assert User.objects.get().last_name == "Doe"  # created, not updated (as mozilla does)
    login(fake_authgear, person)
    assert User.objects.get().last_name == "returning"


def test_update_user_keeps_groups_in_step_with_a_claim(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "GroupsFromClaimsBackend")
    Group.objects.bulk_create([Group(name="Editors"), Group(name="Reviewers")])
    person = FakeUser(extra={"groups": ["Editors"]})

    def groups() -> list[str]:
        return sorted(User.objects.get().groups.values_list("name", flat=True))

    login(fake_authgear, person)
    assert groups() == ["Editors"]
    person.extra = {"groups": ["Reviewers"]}
    login(fake_authgear, person)
    assert groups() == ["Reviewers"]
    person.extra = {}
    login(fake_authgear, person)
    assert groups() == []


def test_filter_users_by_claims_links_an_existing_user_once_then_sub_decides(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "LegacyUsernameBackend")
    existing = User.objects.create_user("jdoe-legacy")
    person = FakeUser(extra={"legacy_username": "jdoe-legacy"})

    response, client = login(fake_authgear, person)
    assert response.status_code == 302
    assert client.get("/private/").content == b"private for jdoe-legacy"
    assert AuthgearAccount.objects.get(sub=person.sub).user == existing
    existing.refresh_from_db()
    assert existing.email == "jane@example.com"  # update_user ran for the matched user

    person.extra = {}  # the claim is gone: the link by sub still finds the user
    response, client = login(fake_authgear, person)
    assert client.get("/private/").content == b"private for jdoe-legacy"
    assert User.objects.count() == 1

    # Another Authgear user presenting the same claim cannot take over the linked user.
    impostor = FakeUser(extra={"legacy_username": "jdoe-legacy"})
    response, client = login(fake_authgear, impostor)
    assert_refused(response, client, b"already linked to another Authgear user")
    assert not AuthgearAccount.objects.filter(sub=impostor.sub).exists()


def test_several_matching_users_refuse_the_login_and_the_log_describes_the_user(
    settings: Any, fake_authgear: FakeAuthgear, caplog: pytest.LogCaptureFixture
) -> None:
    use_backend(settings, "DepartmentBackend")
    User.objects.create_user("a", last_name="Research")
    User.objects.create_user("b", last_name="Research")
    caplog.set_level(logging.INFO)
    person = FakeUser(extra={"department": "Research", "employee_id": "E42"})
    response, client = login(fake_authgear, person)
    assert_refused(response, client, b"Several accounts on this site match")
    assert "several users match employee E42" in caplog.text
    assert AuthgearAccount.objects.count() == 0 and User.objects.count() == 2


def test_no_match_and_creation_off_refuses_and_the_log_describes_the_user(
    settings: Any, fake_authgear: FakeAuthgear, caplog: pytest.LogCaptureFixture
) -> None:
    use_backend(settings, "DepartmentBackend")
    settings.AUTHGEAR_CREATE_USERS = False  # OIDC_CREATE_USER = False
    caplog.set_level(logging.INFO)
    response, client = login(fake_authgear, FakeUser(extra={"employee_id": "E7"}))
    assert_refused(response, client, b"no account on this site")
    assert "no user matches employee E7 and user creation is off" in caplog.text
    assert User.objects.count() == 0


def test_verify_claims_refuses_people_outside_the_domain_before_any_user_exists(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "CompanyDomainBackend")
    response, client = login(fake_authgear, FakeUser(email="eve@elsewhere.test"))
    assert_refused(response, client, b"may not sign in to this site")
    assert User.objects.count() == 0 and AuthgearAccount.objects.count() == 0
    assert AuthgearLogin.objects.count() == 0

    person = FakeUser(email="jane@example.com")
    response, client = login(fake_authgear, person)
    assert response.status_code == 302 and client.get("/private/").status_code == 200

    # It is asked at every login, so a linked user who left the company is refused too.
    person.email = "jane@elsewhere.test"
    response, client = login(fake_authgear, person)
    assert_refused(response, client, b"may not sign in to this site")
    assert AuthgearLogin.objects.count() == 1


def test_get_username_picks_the_new_users_username(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "EmailUsernameBackend")
    _, client = login(fake_authgear, FakeUser(email="jane@example.com"))
    assert client.get("/private/").content == b"private for jane@example.com"


def test_get_or_create_user_returning_none_refuses_the_login(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "NoAnonymousUsersBackend")
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(
        {"https://authgear.com/claims/user/is_anonymous": True}
    )
    response, client = login(fake_authgear, FakeUser())
    assert_refused(response, client, b"You may not sign in to this site")
    assert User.objects.count() == 0

    fake_authgear.id_token_tamper = None
    response, client = login(fake_authgear, FakeUser())
    assert response.status_code == 302 and User.objects.count() == 1


def test_verify_token_can_add_a_check_and_refuse_the_mozilla_way(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "MfaRequiredBackend")
    response, client = login(fake_authgear, FakeUser())
    assert_refused(response, client, b"You may not sign in to this site")
    assert User.objects.count() == 0

    fake_authgear.id_token_tamper = lambda claims, header: claims.update(amr=["pwd", "otp"])
    response, client = login(fake_authgear, FakeUser())
    assert response.status_code == 302 and client.get("/private/").status_code == 200


def test_get_userinfo_can_add_to_what_the_other_hooks_see(
    settings: Any, fake_authgear: FakeAuthgear
) -> None:
    use_backend(settings, "TitleCaseNamesBackend")
    login(fake_authgear, FakeUser(given_name="ada"))
    assert User.objects.get().first_name == "Ada"


@pytest.mark.urls("tests.mozilla_view_urls")
def test_view_hooks_success_url_and_failure_url_decide_where_the_login_lands(
    fake_authgear: FakeAuthgear,
) -> None:
    """mozilla's ``success_url`` and ``failure_url``/``login_failure`` hooks work on our view."""
    flow = LoginFlow(Client(), fake_authgear)
    response = flow.login(FakeUser())
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert "_auth_user_id" in flow.client.session

    refused = LoginFlow(Client(), fake_authgear)
    response = refused.finish(fake_authgear.deny(refused.start()))
    assert response.status_code == 302 and response["Location"] == "/login-failed/"
    assert "_auth_user_id" not in refused.client.session


def test_without_a_failure_url_a_failed_login_shows_our_error_page(
    fake_authgear: FakeAuthgear,
) -> None:
    refused = LoginFlow(Client(), fake_authgear)
    response = refused.finish(fake_authgear.deny(refused.start()))
    assert response.status_code == 403
    assert b"Sign-in cancelled" in response.content and b"Try again" in response.content

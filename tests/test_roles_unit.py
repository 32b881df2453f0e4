"""``authgear_django.roles.sync_roles`` called directly: the claim shapes the login flow tests
(tests/test_roles.py) do not reach."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from authgear_django.models import AuthgearAccount
from authgear_django.roles import GROUP_NAME_MAX, ROLES_CLAIM, sync_roles

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def linked() -> tuple[Any, AuthgearAccount]:
    user = User.objects.create_user("jane", is_staff=True)
    account = AuthgearAccount.objects.create(user=user, sub="sub-jane")
    return user, account


def groups_of(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@pytest.mark.parametrize("claim", ["missing", None, "admin", {"admin": True}, 7], ids=repr)
def test_no_usable_roles_claim_leaves_groups_and_flags_unchanged(
    linked: tuple[Any, AuthgearAccount],
    settings: Any,
    claim: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A userinfo without the roles claim (scope not granted) says nothing about roles: it
    must not strip the user's groups or staff flag."""
    settings.AUTHGEAR_ROLE_GROUPS = {"admin": ["Administrators"]}
    settings.AUTHGEAR_STAFF_ROLES = ["admin"]
    user, account = linked
    user.groups.add(Group.objects.create(name="Administrators"))
    claims: dict[str, Any] = {"sub": account.sub}
    if claim != "missing":
        claims[ROLES_CLAIM] = claim

    with caplog.at_level(logging.DEBUG, logger="authgear_django"):
        sync_roles(user, account, claims)

    user.refresh_from_db()
    assert groups_of(user) == ["Administrators"] and user.is_staff is True
    assert any("roles left unchanged" in record.getMessage() for record in caplog.records)


def test_an_empty_roles_list_does_remove_the_managed_groups_and_flags(
    linked: tuple[Any, AuthgearAccount], settings: Any
) -> None:
    """The contrast: a present, empty list means "no roles" and is applied."""
    settings.AUTHGEAR_ROLE_GROUPS = {"admin": ["Administrators"]}
    settings.AUTHGEAR_STAFF_ROLES = ["admin"]
    user, account = linked
    user.groups.add(Group.objects.create(name="Administrators"))
    sync_roles(user, account, {ROLES_CLAIM: []})
    user.refresh_from_db()
    assert groups_of(user) == [] and user.is_staff is False


def test_roles_that_are_not_non_empty_strings_are_ignored(
    linked: tuple[Any, AuthgearAccount], settings: Any
) -> None:
    settings.AUTHGEAR_ROLE_GROUPS = "*"
    user, account = linked
    sync_roles(user, account, {ROLES_CLAIM: ["editor", "", 5, None, ["admin"], {"x": 1}]})
    assert groups_of(user) == ["editor"]
    account.refresh_from_db()
    assert account.synced_groups == ["editor"]


def test_mirror_mode_truncates_long_role_names_to_a_valid_group_name(
    linked: tuple[Any, AuthgearAccount], settings: Any
) -> None:
    settings.AUTHGEAR_ROLE_GROUPS = "*"
    user, account = linked
    long_role = "r" * (GROUP_NAME_MAX + 50)
    sync_roles(user, account, {ROLES_CLAIM: [long_role]})
    assert groups_of(user) == ["r" * GROUP_NAME_MAX]
    sync_roles(user, account, {ROLES_CLAIM: [long_role]})  # the same role: no duplicate group
    assert Group.objects.count() == 1
    sync_roles(user, account, {ROLES_CLAIM: []})
    assert groups_of(user) == []


def test_nothing_is_synced_when_no_role_setting_is_on(
    linked: tuple[Any, AuthgearAccount],
) -> None:
    user, account = linked
    sync_roles(user, account, {ROLES_CLAIM: ["admin"]})
    user.refresh_from_db()
    assert groups_of(user) == [] and user.is_staff is True
    assert Group.objects.count() == 0

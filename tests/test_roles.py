"""Authgear roles → Django groups and staff flags, at login and at refresh."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
User = get_user_model()


def groups_of(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def test_roles_are_ignored_by_default(fake_authgear: FakeAuthgear) -> None:
    LoginFlow(Client(), fake_authgear).login(FakeUser(roles=["admin"]))
    user = User.objects.get()
    assert groups_of(user) == [] and not user.is_staff


def test_mapped_role_puts_the_user_in_its_group_and_removal_takes_it_away(
    fake_authgear: FakeAuthgear, settings: Any, clock: Any
) -> None:
    settings.AUTHGEAR_ROLE_GROUPS = {"admin": "Administrators", "editor": ["Editors", "Writers"]}
    person = FakeUser(roles=["admin", "unmapped"])
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(person)
    user = User.objects.get()
    assert groups_of(user) == ["Administrators"]
    assert not Group.objects.filter(name="unmapped").exists()

    person.roles = ["editor"]  # changed at Authgear: seen at the next refresh
    clock.shift(1800)
    assert flow.client.get("/private/").status_code == 200
    assert groups_of(user) == ["Editors", "Writers"]

    person.roles = []
    LoginFlow(Client(), fake_authgear).login(person)  # ...or at the next login
    assert groups_of(user) == []


def test_mirror_mode_keeps_groups_given_by_hand(
    fake_authgear: FakeAuthgear, settings: Any, clock: Any
) -> None:
    settings.AUTHGEAR_ROLE_GROUPS = "*"
    person = FakeUser(roles=["editor", "viewer"])
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(person)
    user = User.objects.get()
    manual = Group.objects.create(name="Given by hand")
    user.groups.add(manual)
    assert groups_of(user) == ["Given by hand", "editor", "viewer"]
    person.roles = ["editor"]
    clock.shift(1800)
    flow.client.get("/private/")
    assert groups_of(user) == ["Given by hand", "editor"]


def test_staff_and_superuser_follow_named_roles(
    fake_authgear: FakeAuthgear, settings: Any, clock: Any
) -> None:
    settings.AUTHGEAR_STAFF_ROLES = ["admin", "support"]
    settings.AUTHGEAR_SUPERUSER_ROLES = ["admin"]
    person = FakeUser(roles=["admin"])
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(person)
    user = User.objects.get()
    assert user.is_staff and user.is_superuser
    person.roles = ["support"]
    clock.shift(1800)
    flow.client.get("/private/")
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    person.roles = []
    clock.shift(1800)
    flow.client.get("/private/")
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser

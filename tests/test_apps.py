"""``AuthgearDjangoConfig.ready``: system checks registered, admin link only with the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core import checks

from authgear_django.admin import AuthgearAccountUserInline
from authgear_django.apps import AuthgearDjangoConfig


def config() -> AuthgearDjangoConfig:
    app = apps.get_app_config("authgear_django")
    assert isinstance(app, AuthgearDjangoConfig)
    return app


def test_the_app_is_labelled_for_migrations_and_the_admin() -> None:
    app = config()
    assert (app.label, app.verbose_name) == ("authgear_django", "Authgear")
    assert app.default_auto_field == "django.db.models.BigAutoField"


def test_ready_registers_the_security_checks() -> None:
    ours = [
        check
        for check in checks.registry.registry.get_checks()
        if check.__module__ == "authgear_django.checks"
    ]
    assert ours, "authgear_django's system checks are not registered"
    assert all("security" in getattr(check, "tags", ()) for check in ours)


@pytest.fixture
def user_admin_without_link(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The project's user admin as it was before ``ready`` attached our link."""
    user_admin = admin.site._registry[get_user_model()]
    inlines = [i for i in user_admin.inlines if i is not AuthgearAccountUserInline]
    monkeypatch.setattr(user_admin, "inlines", inlines)
    return user_admin


def test_ready_attaches_the_link_to_the_user_admin_once(user_admin_without_link: Any) -> None:
    config().ready()
    config().ready()  # e.g. the test runner or autoreload calling it again
    assert user_admin_without_link.inlines.count(AuthgearAccountUserInline) == 1


def test_ready_leaves_the_admin_alone_without_django_contrib_admin(
    user_admin_without_link: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project without the admin app must not get admin code run at startup."""
    real = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "django.contrib.admin" and real(name)
    )
    config().ready()
    assert AuthgearAccountUserInline not in user_admin_without_link.inlines

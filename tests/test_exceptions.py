"""One error tree: every error class has one root, and the old import paths still work."""

from __future__ import annotations

import inspect

import pytest

from authgear_django import exceptions


def error_classes() -> list[type[Exception]]:
    return [
        cls
        for cls in vars(exceptions).values()
        if inspect.isclass(cls)
        and issubclass(cls, Exception)
        and cls.__module__ == exceptions.__name__
    ]


def test_every_error_descends_from_authgear_error() -> None:
    classes = error_classes()
    assert len(classes) == 16  # the tree in the module docstring
    assert all(issubclass(cls, exceptions.AuthgearError) for cls in classes)


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_the_core_carries_an_oauth_code_but_no_page(cls: type[Exception]) -> None:
    assert isinstance(cls.error, str) and cls.error  # type: ignore[attr-defined]
    assert cls.user_message is None  # type: ignore[attr-defined]
    for page_attribute in ("http_status", "title"):
        assert not hasattr(cls, page_attribute)


def test_str_is_the_log_detail_and_the_oauth_code_without_one() -> None:
    assert str(exceptions.TokenValidationError("ID token has expired")) == "ID token has expired"
    assert str(exceptions.TokenValidationError()) == "invalid_token"
    denied = exceptions.AuthorizationDenied("access_denied", "user cancelled")
    assert (denied.error, denied.description, str(denied)) == (
        "access_denied",
        "user cancelled",
        "access_denied: user cancelled",
    )


def test_the_old_import_paths_are_the_same_classes() -> None:
    from authgear_django.api import NoAccessToken
    from authgear_django.decorators import NotAnAuthgearUser
    from authgear_django.views import ConfigurationError, ReauthenticationFailed

    assert NoAccessToken is exceptions.NoAccessToken
    assert NotAnAuthgearUser is exceptions.NotAnAuthgearUser
    assert ConfigurationError is exceptions.ConfigurationError
    assert ReauthenticationFailed is exceptions.ReauthenticationFailed

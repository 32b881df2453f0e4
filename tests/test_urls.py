"""The app's URLconf: the documented names, paths and views (README: ``path("auth/", ...)``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import resolve, reverse

from authgear_django.sessions_views import AuthgearSessionsView
from authgear_django.views import (
    AuthgearCallbackView,
    AuthgearLoginView,
    AuthgearLogoutReturnView,
    AuthgearLogoutView,
)
from authgear_django.webhooks import AuthgearWebhookView
from tests.conftest import LoginFlow

EXPECTED = {
    "login": ("/auth/login/", AuthgearLoginView),
    "signup": ("/auth/signup/", AuthgearLoginView),
    "callback": ("/auth/callback/", AuthgearCallbackView),
    "logout": ("/auth/logout/", AuthgearLogoutView),
    "logout_return": ("/auth/logout/return/", AuthgearLogoutReturnView),
    "logout_everywhere": ("/auth/logout/everywhere/", AuthgearLogoutView),
    "webhook": ("/auth/webhook/", AuthgearWebhookView),
    "sessions": ("/auth/sessions/", AuthgearSessionsView),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_documented_name_reverses_and_resolves_to_its_view(name: str) -> None:
    path, view_class = EXPECTED[name]
    assert reverse(f"authgear_django:{name}") == path
    match = resolve(path)
    assert match.namespace == "authgear_django" and match.url_name == name
    assert match.func.view_class is view_class  # type: ignore[attr-defined]


def test_only_logout_everywhere_ends_every_login() -> None:
    everywhere = resolve("/auth/logout/everywhere/").func.view_initkwargs  # type: ignore[attr-defined]
    plain = resolve("/auth/logout/").func.view_initkwargs  # type: ignore[attr-defined]
    assert everywhere == {"everywhere": True}
    assert plain.get("everywhere", False) is False


@pytest.mark.django_db
def test_signup_opens_authgears_signup_page_and_login_does_not(login_flow: LoginFlow) -> None:
    def params(url: str) -> dict[str, list[str]]:
        return parse_qs(urlsplit(url).query)

    signup = login_flow.client.get("/auth/signup/")
    assert signup.status_code == 302
    assert params(signup["Location"])["x_page"] == ["signup"]
    assert "x_page" not in params(login_flow.start())

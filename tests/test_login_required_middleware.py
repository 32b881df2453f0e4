"""Django 5.1's ``LoginRequiredMiddleware``: every page needs a login unless marked otherwise.

Our views are how a visitor logs in (and out, and how Authgear calls us), so none of them may
send an anonymous visitor to ``LOGIN_URL``; pages of the project still do, with ``next``.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import django
import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser
from tests.webhook_helpers import SECRET, assert_allowed, deliver, event

pytestmark = [
    pytest.mark.skipif(
        django.VERSION < (5, 1), reason="LoginRequiredMiddleware is new in Django 5.1"
    ),
    pytest.mark.django_db,
]

LOGIN_REQUIRED_MIDDLEWARE = "django.contrib.auth.middleware.LoginRequiredMiddleware"
LOGIN_PAGE = "/auth/login/"
PUBLIC_VIEWS = ["login", "signup", "callback", "logout", "logout_return", "logout_everywhere"]


@pytest.fixture(autouse=True)
def login_required_everywhere(settings: Any) -> None:
    """The middleware as Django's docs install it: last, after AuthenticationMiddleware."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, LOGIN_REQUIRED_MIDDLEWARE]
    settings.AUTHGEAR_WEBHOOK_SECRET = SECRET


def where(response: Any) -> str:
    """A redirect's target without its query; "" for any other answer."""
    return urlsplit(response.get("Location", ""))._replace(query="").geturl()


def sent_to_login_page(response: Any) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN_PAGE + "?")


@pytest.mark.usefixtures("fake_authgear")
@pytest.mark.parametrize("name", PUBLIC_VIEWS)
def test_anonymous_get_on_our_views_is_answered_by_the_view(name: str, settings: Any) -> None:
    """Each view gives the answer it gives without the middleware, not a login redirect."""
    url = reverse(f"authgear_django:{name}")
    with_middleware = Client().get(url)
    assert not sent_to_login_page(with_middleware), with_middleware["Location"]

    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != LOGIN_REQUIRED_MIDDLEWARE]
    without = Client().get(url)
    assert with_middleware.status_code == without.status_code
    assert where(with_middleware) == where(without)  # the query differs: state, nonce, PKCE


def test_anonymous_logout_post_is_not_sent_to_the_login_page() -> None:
    """A session that expired before the Log out button was pressed still lands on the
    logout page's answer, not on a login."""
    response = Client().post(reverse("authgear_django:logout"))
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_signed_webhook_is_accepted() -> None:
    """Authgear's servers have no session: the signature is their credential."""
    hook = Client(enforce_csrf_checks=True)
    assert reverse("authgear_django:webhook") == "/auth/webhook/"
    assert_allowed(deliver(hook, event("user.created", str(uuid.uuid4()))))


def test_protected_pages_still_go_to_our_login_with_next() -> None:
    client = Client()
    for path in ("/private/", "/"):  # a login_required view, and an unmarked one
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"{LOGIN_PAGE}?next={path}"


def test_full_login_and_logout_through_authgear(fake_authgear: FakeAuthgear) -> None:
    client = Client()
    next_page = client.get("/private/")["Location"]
    assert next_page == f"{LOGIN_PAGE}?next=/private/"

    flow = LoginFlow(client, fake_authgear)
    landed = flow.login(FakeUser(email="jane@example.com"), "next=/private/")
    assert landed.status_code == 302
    assert landed["Location"] == "/private/"
    assert client.get("/private/").content == b"private for jane"

    logout = client.post(reverse("authgear_django:logout"))
    assert logout["Location"].startswith("https://authgear.test/oauth2/end_session?")
    state = parse_qs(urlsplit(logout["Location"]).query)["state"][0]
    # Authgear sends the now anonymous visitor back to the return view.
    back = client.get(reverse("authgear_django:logout_return"), {"state": state})
    assert back.status_code == 302
    assert back["Location"] == "/"
    assert sent_to_login_page(client.get("/private/"))


def test_a_bearer_token_api_is_judged_by_its_token_not_sent_to_the_login_page(
    fake_authgear: FakeAuthgear,
) -> None:
    """``bearer_token_required`` marks its view: an API caller gets 401/200, never a redirect."""
    anonymous = Client().get("/api/me/")
    assert anonymous.status_code == 401 and "Bearer" in anonymous["WWW-Authenticate"]
    token = fake_authgear.jwt_access_token(FakeUser())
    answer = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 403 and where(answer) == ""  # valid token, user not linked

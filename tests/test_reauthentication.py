"""``reauthentication_required``: a fresh Authgear sign-in by the same user, or no entry."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearLogin
from tests.conftest import CLOCK_START, LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
START = CLOCK_START


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    login_flow.login(authgear_user)
    return login_flow


def params_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_recent_sign_in_gets_in(logged_in: LoginFlow, clock: Any) -> None:
    clock.shift(299)
    assert logged_in.client.get("/sensitive/").content == b"sensitive for jane"


def test_old_sign_in_is_sent_through_authgear_reauthentication_and_back(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    old_id_token = AuthgearLogin.objects.get().id_token
    clock.shift(301)
    response = logged_in.client.get("/sensitive/?tab=1")
    assert response.status_code == 302
    params = params_of(response["Location"])
    assert params["prompt"] == "login" and params["max_age"] == "300"
    assert params["id_token_hint"] == old_id_token
    callback = fake_authgear.authorize(response["Location"], authgear_user)  # signs in again now
    response = logged_in.client.get(callback)
    assert response["Location"] == "/sensitive/?tab=1"
    assert logged_in.client.get("/sensitive/?tab=1").content == b"sensitive for jane"
    assert AuthgearLogin.objects.count() == 1  # the new login replaced the old one


def test_an_old_auth_time_from_authgear_is_refused(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    clock.shift(3600)
    url = logged_in.client.get("/sensitive/")["Location"]
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(auth_time=START)
    response = logged_in.client.get(fake_authgear.authorize(url, authgear_user))
    assert response.status_code == 403
    assert b"confirm it" in response.content
    assert logged_in.client.get("/sensitive/").status_code == 302  # still not let in
    assert logged_in.client.get("/private/").status_code == 200  # but not logged out either


def test_another_user_signing_in_during_reauthentication_is_refused(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    clock.shift(3600)
    url = logged_in.client.get("/sensitive/")["Location"]
    response = logged_in.client.get(fake_authgear.authorize(url, FakeUser(email="eve@example.com")))
    assert response.status_code == 403
    assert logged_in.client.get("/private/").content == b"private for jane"


def test_anonymous_users_go_to_the_login_page(client: Client) -> None:
    response = client.get("/sensitive/")
    assert response["Location"] == "/auth/login/?next=/sensitive/"


def test_password_users_get_a_clear_page(fake_authgear: FakeAuthgear) -> None:
    get_user_model().objects.create_user("admin", password="pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = client.get("/sensitive/")
    assert response.status_code == 403
    assert b"only for users who sign in with Authgear" in response.content

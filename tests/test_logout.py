from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearLogin
from authgear_django.signals import login_revoked
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    return login_flow


def test_get_shows_a_confirmation_form_and_logs_nobody_out(logged_in: LoginFlow) -> None:
    response = logged_in.client.get("/auth/logout/")
    assert response.status_code == 200
    assert b'method="post"' in response.content and b"csrfmiddlewaretoken" in response.content
    assert logged_in.client.get("/private/").status_code == 200


def test_post_without_csrf_token_is_refused(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    flow = LoginFlow(Client(enforce_csrf_checks=True), fake_authgear)
    flow.login(authgear_user)
    assert flow.client.post("/auth/logout/").status_code == 403
    assert flow.client.get("/private/").status_code == 200


def test_post_logs_out_revokes_deletes_and_ends_the_authgear_session(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    login = AuthgearLogin.objects.get()
    id_token = login.id_token
    received = []
    login_revoked.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t")
    try:
        response = logged_in.client.post("/auth/logout/")
    finally:
        login_revoked.disconnect(dispatch_uid="t")

    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://authgear.test/oauth2/end_session"
    )
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == "http://testserver/"
    assert len(params["state"]) >= 16
    assert fake_authgear.live_refresh_tokens() == []
    assert AuthgearLogin.objects.count() == 0
    assert logged_in.client.get("/private/").status_code == 302
    assert received[0]["reason"] == "logout" and received[0]["revoked"] is True


def test_configured_post_logout_redirect_uri_is_sent(logged_in: LoginFlow, settings) -> None:
    settings.AUTHGEAR_POST_LOGOUT_REDIRECT_URI = "https://app.example.com/bye/"
    location = logged_in.client.post("/auth/logout/")["Location"]
    assert parse_qs(urlsplit(location).query)["post_logout_redirect_uri"] == [
        "https://app.example.com/bye/"
    ]


def test_logout_still_happens_here_when_authgear_is_down(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    fake_authgear.fail("revoke", exception=CONNECTION_REFUSED)
    response = logged_in.client.post("/auth/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://authgear.test/oauth2/end_session?")
    assert AuthgearLogin.objects.count() == 0
    assert logged_in.client.get("/private/").status_code == 302


def test_logout_when_discovery_is_down_goes_to_the_local_logout_page(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    from django.core.cache import cache

    cache.clear()
    fake_authgear.fail("discovery", status=503)
    response = logged_in.client.post("/auth/logout/")
    assert response["Location"] == "/"
    assert AuthgearLogin.objects.count() == 0
    assert logged_in.client.get("/private/").status_code == 302


def test_logout_of_a_password_user_is_a_plain_local_logout(fake_authgear: FakeAuthgear) -> None:
    get_user_model().objects.create_user("admin", password="pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = client.post("/auth/logout/")
    assert response["Location"] == "/"
    assert fake_authgear.calls["revoke"] == 0
    assert "_auth_user_id" not in client.session


def test_logging_out_one_device_keeps_the_other_logged_in(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    laptop, phone = LoginFlow(Client(), fake_authgear), LoginFlow(Client(), fake_authgear)
    laptop.login(authgear_user)
    phone.login(authgear_user)
    laptop.client.post("/auth/logout/")
    assert AuthgearLogin.objects.count() == 1
    assert len(fake_authgear.live_refresh_tokens()) == 1
    assert phone.client.get("/private/").status_code == 200


def test_anonymous_get_goes_home(client: Client) -> None:
    assert client.get("/auth/logout/")["Location"] == "/"

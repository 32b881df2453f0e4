from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
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
    assert params["post_logout_redirect_uri"] == "http://testserver/auth/logout/return/"
    assert len(params["state"]) >= 32
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


# --- the way back from Authgear: post_logout_redirect_uri?state=... ---------------------------

SIGNED_OUT = "You have been signed out."


def authgear_end_session(location: str, *, state: str | None = None) -> str:
    """What Authgear's end_session does at the end: 303 to ``post_logout_redirect_uri?state=``."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert location.startswith("https://authgear.test/oauth2/end_session?")
    returned_state = params["state"] if state is None else state
    return params["post_logout_redirect_uri"] + "?" + urlencode({"state": returned_state})


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_returning_from_authgear_with_the_right_state_says_signed_out(
    logged_in: LoginFlow,
) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    assert urlsplit(back).path == "/auth/logout/return/"

    response = logged_in.client.get(back)
    assert response.status_code == 302
    assert response["Location"] == "/"  # LOGOUT_REDIRECT_URL, without the state
    assert messages_of(response) == [SIGNED_OUT]
    landing = logged_in.client.get(response["Location"])
    assert landing.status_code == 200
    assert logged_in.client.get("/private/").status_code == 302


def test_the_state_cookie_is_short_lived_http_only_and_scoped_to_the_return_path(
    logged_in: LoginFlow,
) -> None:
    response = logged_in.client.post("/auth/logout/")
    cookie = response.cookies["authgear_logout_state"]
    assert cookie["path"] == "/auth/logout/return/"
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) <= 600
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    assert cookie.value != state  # signed, not the bare value


@pytest.mark.parametrize("state", ["", "wrong-state", "x" * 5000])
def test_a_wrong_or_missing_state_lands_silently(logged_in: LoginFlow, state: str) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"], state=state)
    response = logged_in.client.get(back if state else back.split("?")[0])
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert messages_of(response) == []


def test_the_return_link_works_once(logged_in: LoginFlow) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    assert messages_of(logged_in.client.get(back)) == [SIGNED_OUT]
    del logged_in.client.cookies["messages"]  # the landing page has shown it
    again = logged_in.client.get(back)
    assert again["Location"] == "/" and messages_of(again) == []


def test_the_return_link_in_another_browser_says_nothing(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    response = Client().get(back)
    assert response["Location"] == "/" and messages_of(response) == []


def test_a_forged_state_cookie_is_ignored(fake_authgear: FakeAuthgear) -> None:
    browser = Client()
    browser.cookies["authgear_logout_state"] = "chosen"
    response = browser.get("/auth/logout/return/?state=chosen")
    assert response["Location"] == "/" and messages_of(response) == []


def test_an_expired_state_cookie_is_ignored(logged_in: LoginFlow) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    with time_machine.travel(time.time() + 601, tick=False):
        response = logged_in.client.get(back)
    assert response["Location"] == "/" and messages_of(response) == []


def test_the_state_cookie_lifetime_follows_the_setting(logged_in: LoginFlow, settings: Any) -> None:
    settings.AUTHGEAR_LOGOUT_STATE_MAX_AGE = 30
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    with time_machine.travel(time.time() + 31, tick=False):
        response = logged_in.client.get(back)
    assert response["Location"] == "/" and messages_of(response) == []


def test_the_return_view_never_redirects_where_the_request_says(logged_in: LoginFlow) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    for extra in ("&next=https://evil.example/", "&next=//evil.example/"):
        assert logged_in.client.get(back + extra)["Location"] == "/"


def test_the_return_view_goes_to_the_configured_landing_page(
    logged_in: LoginFlow, settings: Any
) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    settings.LOGOUT_REDIRECT_URL = "private"
    assert logged_in.client.get(back)["Location"] == "/private/"


def test_without_the_messages_framework_the_return_still_lands(
    logged_in: LoginFlow, settings: Any
) -> None:
    back = authgear_end_session(logged_in.client.post("/auth/logout/")["Location"])
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "django.contrib.messages"]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "messages" not in m]
    browser = Client()  # a client loads the middleware once: a new one sees the new list
    browser.cookies = logged_in.client.cookies
    response = browser.get(back)
    assert response.status_code == 302 and response["Location"] == "/"
    assert "messages" not in response.cookies
    assert browser.get("/").status_code == 200


def test_a_local_only_logout_says_signed_out_straight_away(fake_authgear: FakeAuthgear) -> None:
    get_user_model().objects.create_user("admin", password="pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = client.post("/auth/logout/")
    assert response["Location"] == "/"
    assert messages_of(response) == [SIGNED_OUT]
    assert "authgear_logout_state" not in response.cookies


# --- a posted next: where the logout lands -----------------------------------------------------


def test_a_posted_next_is_where_the_logout_lands_after_authgears_return(
    logged_in: LoginFlow,
) -> None:
    location = logged_in.client.post("/auth/logout/", {"next": "/bye/?a=1"})["Location"]
    back = authgear_end_session(location)
    assert "bye" not in location  # Authgear never sees it: it waits in our signed cookie
    response = logged_in.client.get(back)
    assert response["Location"] == "/bye/?a=1"
    assert messages_of(response) == [SIGNED_OUT]


def test_a_posted_next_is_honoured_only_with_the_matching_state(logged_in: LoginFlow) -> None:
    location = logged_in.client.post("/auth/logout/", {"next": "/bye/"})["Location"]
    response = logged_in.client.get(authgear_end_session(location, state="another"))
    assert response["Location"] == "/" and messages_of(response) == []


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "bye/"])
def test_an_unsafe_posted_next_is_ignored(logged_in: LoginFlow, next_url: str) -> None:
    back = authgear_end_session(
        logged_in.client.post("/auth/logout/", {"next": next_url})["Location"]
    )
    assert logged_in.client.get(back)["Location"] == "/"


def test_a_local_logout_lands_on_the_posted_next_at_once(fake_authgear: FakeAuthgear) -> None:
    get_user_model().objects.create_user("admin", password="pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = client.post("/auth/logout/", {"next": "/bye/"})
    assert response["Location"] == "/bye/"
    assert client.post("/auth/logout/", {"next": "https://evil.example/"})["Location"] == "/"


def test_with_authgear_down_the_logout_lands_on_the_posted_next_at_once(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    from django.core.cache import cache

    cache.clear()  # forget the discovery document: end_session_endpoint cannot be learnt
    fake_authgear.fail("discovery", status=503)
    response = logged_in.client.post("/auth/logout/", {"next": "/bye/"})
    assert response["Location"] == "/bye/"
    assert logged_in.client.get("/private/").status_code == 302


def test_a_return_cookie_from_before_next_existed_still_says_signed_out(
    logged_in: LoginFlow,
) -> None:
    """A logout in flight during an upgrade holds the old cookie: the bare signed state."""
    from django.http import HttpResponse

    from authgear_django.views import LOGOUT_STATE_SALT

    old_release = HttpResponse()  # signed exactly as Django signs it, whatever its version
    old_release.set_signed_cookie("authgear_logout_state", "old-state", salt=LOGOUT_STATE_SALT)
    browser = Client()
    browser.cookies["authgear_logout_state"] = old_release.cookies["authgear_logout_state"].value
    response = browser.get("/auth/logout/return/?state=old-state")
    assert response["Location"] == "/" and messages_of(response) == [SIGNED_OUT]

"""The "Your sessions" page: each browser sees its logins and can sign out the others."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import resolve, reverse

from authgear_django.models import AuthgearLogin
from authgear_django.sessions_views import AuthgearSessionsView
from authgear_django.signals import login_revoked
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
PAGE = "/auth/sessions/"


def browser(fake: FakeAuthgear, user_agent: str, address: str, **client: Any) -> LoginFlow:
    return LoginFlow(Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address, **client), fake)


def signed_in(flow: LoginFlow, user: FakeUser) -> LoginFlow:
    assert flow.login(user).status_code == 302
    assert flow.client.get("/private/").status_code == 200
    return flow


def login_of(flow: LoginFlow) -> AuthgearLogin:
    return AuthgearLogin.objects.get(session_key=flow.client.session.session_key)


def is_anonymous(client: Client) -> bool:
    return bool(client.get("/private/").status_code == 302)


def live_grant_count(fake: FakeAuthgear) -> int:
    return len(fake.live_refresh_tokens())


@pytest.fixture
def person() -> FakeUser:
    return FakeUser()


@pytest.fixture
def laptop(fake_authgear: FakeAuthgear, person: FakeUser) -> LoginFlow:
    return signed_in(browser(fake_authgear, CHROME_WINDOWS, "203.0.113.9"), person)


@pytest.fixture
def phone(fake_authgear: FakeAuthgear, person: FakeUser, laptop: LoginFlow) -> LoginFlow:
    return signed_in(browser(fake_authgear, SAFARI_IPHONE, "2001:db8::7"), person)


def test_the_url_is_named_and_served_by_the_sessions_view() -> None:
    assert reverse("authgear_django:sessions") == PAGE
    assert resolve(PAGE).func.view_class is AuthgearSessionsView  # type: ignore[attr-defined]


def test_each_browser_lists_both_logins_and_marks_its_own(
    laptop: LoginFlow, phone: LoginFlow
) -> None:
    laptop_login, phone_login = login_of(laptop), login_of(phone)

    for flow, own, other in [
        (laptop, laptop_login, phone_login),
        (phone, phone_login, laptop_login),
    ]:
        response = flow.client.get(PAGE)
        assert response.status_code == 200
        rows = response.context["sessions"]
        assert [row.id for row in rows] == [str(own.pk), str(other.pk)]  # this device first
        assert [row.is_current for row in rows] == [True, False]
        html = response.content.decode()
        assert html.count("This device") == 1
        assert "Sign out all other sessions" in html

    page = laptop.client.get(PAGE)
    html = page.content.decode()
    assert "Windows computer, Chrome" in html and "iPhone, Safari" in html
    assert "203.0.113.9" in html and "2001:db8::7" in html
    rows = {row.id: row for row in page.context["sessions"]}
    assert rows[str(laptop_login.pk)].signed_in_at == laptop_login.created_at
    assert rows[str(laptop_login.pk)].last_active_at == laptop_login.created_at


def test_the_address_at_sign_in_is_remote_addr_never_a_forwarded_header(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    flow = browser(fake_authgear, FIREFOX_LINUX, "198.51.100.4", HTTP_X_FORWARDED_FOR="1.2.3.4")
    signed_in(flow, person)
    assert login_of(flow).ip_address == "198.51.100.4"


def test_a_strange_remote_addr_stores_no_address_and_the_login_works(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    flow = signed_in(browser(fake_authgear, FIREFOX_LINUX, "unix-socket"), person)
    assert login_of(flow).ip_address is None
    assert "unknown" in flow.client.get(PAGE).content.decode()


def test_signing_out_the_other_browser_ends_it_here_and_at_authgear(
    laptop: LoginFlow, phone: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    phone_login = login_of(phone)
    received: list[dict[str, Any]] = []
    login_revoked.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="sessions")
    try:
        response = laptop.client.post(PAGE, {"login": str(phone_login.pk)})
    finally:
        login_revoked.disconnect(dispatch_uid="sessions")

    assert response.status_code == 302 and response["Location"] == PAGE
    assert is_anonymous(phone.client)
    assert not AuthgearLogin.objects.filter(pk=phone_login.pk).exists()
    assert fake_authgear.calls["revoke"] == 1 and live_grant_count(fake_authgear) == 1
    assert [(kw["reason"], kw["revoked"]) for kw in received] == [("user_ended", True)]
    assert not is_anonymous(laptop.client)
    assert "Signed out 1 session." in laptop.client.get(PAGE).content.decode()


def test_signing_out_all_others_keeps_only_this_browser(
    laptop: LoginFlow, phone: LoginFlow, fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    desktop = signed_in(browser(fake_authgear, FIREFOX_LINUX, "192.0.2.1"), person)
    laptop_login = login_of(laptop)

    response = laptop.client.post(PAGE, {"others": "1"})

    assert response.status_code == 302 and response["Location"] == PAGE
    assert is_anonymous(phone.client) and is_anonymous(desktop.client)
    assert list(AuthgearLogin.objects.values_list("pk", flat=True)) == [laptop_login.pk]
    assert fake_authgear.calls["revoke"] == 2 and live_grant_count(fake_authgear) == 1
    assert not is_anonymous(laptop.client)
    page = laptop.client.get(PAGE).content.decode()
    assert "Signed out 2 sessions." in page and "Sign out all other sessions" not in page


def test_signing_out_this_browser_from_the_list_logs_it_out(
    laptop: LoginFlow, phone: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    response = laptop.client.post(PAGE, {"login": str(login_of(laptop).pk)})

    assert response.status_code == 302 and response["Location"] == "/"
    assert is_anonymous(laptop.client)
    assert not is_anonymous(phone.client)
    assert AuthgearLogin.objects.count() == 1
    assert fake_authgear.calls["revoke"] == 1 and live_grant_count(fake_authgear) == 1


def test_another_users_login_is_not_found_and_stays(
    laptop: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    stranger = signed_in(browser(fake_authgear, FIREFOX_LINUX, "192.0.2.8"), FakeUser())
    foreign = login_of(stranger)

    response = laptop.client.post(PAGE, {"login": str(foreign.pk)})

    assert response.status_code == 404
    assert AuthgearLogin.objects.filter(pk=foreign.pk).exists()
    assert not is_anonymous(stranger.client)
    assert fake_authgear.calls["revoke"] == 0
    assert str(foreign.pk) not in laptop.client.get(PAGE).content.decode()


@pytest.mark.parametrize(
    "value", ["not-a-uuid", "", "0" * 5000, "00000000-0000-0000-0000-000000000000"]
)
def test_a_malformed_or_unknown_login_id_is_not_found(laptop: LoginFlow, value: str) -> None:
    assert laptop.client.post(PAGE, {"login": value}).status_code == 404
    assert AuthgearLogin.objects.count() == 1


def test_a_post_naming_nothing_is_refused_and_ends_nothing(
    laptop: LoginFlow, phone: LoginFlow
) -> None:
    assert laptop.client.post(PAGE, {}).status_code == 400
    assert AuthgearLogin.objects.count() == 2


def test_a_get_never_ends_anything(
    laptop: LoginFlow, phone: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    phone_id = str(login_of(phone).pk)
    response = laptop.client.get(PAGE, {"login": phone_id, "others": "1"})
    assert response.status_code == 200
    assert AuthgearLogin.objects.count() == 2
    assert fake_authgear.calls["revoke"] == 0
    assert not is_anonymous(phone.client)


def test_signing_out_needs_the_csrf_token(
    fake_authgear: FakeAuthgear, person: FakeUser, phone: LoginFlow
) -> None:
    guarded = signed_in(
        browser(fake_authgear, FIREFOX_LINUX, "192.0.2.9", enforce_csrf_checks=True), person
    )
    phone_id = str(login_of(phone).pk)

    assert guarded.client.post(PAGE, {"login": phone_id}).status_code == 403
    assert guarded.client.post(PAGE, {"others": "1"}).status_code == 403
    assert AuthgearLogin.objects.count() == 3 and fake_authgear.calls["revoke"] == 0
    assert not is_anonymous(phone.client)

    page = guarded.client.get(PAGE)
    assert b"csrfmiddlewaretoken" in page.content
    token = guarded.client.cookies["csrftoken"].value
    accepted = guarded.client.post(PAGE, {"login": phone_id, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302 and is_anonymous(phone.client)


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=/auth/sessions/"
    assert client.post(PAGE, {"others": "1"}).status_code == 302


def test_a_password_only_user_sees_an_empty_list_and_why(client: Client) -> None:
    get_user_model().objects.create_user("pat", password="pw")
    client.login(username="pat", password="pw")
    response = client.get(PAGE)
    assert response.status_code == 200
    assert response.context["sessions"] == []
    assert "You did not sign in through Authgear" in response.content.decode()
    assert client.post(PAGE, {"others": "1"}).status_code == 302


def test_the_page_holds_no_token_of_any_login(
    laptop: LoginFlow, phone: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    html = laptop.client.get(PAGE).content.decode()
    for login in AuthgearLogin.objects.all():
        for value in [
            login.refresh_token,
            login.access_token,
            login.id_token,
            login.encrypted_refresh_token,
            login.encrypted_access_token,
            login.encrypted_id_token,
            login.session_key,
        ]:
            assert value and value not in html

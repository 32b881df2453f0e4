from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests.conftest import LoginFlow, assert_session_entry
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_first_login_creates_user_links_sub_and_stores_encrypted_tokens(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    response = login_flow.login(authgear_user)
    assert response.status_code == 302
    assert response["Location"] == "/private/"
    assert client.get("/private/").content == b"private for jane"

    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == ("jane@example.com", "Jane", "Doe")
    assert not user.has_usable_password()
    account = AuthgearAccount.objects.get()
    assert account.user == user and account.sub == authgear_user.sub
    assert account.claims["email"] == "jane@example.com"

    login = AuthgearLogin.objects.get()
    assert login.account == account
    [refresh_token] = fake_authgear.live_refresh_tokens()
    assert login.refresh_token == refresh_token
    assert login.encrypted_refresh_token and refresh_token not in login.encrypted_refresh_token
    assert login.access_token and login.id_token
    assert login.access_token_lifetime == 1800
    assert login.session_key == client.session.session_key
    assert_session_entry(client.session, login)
    session_blob = str(dict(client.session.items()))
    for token in (login.refresh_token, login.access_token, login.id_token):
        assert token not in session_blob


def test_the_code_exchange_uses_client_secret_post_and_the_pkce_verifier(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    login_flow.login(authgear_user)
    [form] = [form for name, form in fake_authgear.requests if name == "token"]
    assert form["grant_type"] == ["authorization_code"]
    assert form["client_id"] == [fake_authgear.client_id]
    assert form["client_secret"] == [fake_authgear.client_secret]
    assert form["redirect_uri"] == ["http://testserver/auth/callback/"]
    assert len(form["code_verifier"][0]) >= 43


def test_next_login_updates_profile_and_adds_a_second_login_row(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    laptop, phone = LoginFlow(Client(), fake_authgear), LoginFlow(Client(), fake_authgear)
    laptop.login(authgear_user)
    authgear_user.email = "jane.doe@example.com"
    authgear_user.family_name = "Doe-Smith"
    phone.login(authgear_user)
    user = User.objects.get()
    assert (user.email, user.last_name) == ("jane.doe@example.com", "Doe-Smith")
    assert AuthgearLogin.objects.filter(account__user=user).count() == 2
    assert AuthgearAccount.objects.get().email == "jane.doe@example.com"


def test_safe_next_is_followed_after_login(login_flow: LoginFlow, authgear_user: FakeUser) -> None:
    response = login_flow.login(authgear_user, "next=/private/%3Fpage%3D2")
    assert response["Location"] == "/private/?page=2"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
    ],
)
def test_unsafe_next_is_ignored(
    login_flow: LoginFlow, authgear_user: FakeUser, next_url: str
) -> None:
    from urllib.parse import quote

    response = login_flow.login(authgear_user, "next=" + quote(next_url, safe="%"))
    assert response["Location"] == "/private/"


def test_two_tabs_logging_in_at_once_both_succeed(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    first = login_flow.start("next=/first/")
    second = login_flow.start("next=/second/")
    assert (
        login_flow.finish(fake_authgear.authorize(second, authgear_user))["Location"] == "/second/"
    )
    assert login_flow.finish(fake_authgear.authorize(first, authgear_user))["Location"] == "/first/"
    assert client.get("/private/").status_code == 200
    # The second callback replaced the first login of this browser: one row, one session.
    assert AuthgearLogin.objects.count() == 1


def test_usernames_never_collide(fake_authgear: FakeAuthgear) -> None:
    User.objects.create_user("jane", email="other@example.com")
    LoginFlow(Client(), fake_authgear).login(FakeUser(email="jane@example.com"))
    LoginFlow(Client(), fake_authgear).login(FakeUser(email="jane@elsewhere.example"))
    usernames = sorted(User.objects.values_list("username", flat=True))
    assert len(usernames) == 3 and len(set(usernames)) == 3
    assert all(name.startswith("jane") for name in usernames)


def test_existing_user_is_not_linked_by_email_by_default(fake_authgear: FakeAuthgear) -> None:
    existing = User.objects.create_user("jane", email="jane@example.com")
    LoginFlow(Client(), fake_authgear).login(FakeUser(email="jane@example.com"))
    assert AuthgearAccount.objects.get().user != existing


def test_existing_user_is_linked_by_verified_email_when_allowed(
    fake_authgear: FakeAuthgear, settings
) -> None:
    settings.AUTHGEAR_LINK_USERS_BY_EMAIL = True
    existing = User.objects.create_user("jane-old", email="Jane@Example.com")
    LoginFlow(Client(), fake_authgear).login(FakeUser(email="jane@example.com"))
    assert AuthgearAccount.objects.get().user == existing
    assert User.objects.count() == 1


def test_unverified_email_never_links(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_LINK_USERS_BY_EMAIL = True
    existing = User.objects.create_user("jane-old", email="jane@example.com")
    LoginFlow(Client(), fake_authgear).login(
        FakeUser(email="jane@example.com", email_verified=False)
    )
    assert AuthgearAccount.objects.get().user != existing


def test_inactive_user_is_refused_with_a_clear_page(
    login_flow: LoginFlow, client: Client, authgear_user: FakeUser, fake_authgear: FakeAuthgear
) -> None:
    login_flow.login(authgear_user)
    User.objects.update(is_active=False)
    fresh = LoginFlow(Client(), fake_authgear)
    response = fresh.login(authgear_user)
    assert response.status_code == 403
    assert b"disabled" in response.content
    assert "_auth_user_id" not in fresh.client.session
    assert AuthgearLogin.objects.count() == 1  # only the earlier login


def test_no_user_is_created_when_creation_is_off(
    login_flow: LoginFlow, client: Client, authgear_user: FakeUser, settings
) -> None:
    settings.AUTHGEAR_CREATE_USERS = False
    response = login_flow.login(authgear_user)
    assert response.status_code == 403
    assert User.objects.count() == 0 and AuthgearLogin.objects.count() == 0

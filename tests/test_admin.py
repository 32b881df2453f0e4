"""The admin for linked users: every page renders without a token; revoking really revokes."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def two_devices(fake_authgear: FakeAuthgear) -> tuple[LoginFlow, LoginFlow]:
    person = FakeUser(roles=["admin"])
    laptop, phone = LoginFlow(Client(), fake_authgear), LoginFlow(Client(), fake_authgear)
    laptop.login(person)
    phone.login(person)
    return laptop, phone


@pytest.fixture
def admin_client() -> Client:
    User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.login(username="root", password="pw")
    return client


def secrets_in(fake: FakeAuthgear) -> list[str]:
    values = [fake.client_secret, *fake.live_refresh_tokens(), *fake.access_tokens]
    for login in AuthgearLogin.objects.all():
        values += [
            login.id_token or "",
            login.encrypted_refresh_token,
            login.encrypted_access_token,
            login.encrypted_id_token,
        ]
    return [value for value in values if value]


def test_every_admin_page_renders_and_shows_no_token(
    two_devices: Any, admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    account = AuthgearAccount.objects.get()
    login = AuthgearLogin.objects.first()
    assert login is not None
    pages = [
        "/admin/authgear_django/authgearaccount/",
        "/admin/authgear_django/authgearaccount/?q=jane",
        f"/admin/authgear_django/authgearaccount/?q={account.sub}",
        f"/admin/authgear_django/authgearaccount/{account.pk}/change/",
        f"/admin/authgear_django/authgearaccount/{account.pk}/delete/",
        "/admin/authgear_django/authgearlogin/",
        f"/admin/authgear_django/authgearlogin/{login.pk}/change/",
        f"/admin/auth/user/{account.user_id}/change/",
    ]
    secrets = secrets_in(fake_authgear)
    assert len(secrets) > 6
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, page
    listing = admin_client.get("/admin/authgear_django/authgearaccount/").content.decode()
    assert account.sub in listing and "jane@example.com" in listing
    assert ">2<" in listing  # two active logins
    user_page = admin_client.get(f"/admin/auth/user/{account.user_id}/change/").content.decode()
    assert account.sub in user_page and "Logins and unlinking" in user_page


def test_revoke_selected_logins_revokes_at_authgear_and_ends_the_session(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    laptop, phone = two_devices
    laptop_login = AuthgearLogin.objects.get(session_key=laptop.client.session.session_key)
    response = admin_client.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "revoke_selected", "_selected_action": [str(laptop_login.pk)]},
        follow=True,
    )
    assert b"Revoked 1 login(s) at Authgear" in response.content
    assert not AuthgearLogin.objects.filter(pk=laptop_login.pk).exists()
    assert len(fake_authgear.live_refresh_tokens()) == 1
    assert laptop.client.get("/private/").status_code == 302  # logged out at its next request
    assert phone.client.get("/private/").status_code == 200


def test_deleting_a_login_on_the_account_page_revokes_it(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    account = AuthgearAccount.objects.get()
    logins = list(account.logins.order_by("created_at"))
    page = f"/admin/authgear_django/authgearaccount/{account.pk}/change/"
    data = {
        "logins-TOTAL_FORMS": "2",
        "logins-INITIAL_FORMS": "2",
        "logins-MIN_NUM_FORMS": "0",
        "logins-MAX_NUM_FORMS": "1000",
        "logins-0-id": str(logins[0].pk),
        "logins-0-account": str(account.pk),
        "logins-0-DELETE": "on",
        "logins-1-id": str(logins[1].pk),
        "logins-1-account": str(account.pk),
    }
    response = admin_client.post(page, data)
    assert response.status_code == 302, response.content[:2000]
    assert list(account.logins.all()) == [logins[1]]
    assert len(fake_authgear.live_refresh_tokens()) == 1


def test_unlink_revokes_everything_and_keeps_the_user(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    laptop, phone = two_devices
    account = AuthgearAccount.objects.get()
    admin_client.post(
        "/admin/authgear_django/authgearaccount/",
        {"action": "unlink_accounts", "_selected_action": [str(account.pk)]},
    )
    assert AuthgearAccount.objects.count() == 0 and AuthgearLogin.objects.count() == 0
    assert User.objects.filter(pk=account.user_id).exists()
    assert fake_authgear.live_refresh_tokens() == []
    assert laptop.client.get("/private/").status_code == 302
    assert phone.client.get("/private/").status_code == 302


def test_staff_without_delete_permission_cannot_revoke(
    two_devices: Any, fake_authgear: FakeAuthgear
) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_authgearlogin", "view_authgearaccount"])
    )
    client = Client()
    client.login(username="viewer", password="pw")
    assert client.get("/admin/authgear_django/authgearlogin/").status_code == 200
    login = AuthgearLogin.objects.first()
    assert login is not None
    client.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "revoke_selected", "_selected_action": [str(login.pk)]},
    )
    assert AuthgearLogin.objects.count() == 2
    assert len(fake_authgear.live_refresh_tokens()) == 2


def test_admin_actions_need_the_csrf_token(two_devices: Any, fake_authgear: FakeAuthgear) -> None:
    User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.login(username="root", password="pw")
    login = AuthgearLogin.objects.first()
    assert login is not None
    response = client.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "revoke_selected", "_selected_action": [str(login.pk)]},
    )
    assert response.status_code == 403
    assert AuthgearLogin.objects.count() == 2


def test_djangos_delete_selected_action_revokes_too(
    two_devices: Any, admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    login = AuthgearLogin.objects.first()
    assert login is not None
    admin_client.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "delete_selected", "_selected_action": [str(login.pk)], "post": "yes"},
    )
    assert not AuthgearLogin.objects.filter(pk=login.pk).exists()
    assert len(fake_authgear.live_refresh_tokens()) == 1


def _site_with_user_admin(admin_class: type) -> Any:
    from django.contrib import admin

    site = admin.AdminSite(name="isolated")
    site.register(User, admin_class)
    return site


def test_importing_the_admin_module_changes_no_other_apps_admin() -> None:
    """The link is added from AppConfig.ready, never as a side effect of an import."""
    import subprocess
    import sys

    script = """
import sys
import django
django.setup()
from django.contrib import admin
from django.contrib.auth import get_user_model
from authgear_django.models import AuthgearAccount, AuthgearLogin
user_admin = admin.site._registry[get_user_model()]
user_admin.inlines = []
admin.site.unregister([AuthgearAccount, AuthgearLogin])
del sys.modules["authgear_django.admin"]
import authgear_django.admin
print(len(user_admin.inlines))
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "0"


def test_ready_attaches_the_link_to_the_registered_user_admin() -> None:
    from django.contrib.auth.admin import UserAdmin

    from authgear_django.admin import AuthgearAccountUserInline, attach_to_user_admin

    site = _site_with_user_admin(UserAdmin)
    assert attach_to_user_admin(site) is True
    assert attach_to_user_admin(site) is True  # idempotent: the inline appears once
    assert site._registry[User].inlines.count(AuthgearAccountUserInline) == 1


def test_attaching_without_a_user_admin_reports_it() -> None:
    from django.contrib import admin

    from authgear_django.admin import attach_to_user_admin, user_admin_shows_link

    site = admin.AdminSite(name="empty")
    assert attach_to_user_admin(site) is False
    assert user_admin_shows_link(site) is None


def test_opt_in_mixin_shows_the_link_whatever_the_app_order(rf: Any) -> None:
    from django.contrib.auth.admin import UserAdmin

    from authgear_django.admin import (
        AuthgearAccountUserInline,
        AuthgearUserAdminMixin,
        user_admin_shows_link,
    )

    class ProjectUserAdmin(AuthgearUserAdminMixin, UserAdmin):  # type: ignore[misc]
        pass

    site = _site_with_user_admin(ProjectUserAdmin)
    assert user_admin_shows_link(site) is True
    inlines = site._registry[User].get_inlines(rf.get("/"), None)
    assert inlines.count(AuthgearAccountUserInline) == 1


def test_the_projects_user_page_shows_the_link(admin_client: Client) -> None:
    user = User.objects.create_user("linked")
    AuthgearAccount.objects.create(user=user, sub="sub-linked", email="l@example.com")
    page = admin_client.get(f"/admin/auth/user/{user.pk}/change/").content.decode()
    assert "Logins and unlinking" in page


# --- revoking goes through store.end_logins: the row's current token, once per login ----------


def revoked_refresh_tokens(fake: FakeAuthgear) -> list[str]:
    return [
        token
        for call in fake.mock.calls
        if call.request.url == fake.url("/oauth2/revoke")
        for token in parse_qs(call.request.body)["token"]
    ]


def test_revoking_a_login_loaded_before_a_rotating_refresh_revokes_the_newest_token(
    clock: Any, login_flow: LoginFlow, authgear_user: FakeUser, fake_authgear: FakeAuthgear
) -> None:
    """The admin's page (or the command's batch) was loaded, then the user's browser refreshed
    with rotation: the token to revoke is the one in the row now, not the dead one loaded."""
    from authgear_django.admin import revoke_logins

    login_flow.login(authgear_user)
    fake_authgear.rotation = True
    loaded = list(AuthgearLogin.objects.select_related("account"))
    clock.shift(1800)
    assert login_flow.client.get("/private/").status_code == 200  # rotated meanwhile
    newest = AuthgearLogin.objects.get().refresh_token
    assert newest is not None and newest != loaded[0].refresh_token

    assert revoke_logins(loaded) == (1, 1)
    # Authgear revokes a grant only for its current secret: the newest token must be the one sent.
    assert revoked_refresh_tokens(fake_authgear) == [newest]
    assert fake_authgear.live_refresh_tokens() == []
    assert AuthgearLogin.objects.count() == 0
    assert login_flow.client.get("/private/").status_code == 302


def test_a_login_ended_elsewhere_meanwhile_is_not_ended_or_reported_again(
    two_devices: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear
) -> None:
    from authgear_django.admin import revoke_logins
    from authgear_django.signals import login_revoked

    laptop, _phone = two_devices
    loaded = list(AuthgearLogin.objects.select_related("account"))
    assert laptop.client.post("/auth/logout/").status_code == 302  # ends the laptop's login
    reported: list[dict[str, Any]] = []
    login_revoked.connect(lambda **kw: reported.append(kw), weak=False, dispatch_uid="t_admin")
    try:
        assert revoke_logins(loaded) == (1, 1)  # the phone's; the laptop's was gone
    finally:
        login_revoked.disconnect(dispatch_uid="t_admin")
    assert [(event["reason"], event["revoked"]) for event in reported] == [("admin_revoke", True)]
    assert len(revoked_refresh_tokens(fake_authgear)) == 2  # the laptop's logout, the phone's


def test_revoke_reports_the_logins_authgear_could_not_revoke(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    fake_authgear.fail("revoke", status=503)
    ids = [str(pk) for pk in AuthgearLogin.objects.values_list("pk", flat=True)]
    response = admin_client.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "revoke_selected", "_selected_action": ids},
        follow=True,
    )
    assert b"Ended 2 login(s) here; Authgear confirmed 0 revocation(s)" in response.content
    assert not AuthgearLogin.objects.exists()  # ended here even so


def test_revoke_all_logins_of_an_account_revokes_every_device(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    laptop, phone = two_devices
    account = AuthgearAccount.objects.get()
    response = admin_client.post(
        "/admin/authgear_django/authgearaccount/",
        {"action": "revoke_all_logins", "_selected_action": [str(account.pk)]},
        follow=True,
    )
    assert b"Revoked 2 login(s) at Authgear" in response.content
    assert fake_authgear.live_refresh_tokens() == []
    assert AuthgearAccount.objects.filter(pk=account.pk).exists()  # the link stays
    assert laptop.client.get("/private/").status_code == 302
    assert phone.client.get("/private/").status_code == 302


def test_deleting_one_login_on_its_page_revokes_it(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    laptop, phone = two_devices
    login = AuthgearLogin.objects.get(session_key=laptop.client.session.session_key)
    admin_client.post(f"/admin/authgear_django/authgearlogin/{login.pk}/delete/", {"post": "yes"})
    assert not AuthgearLogin.objects.filter(pk=login.pk).exists()
    assert len(fake_authgear.live_refresh_tokens()) == 1
    assert laptop.client.get("/private/").status_code == 302
    assert phone.client.get("/private/").status_code == 200


def test_djangos_delete_selected_on_accounts_revokes_their_logins(
    two_devices: tuple[LoginFlow, LoginFlow], admin_client: Client, fake_authgear: FakeAuthgear
) -> None:
    account = AuthgearAccount.objects.get()
    admin_client.post(
        "/admin/authgear_django/authgearaccount/",
        {"action": "delete_selected", "_selected_action": [str(account.pk)], "post": "yes"},
    )
    assert not AuthgearAccount.objects.exists()
    assert fake_authgear.live_refresh_tokens() == []
    assert User.objects.filter(pk=account.user_id).exists()


def test_login_pages_show_device_address_and_last_check_like_the_sessions_page(
    fake_authgear: FakeAuthgear, admin_client: Client
) -> None:
    chrome_on_windows = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    )
    flow = LoginFlow(
        Client(HTTP_USER_AGENT=chrome_on_windows, REMOTE_ADDR="203.0.113.44"), fake_authgear
    )
    flow.login(FakeUser())
    login = AuthgearLogin.objects.get()
    AuthgearLogin.objects.filter(pk=login.pk).update(last_checked_at=login.created_at)
    pages = [
        "/admin/authgear_django/authgearlogin/",
        f"/admin/authgear_django/authgearlogin/{login.pk}/change/",
        f"/admin/authgear_django/authgearaccount/{login.account_id}/change/",  # the inline
    ]
    for page in pages:
        html = admin_client.get(page).content.decode()
        assert "Windows computer, Chrome" in html, page
        assert "203.0.113.44" in html, page
        assert "device and browser" in html.lower(), page
        assert "authgear session last confirmed" in html.lower(), page

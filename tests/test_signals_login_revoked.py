"""``login_revoked`` for each documented ``reason`` a user, an admin or a command causes,
with whether Authgear was asked to revoke. See ``test_signals.py``.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests import signal_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.signal_helpers import (
    Received,
    assert_revoked_rows_were_gone,
    is_logged_in,
    two_devices,
)

pytestmark = pytest.mark.django_db

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
received = signal_helpers.received
logged_in = signal_helpers.logged_in
admin_client = signal_helpers.admin_client


# --- login_revoked: logout, logout everywhere, replaced ------------------------------------------


def test_logout_sends_login_revoked_logout_revoked_and_user_logged_out(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, received: Received
) -> None:
    login_pk = AuthgearLogin.objects.get().pk
    user = AuthgearAccount.objects.get().user
    response = logged_in.client.post("/auth/logout/")
    assert response.status_code == 302
    assert received.reasons() == [("logout", True)]
    assert received.of("login_revoked")[0].kwargs["login"].pk == login_pk
    (logged_out,) = received.of("user_logged_out")
    assert logged_out.kwargs["user"] == user
    assert logged_out.kwargs["request"] is response.wsgi_request
    assert fake_authgear.live_refresh_tokens() == []
    assert_revoked_rows_were_gone(received)


def test_logout_with_authgear_down_still_ends_the_login_but_reports_revoked_false(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, received: Received
) -> None:
    fake_authgear.fail("revoke", exception=CONNECTION_REFUSED)
    assert logged_in.client.post("/auth/logout/").status_code == 302
    assert received.reasons() == [("logout", False)]
    assert AuthgearLogin.objects.count() == 0


def test_logout_everywhere_reports_this_login_as_logout_and_the_others_as_logout_everywhere(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    laptop, phone = two_devices(fake_authgear, authgear_user)
    laptop_pk = AuthgearLogin.objects.get(session_key=laptop.client.session.session_key).pk
    phone_pk = AuthgearLogin.objects.get(session_key=phone.client.session.session_key).pk
    received.clear()

    assert laptop.client.post("/auth/logout/everywhere/").status_code == 302

    assert received.reasons() == [("logout", True), ("logout_everywhere", True)]
    assert [s.kwargs["login"].pk for s in received.of("login_revoked")] == [laptop_pk, phone_pk]
    assert not is_logged_in(phone)
    assert_revoked_rows_were_gone(received)


def test_logging_in_again_in_the_same_browser_reports_the_old_login_replaced_not_revoked(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    old_pk = AuthgearLogin.objects.get().pk
    assert logged_in.login(authgear_user).status_code == 302
    assert received.reasons() == [("replaced", False)]
    assert received.of("login_revoked")[0].kwargs["login"].pk == old_pk
    # The old refresh token stays live at Authgear: revoking it could end the SSO session.
    assert len(fake_authgear.live_refresh_tokens()) == 2
    # Replaced before login_linked announces the new one.
    assert received.names() == ["user_logged_in", "login_revoked", "login_linked"]
    assert_revoked_rows_were_gone(received)


# --- login_revoked: admin, command --------------------------------------------------------------


def test_the_admin_revoke_action_reports_admin_revoke(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, admin_client: Client, received: Received
) -> None:
    laptop, phone = two_devices(fake_authgear, authgear_user)
    target = AuthgearLogin.objects.get(session_key=laptop.client.session.session_key)
    received.clear()
    admin_client.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "revoke_selected", "_selected_action": [str(target.pk)]},
    )
    assert received.reasons() == [("admin_revoke", True)]
    assert received.of("login_revoked")[0].kwargs["login"].pk == target.pk
    assert not is_logged_in(laptop) and is_logged_in(phone)
    assert_revoked_rows_were_gone(received)


def test_unlinking_in_the_admin_reports_every_login_as_unlink(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, admin_client: Client, received: Received
) -> None:
    two_devices(fake_authgear, authgear_user)
    account = AuthgearAccount.objects.get()
    pks = set(AuthgearLogin.objects.values_list("pk", flat=True))
    received.clear()
    admin_client.post(
        "/admin/authgear_django/authgearaccount/",
        {"action": "unlink_accounts", "_selected_action": [str(account.pk)]},
    )
    assert received.reasons() == [("unlink", True), ("unlink", True)]
    assert {s.kwargs["login"].pk for s in received.of("login_revoked")} == pks
    assert fake_authgear.live_refresh_tokens() == []
    assert_revoked_rows_were_gone(received)


def test_the_revoke_command_reports_admin_revoke(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    two_devices(fake_authgear, authgear_user)
    received.clear()
    call_command("authgear_revoke", "--sub", authgear_user.sub, stdout=StringIO())
    assert received.reasons() == [("admin_revoke", True), ("admin_revoke", True)]
    assert AuthgearLogin.objects.count() == 0
    assert_revoked_rows_were_gone(received)


def test_the_cleanup_command_sends_no_signal(
    logged_in: LoginFlow, received: Received, clock: Any
) -> None:
    """Documented: ``authgear_cleanup`` deletes dead rows in bulk and sends nothing."""
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()  # the login's session is gone: its row is dead
    call_command("authgear_cleanup", stdout=StringIO())
    assert AuthgearLogin.objects.count() == 0
    assert received.events == []

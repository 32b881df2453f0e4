"""Every signal the package sends, driven through the real flow, with its documented kwargs.

``authgear_django/signals.py`` documents each signal's keyword arguments and, for
``login_revoked``, every ``reason`` and whether Authgear was asked to revoke. Each test here
makes that happen the way a user, an admin, Authgear or a command would (test client, fake
Authgear at the HTTP boundary, really signed tokens, real webhook signatures) and checks what a
receiver connected for the test got. Django's own ``user_logged_in``, ``user_logged_out`` and
``user_login_failed``, which our views trigger, are covered too.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.management import call_command
from django.dispatch import Signal
from django.test import Client

from authgear_django import signals
from authgear_django.exceptions import AuthgearError, TokenValidationError
from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from authgear_django.webhooks import SIGNATURE_HEADER
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
User = get_user_model()

OURS: dict[str, Signal] = {
    "login_linked": signals.login_linked,
    "tokens_refreshed": signals.tokens_refreshed,
    "refresh_failed": signals.refresh_failed,
    "login_revoked": signals.login_revoked,
    "webhook_received": signals.webhook_received,
    "session_checked": signals.session_checked,
    "token_endpoint_rate_limited": signals.token_endpoint_rate_limited,
}
DJANGOS: dict[str, Signal] = {
    "user_logged_in": user_logged_in,
    "user_logged_out": user_logged_out,
    "user_login_failed": user_login_failed,
}


@dataclass
class Sent:
    name: str
    sender: Any
    kwargs: dict[str, Any]
    # For login_revoked: whether the login's row still existed when the signal was sent.
    row_existed: bool | None = None


@dataclass
class Received:
    """Every signal sent during a test, in order."""

    events: list[Sent] = field(default_factory=list)

    def of(self, name: str) -> list[Sent]:
        return [sent for sent in self.events if sent.name == name]

    def names(self) -> list[str]:
        return [sent.name for sent in self.events]

    def reasons(self) -> list[tuple[str, bool]]:
        return [(s.kwargs["reason"], s.kwargs["revoked"]) for s in self.of("login_revoked")]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def received() -> Iterator[Received]:
    """A receiver on every signal, connected for this test only."""
    record = Received()

    def receiver_for(name: str) -> Any:
        def receive(sender: Any, signal: Signal, **kwargs: Any) -> None:
            existed = None
            if name == "login_revoked":
                existed = AuthgearLogin.objects.filter(pk=kwargs["login"].pk).exists()
            record.events.append(Sent(name, sender, kwargs, existed))

        return receive

    connected = {**OURS, **DJANGOS}
    try:
        for name, signal in connected.items():
            signal.connect(receiver_for(name), weak=False, dispatch_uid=f"test_signals.{name}")
        yield record
    finally:
        for name, signal in connected.items():
            signal.disconnect(dispatch_uid=f"test_signals.{name}")


@pytest.fixture
def logged_in(
    clock: Any, login_flow: LoginFlow, authgear_user: FakeUser, received: Received
) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    received.clear()
    return login_flow


@pytest.fixture
def admin_client() -> Client:
    User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.login(username="root", password="pw")
    return client


def two_devices(fake: FakeAuthgear, user: FakeUser) -> tuple[LoginFlow, LoginFlow]:
    laptop, phone = LoginFlow(Client(), fake), LoginFlow(Client(), fake)
    assert laptop.login(user).status_code == 302
    assert phone.login(user).status_code == 302
    return laptop, phone


def is_logged_in(flow: LoginFlow) -> bool:
    return bool(flow.client.get("/private/").status_code == 200)


def assert_revoked_rows_were_gone(received: Received) -> None:
    """Documented: sent right after the row is deleted; the login's pk stays readable."""
    for sent in received.of("login_revoked"):
        assert sent.sender is AuthgearLogin
        assert set(sent.kwargs) == {"login", "reason", "revoked"}
        assert sent.row_existed is False
        assert sent.kwargs["login"].pk is not None


# --- login_linked, user_logged_in, user_login_failed -------------------------------------------


def test_a_first_login_sends_user_logged_in_then_login_linked_with_created_true(
    login_flow: LoginFlow, authgear_user: FakeUser, received: Received
) -> None:
    response = login_flow.login(authgear_user)
    assert response.status_code == 302

    assert received.names() == ["user_logged_in", "login_linked"]
    (logged,) = received.of("user_logged_in")
    (linked,) = received.of("login_linked")
    account = AuthgearAccount.objects.get()
    login = AuthgearLogin.objects.get()
    assert linked.sender is AuthgearAccount
    assert set(linked.kwargs) == {"request", "user", "account", "login", "created", "claims"}
    assert linked.kwargs["request"] is response.wsgi_request
    assert linked.kwargs["user"] == account.user
    assert linked.kwargs["account"] == account and account.sub == authgear_user.sub
    assert linked.kwargs["login"] == login
    assert linked.kwargs["created"] is True
    claims = linked.kwargs["claims"]
    assert claims["sub"] == authgear_user.sub and claims["email"] == authgear_user.email
    # Django's signal: same request, same user, sent by the user's class.
    assert logged.sender is type(account.user)
    assert logged.kwargs["user"] == account.user
    assert logged.kwargs["request"] is response.wsgi_request


def test_a_returning_user_is_linked_with_created_false(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    LoginFlow(Client(), fake_authgear).login(authgear_user)
    received.clear()
    LoginFlow(Client(), fake_authgear).login(authgear_user)
    (linked,) = received.of("login_linked")
    assert linked.kwargs["created"] is False
    assert AuthgearAccount.objects.count() == 1 and AuthgearLogin.objects.count() == 2
    assert linked.kwargs["login"] == AuthgearLogin.objects.order_by("-created_at").first()


def test_a_failed_login_sends_only_user_login_failed_naming_the_failure(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear, received: Received
) -> None:
    response = login_flow.finish(fake_authgear.deny(login_flow.start()))
    assert response.status_code == 403
    assert received.names() == ["user_login_failed"]
    (failed,) = received.of("user_login_failed")
    assert failed.sender == "authgear_django.login_flow"
    assert failed.kwargs["credentials"] == {
        "authgear_error": "access_denied",
        "authgear_failure": "AuthorizationDenied",
    }
    assert failed.kwargs["request"] is response.wsgi_request


# --- tokens_refreshed, refresh_failed ---------------------------------------------------------


@pytest.mark.parametrize("rotation", [False, True], ids=["kept", "rotated"])
def test_a_refresh_sends_tokens_refreshed_with_rotated(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    received: Received,
    rotation: bool,
) -> None:
    fake_authgear.rotation = rotation
    clock.shift(1800)
    assert is_logged_in(logged_in)
    # the liveness check (due every 300 s) runs after the refresh, on the new access token
    assert received.names() == ["tokens_refreshed", "session_checked"]
    (refreshed,) = received.of("tokens_refreshed")
    assert refreshed.sender is AuthgearLogin
    assert set(refreshed.kwargs) == {"login", "rotated"}
    assert refreshed.kwargs["login"] == AuthgearLogin.objects.get()
    assert refreshed.kwargs["login"].refresh_count == 1
    assert refreshed.kwargs["rotated"] is rotation


def test_a_liveness_check_sends_session_checked_with_fresh_claims(
    logged_in: LoginFlow, clock: Any, received: Received
) -> None:
    clock.shift(301)  # the check is due, the token is not
    assert is_logged_in(logged_in)
    assert received.names() == ["session_checked"]
    (checked,) = received.of("session_checked")
    assert checked.sender is AuthgearLogin
    assert set(checked.kwargs) == {"login", "user", "claims"}
    login = AuthgearLogin.objects.get()
    assert checked.kwargs["login"] == login and checked.kwargs["user"] == login.account.user
    assert checked.kwargs["claims"]["sub"] == login.account.sub


def test_authgear_down_sends_a_non_fatal_refresh_failed_and_ends_nothing(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(1800 - 30)  # due, still valid for 30 s
    assert is_logged_in(logged_in)
    assert received.names() == ["refresh_failed"]
    (failed,) = received.of("refresh_failed")
    assert failed.sender is AuthgearLogin
    assert set(failed.kwargs) == {"login", "error", "fatal"}
    assert failed.kwargs["fatal"] is False
    assert isinstance(failed.kwargs["error"], AuthgearError)
    assert failed.kwargs["login"] == AuthgearLogin.objects.get()


def test_a_429_sends_token_endpoint_rate_limited_with_retry_after_and_level(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.fail(
        "refresh",
        status=429,
        body='{"error":"x_rate_limited"}',
        content_type="application/json",
        headers={"Retry-After": "40"},
    )
    clock.shift(1800 - 30)  # the check is due and so is the refresh: it is refused
    assert is_logged_in(logged_in)  # still valid for 30 s: not a logout
    assert received.names() == ["token_endpoint_rate_limited", "refresh_failed"]
    (limited,) = received.of("token_endpoint_rate_limited")
    assert set(limited.kwargs) == {"retry_after", "level"}
    assert limited.kwargs == {"retry_after": 40, "level": 1}  # Authgear's Retry-After obeyed
    (failed,) = received.of("refresh_failed")
    assert failed.kwargs["fatal"] is False


def test_invalid_grant_sends_login_revoked_refresh_failed_then_a_fatal_refresh_failed(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    login_pk = AuthgearLogin.objects.get().pk
    for grant in fake_authgear.grants.values():
        grant.revoked = True  # e.g. revoked in Authgear's portal
    revocations_before = fake_authgear.calls["revoke"]
    clock.shift(1800)
    assert not is_logged_in(logged_in)

    assert received.names()[:2] == ["login_revoked", "refresh_failed"]
    assert received.reasons() == [("refresh_failed", False)]
    assert fake_authgear.calls["revoke"] == revocations_before  # not asked: already dead
    (failed,) = received.of("refresh_failed")
    assert failed.kwargs["fatal"] is True
    assert failed.kwargs["error"].error == "invalid_grant"
    assert failed.kwargs["login"].pk == received.of("login_revoked")[0].kwargs["login"].pk
    assert failed.kwargs["login"].pk == login_pk
    assert_revoked_rows_were_gone(received)


def test_undecryptable_stored_tokens_end_the_login_with_reason_refresh_failed(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received, settings: Any
) -> None:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["a-key-the-rows-were-not-written-with"]
    clock.shift(1800)
    assert not is_logged_in(logged_in)
    assert received.reasons() == [("refresh_failed", False)]
    assert [s.kwargs["fatal"] for s in received.of("refresh_failed")] == [True]
    assert fake_authgear.calls["refresh"] == 0  # nothing usable to send
    assert AuthgearLogin.objects.count() == 0
    assert_revoked_rows_were_gone(received)


def test_a_refreshed_id_token_of_another_user_sends_id_token_invalid_revoked(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(sub="someone-else")
    clock.shift(1800)
    assert not is_logged_in(logged_in)
    assert received.reasons() == [("id_token_invalid", True)]
    (failed,) = received.of("refresh_failed")
    assert failed.kwargs["fatal"] is True
    assert isinstance(failed.kwargs["error"], TokenValidationError)
    assert fake_authgear.live_refresh_tokens() == []
    assert_revoked_rows_were_gone(received)


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


# --- webhook_received and the webhook reasons ---------------------------------------------------


WEBHOOK_SECRET = "Vx3_kq9ZtN2bLw8RjH5mYc0aUe7sDf4G"  # the shape Authgear generates
_SEQ = itertools.count(1000)  # Authgear numbers its events in the order they happen


def event(event_type: str, sub: str) -> dict[str, Any]:
    """A delivery shaped like Authgear's (authgear-protocol.md §8.3), happening now."""
    return {
        "id": str(uuid.uuid4()).upper(),
        "seq": next(_SEQ),
        "type": event_type,
        "payload": {
            "user": {
                "id": sub,
                "is_disabled": event_type == "user.disabled",
                "is_anonymized": event_type == "user.anonymized",
                "standard_attributes": {"email": "jane@example.com"},
            }
        },
        "context": {"timestamp": int(time.time()), "user_id": sub},
    }


def deliver(client: Client, delivery: dict[str, Any]) -> Any:
    """POST the delivery signed as Authgear signs it: HMAC-SHA256 of the raw body, hex."""
    body = json.dumps(delivery).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/auth/webhook/",
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature},
    )


@pytest.fixture
def hook(settings: Any) -> Client:
    settings.AUTHGEAR_WEBHOOK_SECRET = WEBHOOK_SECRET
    return Client(enforce_csrf_checks=True)


def test_user_disabled_reports_webhook_disabled_then_webhook_received(
    hook: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    two_devices(fake_authgear, authgear_user)
    user = AuthgearAccount.objects.get().user
    received.clear()
    delivery = event("user.disabled", authgear_user.sub)

    response = deliver(hook, delivery)

    assert response.status_code == 200
    assert received.reasons() == [("webhook_disabled", False)] * 2
    assert received.names()[-1] == "webhook_received"
    (hooked,) = received.of("webhook_received")
    assert hooked.sender is AuthgearWebhookEvent
    assert set(hooked.kwargs) == {"event_type", "event", "user", "request"}
    assert hooked.kwargs["event_type"] == "user.disabled"
    assert hooked.kwargs["event"] == delivery
    assert hooked.kwargs["user"] == user
    assert hooked.kwargs["request"] is response.wsgi_request
    assert_revoked_rows_were_gone(received)


@pytest.mark.parametrize("event_type", ["user.deleted", "user.anonymized"])
def test_user_deleted_or_anonymized_reports_webhook_deleted(
    hook: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    received: Received,
    event_type: str,
) -> None:
    two_devices(fake_authgear, authgear_user)
    user = AuthgearAccount.objects.get().user
    received.clear()
    calls_before = sum(fake_authgear.calls.values())

    assert deliver(hook, event(event_type, authgear_user.sub)).status_code == 200

    assert received.reasons() == [("webhook_deleted", False)] * 2
    assert sum(fake_authgear.calls.values()) == calls_before  # Authgear not called
    (hooked,) = received.of("webhook_received")
    assert hooked.kwargs["event_type"] == event_type
    assert hooked.kwargs["user"] == user
    assert_revoked_rows_were_gone(received)


def test_webhook_received_is_not_sent_again_for_a_redelivery(
    hook: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    LoginFlow(Client(), fake_authgear).login(authgear_user)
    received.clear()
    delivery = event("user.profile.updated", authgear_user.sub)
    assert deliver(hook, delivery).status_code == 200
    assert deliver(hook, delivery).status_code == 200
    (hooked,) = received.of("webhook_received")
    assert hooked.kwargs["event"]["id"] == delivery["id"]
    assert received.of("login_revoked") == []  # a profile update ends no login


def test_webhook_received_for_an_unknown_user_carries_user_none(
    hook: Client, received: Received
) -> None:
    delivery = event("user.disabled", "00000000-0000-0000-0000-000000000000")
    assert deliver(hook, delivery).status_code == 200
    assert received.names() == ["webhook_received"]
    assert received.of("webhook_received")[0].kwargs["user"] is None


def test_every_send_in_the_package_is_covered_here() -> None:
    """A new signal, or a new ``.send(`` of one, must get a test in this file."""
    import pathlib
    import re

    import authgear_django

    package = pathlib.Path(authgear_django.__file__).parent
    sent: set[str] = set()
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        sent |= set(re.findall(r"\b(\w+)\.send(?:_robust)?\(\s*sender=", text))
    assert sent == set(OURS) | {"user_login_failed"}
    declared = {name for name, value in vars(signals).items() if isinstance(value, Signal)}
    assert declared == set(OURS)

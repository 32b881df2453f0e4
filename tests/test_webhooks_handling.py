"""Authgear webhooks: what each event does here (disable, delete, profile update, others)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from tests import webhook_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser
from tests.webhook_helpers import (
    assert_allowed,
    assert_logged_out,
    deliver,
    event,
    session_key,
    sub_of,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.webhook_helpers")]
User = get_user_model()

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
webhook_secret = webhook_helpers.webhook_secret
hook = webhook_helpers.hook
received = webhook_helpers.received
revoked = webhook_helpers.revoked
linked = webhook_helpers.linked
two_devices = webhook_helpers.two_devices


# --- built-in handling --------------------------------------------------------------------------


def test_user_disabled_deactivates_and_logs_out_every_device_at_once_without_calling_authgear(
    hook: Client,
    two_devices: list[LoginFlow],
    fake_authgear: FakeAuthgear,
    received: list[Any],
    revoked: list[Any],
) -> None:
    user = AuthgearAccount.objects.get().user
    keys = [session_key(flow.client) for flow in two_devices]
    calls_before = sum(fake_authgear.calls.values())

    started = time.perf_counter()
    response = deliver(hook, event("user.disabled", sub_of(user)))
    elapsed = time.perf_counter() - started

    assert_allowed(response)
    # Answered from the database alone: no request to Authgear (the fake would record it, and
    # any other host would fail the test), so well inside Authgear's 5-second budget.
    assert sum(fake_authgear.calls.values()) == calls_before
    assert elapsed < 1.0
    user.refresh_from_db()
    assert user.is_active is False
    assert AuthgearAccount.objects.filter(user=user).exists()  # still linked
    assert AuthgearLogin.objects.count() == 0
    for flow, key in zip(two_devices, keys, strict=True):
        assert_logged_out(flow, key)
    assert [(r["reason"], r["revoked"]) for r in revoked] == [("webhook_disabled", False)] * 2
    assert received[0]["user"] == user


def test_a_disabled_user_cannot_log_in_again_until_reenabled(
    hook: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    assert flow.login(authgear_user).status_code == 302
    assert_allowed(deliver(hook, event("user.disabled", authgear_user.sub)))
    assert flow.login(authgear_user).status_code == 403

    assert_allowed(deliver(hook, event("user.reenabled", authgear_user.sub)))

    user = AuthgearAccount.objects.get(sub=authgear_user.sub).user
    assert user.is_active is True
    assert flow.login(authgear_user).status_code == 302
    assert flow.client.get("/private/").status_code == 200


def test_a_time_limited_disable_logs_out_but_keeps_the_user_active(
    hook: Client, two_devices: list[LoginFlow]
) -> None:
    """A temporary disable ends by the clock at Authgear, with no event to count on: a user
    deactivated here would be refused for good after it, so is_active is left alone."""
    user = AuthgearAccount.objects.get().user
    keys = [session_key(flow.client) for flow in two_devices]
    delivery = event(
        "user.disabled",
        sub_of(user),
        user={
            "temporarily_disabled_from": "2026-08-21T10:00:00Z",
            "temporarily_disabled_until": "2026-08-28T10:00:00Z",
        },
    )
    assert_allowed(deliver(hook, delivery))
    user.refresh_from_db()
    assert user.is_active is True
    assert AuthgearLogin.objects.count() == 0
    for flow, key in zip(two_devices, keys, strict=True):
        assert_logged_out(flow, key)


@pytest.mark.parametrize("event_type", ["user.deleted", "user.anonymized"])
def test_deleted_or_anonymized_user_is_logged_out_unlinked_and_deactivated_by_default(
    hook: Client,
    two_devices: list[LoginFlow],
    fake_authgear: FakeAuthgear,
    received: list[Any],
    event_type: str,
) -> None:
    user = AuthgearAccount.objects.get().user
    keys = [session_key(flow.client) for flow in two_devices]
    calls_before = sum(fake_authgear.calls.values())

    assert_allowed(deliver(hook, event(event_type, sub_of(user))))

    user.refresh_from_db()
    assert user.is_active is False
    assert AuthgearAccount.objects.count() == 0
    assert AuthgearLogin.objects.count() == 0
    for flow, key in zip(two_devices, keys, strict=True):
        assert_logged_out(flow, key)
    assert sum(fake_authgear.calls.values()) == calls_before
    assert received[0]["user"] == user


@pytest.mark.parametrize("event_type", ["user.deleted", "user.anonymized"])
def test_deleted_or_anonymized_user_is_deleted_when_configured(
    hook: Client,
    two_devices: list[LoginFlow],
    received: list[Any],
    revoked: list[Any],
    settings: Any,
    event_type: str,
) -> None:
    settings.AUTHGEAR_WEBHOOK_DELETED_USERS = "delete"
    user = AuthgearAccount.objects.get().user
    keys = [session_key(flow.client) for flow in two_devices]

    assert_allowed(deliver(hook, event(event_type, sub_of(user))))

    assert not User.objects.filter(pk=user.pk).exists()
    assert AuthgearAccount.objects.count() == 0
    assert AuthgearLogin.objects.count() == 0
    for flow, key in zip(two_devices, keys, strict=True):
        assert_logged_out(flow, key)
    assert [r["reason"] for r in revoked] == ["webhook_deleted"] * 2
    assert received[0]["user"].pk == user.pk  # the deleted user, id kept for receivers
    assert received[0]["user"].get_username() == user.get_username()


def test_profile_update_copies_email_and_names(hook: Client, linked: Any) -> None:
    attributes = {
        "email": "jane.smith@example.com",
        "email_verified": True,
        "given_name": "Janet",
        "family_name": "Smith",
        "updated_at": 1787306400,
    }
    delivery = event(
        "user.profile.updated", sub_of(linked), user={"standard_attributes": attributes}
    )
    assert_allowed(deliver(hook, delivery))
    linked.refresh_from_db()
    assert (linked.email, linked.first_name, linked.last_name) == (
        "jane.smith@example.com",
        "Janet",
        "Smith",
    )
    assert AuthgearAccount.objects.get(user=linked).email == "jane.smith@example.com"


def test_profile_update_touches_only_the_attributes_present(hook: Client, linked: Any) -> None:
    delivery = event(
        "user.profile.updated",
        sub_of(linked),
        user={"standard_attributes": {"given_name": "Janet", "family_name": None}},
    )
    assert_allowed(deliver(hook, delivery))
    linked.refresh_from_db()
    assert (linked.email, linked.first_name, linked.last_name) == (
        "jane@example.com",
        "Janet",
        "Doe",
    )
    assert AuthgearAccount.objects.get(user=linked).email == "jane@example.com"


def test_profile_update_respects_field_lengths(hook: Client, linked: Any) -> None:
    long_name = "A" * 400
    long_email = "j" * 300 + "@example.com"
    delivery = event(
        "user.profile.updated",
        sub_of(linked),
        user={"standard_attributes": {"given_name": long_name, "email": long_email}},
    )
    assert_allowed(deliver(hook, delivery))
    linked.refresh_from_db()
    assert linked.first_name == "A" * User._meta.get_field("first_name").max_length
    assert linked.email == long_email[: User._meta.get_field("email").max_length]
    assert AuthgearAccount.objects.get(user=linked).email == long_email[:254]


def test_profile_update_uses_the_models_email_field(
    hook: Client, linked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(User, "EMAIL_FIELD", "username", raising=False)
    delivery = event(
        "user.profile.updated",
        sub_of(linked),
        user={"standard_attributes": {"email": "new@example.com"}},
    )
    assert_allowed(deliver(hook, delivery))
    linked.refresh_from_db()
    assert linked.username == "new@example.com"
    assert linked.email == "jane@example.com"


def test_unknown_sub_changes_nothing_and_is_answered(
    hook: Client, linked: Any, received: list[Any]
) -> None:
    stranger = str(uuid.uuid4())
    for event_type in ("user.disabled", "user.deleted", "user.profile.updated"):
        assert_allowed(deliver(hook, event(event_type, stranger)))
    linked.refresh_from_db()
    assert linked.is_active is True
    assert AuthgearAccount.objects.filter(user=linked).exists()
    assert list(AuthgearWebhookEvent.objects.values_list("sub", flat=True)) == [stranger] * 3
    assert [r["user"] for r in received] == [None, None, None]


def test_an_event_without_a_user_is_recorded_and_signalled(
    hook: Client, received: list[Any]
) -> None:
    delivery = event("usage.alert.triggered", usage={"name": "sms", "current": 90, "limit": 100})
    assert_allowed(deliver(hook, delivery))
    assert AuthgearWebhookEvent.objects.get().sub == ""
    assert received[0]["event_type"] == "usage.alert.triggered" and received[0]["user"] is None


def test_other_user_events_are_recorded_and_signalled_only(
    hook: Client, linked: Any, received: list[Any]
) -> None:
    assert_allowed(deliver(hook, event("user.authenticated", sub_of(linked))))
    linked.refresh_from_db()
    assert linked.is_active is True
    assert received[0]["user"] == linked


def test_a_blocking_event_is_allowed(hook: Client, received: list[Any]) -> None:
    delivery = event("user.pre_create", str(uuid.uuid4()))
    assert_allowed(deliver(hook, delivery))
    assert AuthgearWebhookEvent.objects.get().event_type == "user.pre_create"
    assert received[0]["event_type"] == "user.pre_create"

"""``webhook_received`` and the ``login_revoked`` reasons a signed Authgear webhook causes.
See ``test_signals.py``.
"""

from __future__ import annotations

import pytest
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearWebhookEvent
from tests import signal_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser
from tests.signal_helpers import (
    Received,
    assert_revoked_rows_were_gone,
    deliver,
    event,
    two_devices,
)

pytestmark = pytest.mark.django_db

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
received = signal_helpers.received
hook = signal_helpers.hook


# --- webhook_received and the webhook reasons ---------------------------------------------------


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

"""Authgear webhooks: redeliveries, late and stale events, and what an admin decided here."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from tests import webhook_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeUser
from tests.webhook_helpers import assert_allowed, deliver, event, sub_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.webhook_helpers")]

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
webhook_secret = webhook_helpers.webhook_secret
hook = webhook_helpers.hook
received = webhook_helpers.received
revoked = webhook_helpers.revoked
linked = webhook_helpers.linked
two_devices = webhook_helpers.two_devices

DAY = 86400


# --- idempotency --------------------------------------------------------------------------------


def test_a_redelivered_event_is_handled_once(
    hook: Client, linked: Any, received: list[Any]
) -> None:
    body = json.dumps(event("user.disabled", sub_of(linked))).encode()
    assert_allowed(deliver(hook, body))
    assert_allowed(deliver(hook, body))
    assert len(received) == 1
    assert AuthgearWebhookEvent.objects.count() == 1


def test_a_redelivered_disable_does_not_undo_a_later_reenable(hook: Client, linked: Any) -> None:
    disabled = json.dumps(event("user.disabled", sub_of(linked))).encode()
    assert_allowed(deliver(hook, disabled))
    assert_allowed(deliver(hook, event("user.reenabled", sub_of(linked))))
    assert_allowed(deliver(hook, disabled))  # late redelivery of the first event
    linked.refresh_from_db()
    assert linked.is_active is True
    assert AuthgearWebhookEvent.objects.count() == 2


# --- order, age and local decisions -------------------------------------------------------------


def not_applied_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "authgear_django" and "not applied" in r.getMessage()
    ]


def test_a_late_older_reenable_does_not_undo_a_newer_disable(
    hook: Client, linked: Any, received: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    sub = sub_of(linked)
    assert_allowed(deliver(hook, event("user.disabled", sub, seq=1001)))
    with caplog.at_level(logging.INFO, logger="authgear_django"):
        late = event("user.reenabled", sub, seq=1000)  # happened before the disable
        assert_allowed(deliver(hook, late))

    linked.refresh_from_db()
    assert linked.is_active is False
    assert [r["event_type"] for r in received] == ["user.disabled"]  # not signalled either
    assert AuthgearWebhookEvent.objects.filter(event_id=late["id"]).exists()  # but recorded
    assert not_applied_logs(caplog) == [
        f"authgear_django: webhook user.reenabled {late['id']} (seq 1000) not applied: "
        "out of order (seq 1000 is not after 1001, applied already)"
    ]
    assert AuthgearAccount.objects.get(user=linked).webhook_status_seq == 1001


def test_a_late_older_disable_does_not_log_out_a_reenabled_user(
    hook: Client, two_devices: list[LoginFlow], authgear_user: FakeUser, revoked: list[Any]
) -> None:
    user = AuthgearAccount.objects.get().user
    assert_allowed(deliver(hook, event("user.disabled", sub_of(user), seq=2000)))
    assert_allowed(deliver(hook, event("user.reenabled", sub_of(user), seq=2001)))
    for flow in two_devices:  # logged out by the disable; they log in again
        assert flow.login(authgear_user).status_code == 302
    revoked.clear()

    assert_allowed(deliver(hook, event("user.disabled", sub_of(user), seq=1999)))

    user.refresh_from_db()
    assert user.is_active is True
    assert AuthgearLogin.objects.count() == 2
    for flow in two_devices:
        assert flow.client.get("/private/").status_code == 200
    assert revoked == []


def test_an_older_profile_update_does_not_overwrite_a_newer_one(hook: Client, linked: Any) -> None:
    def profile(given_name: str, seq: int) -> dict[str, Any]:
        attributes = {"given_name": given_name}
        return event(
            "user.profile.updated",
            sub_of(linked),
            user={"standard_attributes": attributes},
            seq=seq,
        )

    assert_allowed(deliver(hook, profile("Janet", 3001)))
    assert_allowed(deliver(hook, profile("Jan", 3000)))  # the previous name, delivered late
    linked.refresh_from_db()
    assert linked.first_name == "Janet"


def test_status_and_profile_are_ordered_separately(hook: Client, linked: Any) -> None:
    """A late profile update is still news after a newer disable: it changed something else."""
    sub = sub_of(linked)
    assert_allowed(deliver(hook, event("user.disabled", sub, seq=4001)))
    attributes = {"given_name": "Janet"}
    late_profile = event(
        "user.profile.updated", sub, user={"standard_attributes": attributes}, seq=4000
    )
    assert_allowed(deliver(hook, late_profile))
    linked.refresh_from_db()
    assert (linked.is_active, linked.first_name) == (False, "Janet")


def test_events_in_order_are_all_applied(hook: Client, linked: Any) -> None:
    sub = sub_of(linked)
    for event_type, active in [
        ("user.disabled", False),
        ("user.reenabled", True),
        ("user.disabled", False),
        ("user.reenabled", True),
    ]:
        assert_allowed(deliver(hook, event(event_type, sub)))
        linked.refresh_from_db()
        assert linked.is_active is active


def test_an_event_older_than_the_max_age_is_recorded_but_not_applied(
    hook: Client, linked: Any, received: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A replay: Authgear stops retrying after 3 days, and after 30 its id may be pruned."""
    stale = event("user.disabled", sub_of(linked), timestamp=time.time() - 8 * DAY)
    with caplog.at_level(logging.INFO, logger="authgear_django"):
        assert_allowed(deliver(hook, stale))
    linked.refresh_from_db()
    assert linked.is_active is True
    assert received == []
    assert AuthgearWebhookEvent.objects.get().event_id == stale["id"]
    assert len(not_applied_logs(caplog)) == 1
    assert "too old (context.timestamp 8.0 days ago)" in not_applied_logs(caplog)[0]

    recent = event("user.disabled", sub_of(linked), timestamp=time.time() - 6 * DAY)
    assert_allowed(deliver(hook, recent))  # a late but possible delivery is applied
    linked.refresh_from_db()
    assert linked.is_active is False


def test_an_admin_deactivation_survives_user_reenabled(
    hook: Client, linked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    linked.is_active = False
    linked.save()  # what the admin's change form does
    with caplog.at_level(logging.INFO, logger="authgear_django"):
        assert_allowed(deliver(hook, event("user.reenabled", sub_of(linked))))
    linked.refresh_from_db()
    assert linked.is_active is False
    assert any("deactivated here, not by Authgear" in r.getMessage() for r in caplog.records)


def test_an_admin_deactivation_survives_an_authgear_disable_and_reenable(
    hook: Client, linked: Any
) -> None:
    linked.is_active = False
    linked.save()
    assert_allowed(deliver(hook, event("user.disabled", sub_of(linked))))
    assert_allowed(deliver(hook, event("user.reenabled", sub_of(linked))))
    linked.refresh_from_db()
    assert linked.is_active is False


def test_an_admin_deactivation_after_an_admin_reactivation_survives_user_reenabled(
    hook: Client, linked: Any
) -> None:
    """Authgear disables; an admin reactivates here, then deactivates again: that last,
    local, decision is not Authgear's to undo."""
    assert_allowed(deliver(hook, event("user.disabled", sub_of(linked))))
    linked.refresh_from_db()
    linked.is_active = True
    linked.save()
    linked.is_active = False
    linked.save()
    assert_allowed(deliver(hook, event("user.reenabled", sub_of(linked))))
    linked.refresh_from_db()
    assert linked.is_active is False

"""Authgear webhooks: failing receivers and handling, and simultaneous redeliveries."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.signals import post_delete, pre_save
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from authgear_django.signals import webhook_received
from tests import webhook_helpers
from tests.conftest import LoginFlow
from tests.webhook_helpers import assert_allowed, deliver, event, sub_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.webhook_helpers")]
User = get_user_model()

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
webhook_secret = webhook_helpers.webhook_secret
hook = webhook_helpers.hook
received = webhook_helpers.received
linked = webhook_helpers.linked
two_devices = webhook_helpers.two_devices


# --- failures -------------------------------------------------------------------------------------


def test_a_failing_receiver_is_logged_and_changes_nothing(
    hook: Client, linked: Any, received: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    webhook_received.connect(broken, weak=False, dispatch_uid="test_webhooks_broken")
    try:
        with caplog.at_level(logging.ERROR, logger="authgear_django"):
            response = deliver(hook, event("user.disabled", sub_of(linked)))
    finally:
        webhook_received.disconnect(dispatch_uid="test_webhooks_broken")

    assert_allowed(response)
    linked.refresh_from_db()
    assert linked.is_active is False
    assert AuthgearWebhookEvent.objects.count() == 1
    assert len(received) == 1  # the other receiver still ran
    failures = [r for r in caplog.records if r.name == "authgear_django" and r.exc_info]
    assert len(failures) == 1
    assert "receiver bug" in str(failures[0].exc_info[1])


def test_a_failure_in_the_handling_rolls_everything_back_and_a_redelivery_retries(
    hook: Client, two_devices: list[LoginFlow], received: list[Any]
) -> None:
    user = AuthgearAccount.objects.get().user
    body = json.dumps(event("user.disabled", sub_of(user))).encode()

    def boom(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("database trouble")

    # fails after is_active was saved and while the first login is being ended
    post_delete.connect(boom, sender=AuthgearLogin, weak=False, dispatch_uid="test_webhooks")
    try:
        response = deliver(hook, body)
    finally:
        post_delete.disconnect(sender=AuthgearLogin, dispatch_uid="test_webhooks")

    assert response.status_code == 503
    assert response.json() == {"error": "handling_failed"}
    user.refresh_from_db()
    assert user.is_active is True
    assert AuthgearLogin.objects.count() == 2
    for flow in two_devices:
        assert flow.client.get("/private/").status_code == 200
    assert AuthgearWebhookEvent.objects.count() == 0
    assert received == []

    assert_allowed(deliver(hook, body))  # the same event again, now that it can be handled
    user.refresh_from_db()
    assert user.is_active is False
    assert AuthgearLogin.objects.count() == 0
    assert len(received) == 1


def test_blocking_events_are_allowed_even_when_nothing_can_be_recorded(
    hook: Client, received: list[Any]
) -> None:
    def boom(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("database down")

    pre_save.connect(boom, sender=AuthgearWebhookEvent, weak=False, dispatch_uid="test_webhooks")
    try:
        blocking = deliver(hook, event("user.pre_create", str(uuid.uuid4())))
        other = deliver(hook, event("user.created", str(uuid.uuid4())))
    finally:
        pre_save.disconnect(sender=AuthgearWebhookEvent, dispatch_uid="test_webhooks")

    assert_allowed(blocking)
    assert other.status_code == 503
    assert AuthgearWebhookEvent.objects.count() == 0
    assert received == []


# --- concurrency (PostgreSQL) -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_redeliveries_are_handled_once(received: list[Any]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises writers")
    user = User.objects.create_user(username="race")
    AuthgearAccount.objects.create(user=user, sub="sub-race")
    body = json.dumps(event("user.disabled", "sub-race")).encode()
    parallel = 4
    barrier = threading.Barrier(parallel, timeout=10)

    def together(sender: Any, **kwargs: Any) -> None:
        barrier.wait()  # every delivery inserts its record at the same moment

    def post(_: int) -> int:
        try:
            return int(deliver(Client(), body).status_code)
        finally:
            connection.close()

    pre_save.connect(together, sender=AuthgearWebhookEvent, weak=False, dispatch_uid="race")
    try:
        with ThreadPoolExecutor(parallel) as pool:
            statuses = list(pool.map(post, range(parallel)))
    finally:
        pre_save.disconnect(sender=AuthgearWebhookEvent, dispatch_uid="race")

    assert statuses == [200] * parallel
    assert len(received) == 1
    assert AuthgearWebhookEvent.objects.count() == 1
    user.refresh_from_db()
    assert user.is_active is False

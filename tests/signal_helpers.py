"""What the ``test_signals*`` modules share: a receiver on every signal, a signed-in
browser, and Authgear's webhook deliveries, really signed.
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
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal
from django.test import Client

from authgear_django import signals
from authgear_django.models import AuthgearLogin
from authgear_django.webhooks import SIGNATURE_HEADER
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

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

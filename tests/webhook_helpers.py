"""What the webhook tests share: the URLconf, a signed delivery shaped like Authgear's, fixtures."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import include, path

from authgear_django.models import AuthgearAccount
from authgear_django.signals import login_revoked, webhook_received
from authgear_django.webhooks import SIGNATURE_HEADER, AuthgearWebhookView
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

# This module is also the URLconf of its tests: the webhook where the README mounts it, plus
# the test project's URLs (login, callback, /private/).
urlpatterns = [
    path("auth/webhook/", AuthgearWebhookView.as_view()),
    path("", include("tests.urls")),
]

URL = "/auth/webhook/"
SECRET = "Vx3_kq9ZtN2bLw8RjH5mYc0aUe7sDf4G"  # the shape Authgear generates: 32 of [0-9A-Za-z_]
SIGN = object()  # deliver(): sign the body with SECRET
_SEQ = itertools.count(435)  # Authgear numbers its events in the order they happen
User = get_user_model()


@pytest.fixture(autouse=True)
def webhook_secret(settings: Any) -> None:
    settings.AUTHGEAR_WEBHOOK_SECRET = SECRET


@pytest.fixture
def hook() -> Client:
    """Authgear's side: no cookies, no CSRF token, and CSRF checks enforced."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    webhook_received.connect(receiver, weak=False, dispatch_uid="test_webhooks")
    yield calls
    webhook_received.disconnect(dispatch_uid="test_webhooks")


@pytest.fixture
def revoked() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    login_revoked.connect(lambda **kw: calls.append(kw), weak=False, dispatch_uid="test_webhooks")
    yield calls
    login_revoked.disconnect(dispatch_uid="test_webhooks")


@pytest.fixture
def linked() -> Any:
    """A Django user linked to an Authgear user, without any login."""
    user = User.objects.create_user(
        username="jane", email="jane@example.com", first_name="Jane", last_name="Doe"
    )
    AuthgearAccount.objects.create(user=user, sub=str(uuid.uuid4()), email="jane@example.com")
    return user


@pytest.fixture
def two_devices(fake_authgear: FakeAuthgear, authgear_user: FakeUser) -> list[LoginFlow]:
    """The same Authgear user logged in on two devices (two browsers, two sessions)."""
    flows = [LoginFlow(Client(), fake_authgear) for _ in range(2)]
    for flow in flows:
        assert flow.login(authgear_user).status_code == 302
        assert flow.client.get("/private/").status_code == 200
    return flows


def sub_of(user: Any) -> str:
    return str(AuthgearAccount.objects.get(user=user).sub)


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event(
    event_type: str,
    sub: str | None = None,
    *,
    user: dict[str, Any] | None = None,
    seq: int | None = None,
    timestamp: float | None = None,
    **payload: Any,
) -> dict[str, Any]:
    """An envelope shaped like Authgear's (authgear-protocol.md §8.3), numbered like Authgear's:
    each call takes the next ``seq`` unless one is given, and happens now unless told when."""
    if sub is not None:
        payload["user"] = {
            "id": sub,
            "created_at": "2026-08-21T10:00:00.123456Z",
            "updated_at": "2026-08-21T10:00:00.123456Z",
            "is_anonymous": False,
            "is_verified": True,
            "is_disabled": event_type == "user.disabled",
            "is_deactivated": False,
            "is_anonymized": event_type == "user.anonymized",
            "can_reauthenticate": True,
            "standard_attributes": {"email": "jane@example.com", "email_verified": True},
            "custom_attributes": {},
            "x_web3": {},
            "roles": [],
            "groups": [],
            **(user or {}),
        }
    return {
        "id": str(uuid.uuid4()).upper(),
        "seq": next(_SEQ) if seq is None else seq,
        "type": event_type,
        "payload": payload,
        "context": {
            "timestamp": int(time.time()) if timestamp is None else timestamp,
            "user_id": sub,
            "triggered_by": "admin_api",
            "preferred_languages": [],
            "language": "en",
            "ip_address": "203.0.113.7",
            "geo_location_code": None,
            "user_agent": "",
            "app_id": "myapp",
            "client_id": "a1b2c3d4e5f60718",
        },
    }


def deliver(
    client: Client, body: dict[str, Any] | bytes, signature: Any = SIGN, **extra: Any
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {}
    if signature is SIGN:
        headers[SIGNATURE_HEADER] = sign(raw)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.post(URL, data=raw, content_type="application/json", headers=headers, **extra)


def assert_allowed(response: Any) -> None:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"is_allowed": True}


def session_key(client: Client) -> str:
    return str(client.cookies[django_settings.SESSION_COOKIE_NAME].value)


def assert_logged_out(flow: LoginFlow, key: str) -> None:
    assert not Session.objects.filter(session_key=key).exists()
    response = flow.client.get("/private/")
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login/?next=/private/")

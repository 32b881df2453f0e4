"""Authgear webhooks, delivered through Django's test client and middleware, really signed."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models.signals import post_delete, pre_save
from django.test import AsyncRequestFactory, Client
from django.urls import include, path

from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from authgear_django.signals import login_revoked, webhook_received
from authgear_django.webhooks import SIGNATURE_HEADER, AuthgearWebhookView, verify_signature
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

# This module is also the URLconf of its tests: the webhook where the README mounts it, plus
# the test project's URLs (login, callback, /private/).
urlpatterns = [
    path("auth/webhook/", AuthgearWebhookView.as_view()),
    path("", include("tests.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_webhooks")]

URL = "/auth/webhook/"
SECRET = "Vx3_kq9ZtN2bLw8RjH5mYc0aUe7sDf4G"  # the shape Authgear generates: 32 of [0-9A-Za-z_]
TEST_VECTOR = "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355"
SIGN = object()  # deliver(): sign the body with SECRET
DAY = 86400
_SEQ = itertools.count(435)  # Authgear numbers its events in the order they happen
User = get_user_model()


@pytest.fixture(autouse=True)
def _webhook_secret(settings: Any) -> None:
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


# --- signature ----------------------------------------------------------------------------------


def test_signature_matches_authgears_test_vector() -> None:
    assert verify_signature("secret", b"body", TEST_VECTOR)
    assert verify_signature("secret", b"body", TEST_VECTOR.upper())
    assert sign(b"body", "secret") == TEST_VECTOR


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "not-hex",
        TEST_VECTOR[:-1],  # too short
        TEST_VECTOR + "0",  # too long
        TEST_VECTOR[:-1] + "0",  # one digit off
        "é" * 64,  # not ASCII: must not raise in compare_digest
        "sha256=" + TEST_VECTOR,
    ],
)
def test_missing_malformed_or_wrong_signatures_do_not_verify(signature: str | None) -> None:
    assert verify_signature("secret", b"body", signature) is False
    assert verify_signature("other", b"body", TEST_VECTOR) is False
    assert verify_signature("secret", b"body ", TEST_VECTOR) is False


def test_signed_delivery_is_accepted_and_recorded(hook: Client, received: list[Any]) -> None:
    delivery = event("user.created", str(uuid.uuid4()))
    assert_allowed(deliver(hook, delivery))
    record = AuthgearWebhookEvent.objects.get()
    assert (record.event_id, record.event_type, record.sub) == (
        delivery["id"],
        "user.created",
        delivery["payload"]["user"]["id"],
    )
    assert len(received) == 1
    assert received[0]["sender"] is AuthgearWebhookEvent
    assert received[0]["event_type"] == "user.created"
    assert received[0]["event"] == delivery
    assert received[0]["user"] is None
    assert received[0]["request"].path == URL


def test_uppercase_hex_signature_is_accepted(hook: Client, linked: Any) -> None:
    body = json.dumps(event("user.disabled", sub_of(linked))).encode()
    assert_allowed(deliver(hook, body, signature=sign(body).upper()))
    linked.refresh_from_db()
    assert linked.is_active is False


@pytest.mark.parametrize(
    "signature",
    [None, "", "0" * 64, "zz" * 32, "wrong-secret", "other-body"],
    ids=["missing", "empty", "zeros", "not-hex", "wrong-secret", "signature-of-another-body"],
)
def test_missing_or_wrong_signature_is_refused_and_nothing_changes(
    hook: Client, two_devices: list[LoginFlow], received: list[Any], signature: str | None
) -> None:
    user = AuthgearAccount.objects.get().user
    body = json.dumps(event("user.deleted", sub_of(user))).encode()
    if signature == "wrong-secret":
        signature = sign(body, "another-secret")
    elif signature == "other-body":
        signature = sign(body + b" ")

    response = deliver(hook, body, signature=signature)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_signature"}
    user.refresh_from_db()
    assert user.is_active is True
    assert AuthgearAccount.objects.filter(user=user).exists()
    assert AuthgearLogin.objects.count() == 2
    for flow in two_devices:
        assert flow.client.get("/private/").status_code == 200
    assert AuthgearWebhookEvent.objects.count() == 0
    assert received == []


# --- what is refused before the signature is even looked at -------------------------------------


def test_body_over_the_limit_gets_413(hook: Client, linked: Any, settings: Any) -> None:
    delivery = event("user.disabled", sub_of(linked))
    body = json.dumps(delivery).encode()
    settings.AUTHGEAR_WEBHOOK_MAX_BODY_SIZE = len(body) - 1

    response = deliver(hook, body)

    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large"}
    linked.refresh_from_db()
    assert linked.is_active is True
    assert AuthgearWebhookEvent.objects.count() == 0

    settings.AUTHGEAR_WEBHOOK_MAX_BODY_SIZE = len(body)  # exactly the limit is fine
    assert_allowed(deliver(hook, body))
    linked.refresh_from_db()
    assert linked.is_active is False


def test_default_limit_is_one_mebibyte(hook: Client) -> None:
    delivery = event("user.created", str(uuid.uuid4()))
    delivery["padding"] = "x" * (1024 * 1024)
    assert deliver(hook, delivery).status_code == 413
    assert AuthgearWebhookEvent.objects.count() == 0


def test_a_content_length_over_the_limit_gets_413_before_the_body_is_read(
    hook: Client, linked: Any
) -> None:
    body = json.dumps(event("user.disabled", sub_of(linked))).encode()
    response = deliver(hook, body, CONTENT_LENGTH=str(50 * 1024 * 1024))
    assert response.status_code == 413
    linked.refresh_from_db()
    assert linked.is_active is True
    assert AuthgearWebhookEvent.objects.count() == 0


def test_a_content_length_under_the_truth_cuts_the_body_and_the_signature_fails(
    hook: Client, linked: Any
) -> None:
    body = json.dumps(event("user.disabled", sub_of(linked))).encode()
    response = deliver(hook, body, CONTENT_LENGTH="10")
    assert response.status_code == 401
    linked.refresh_from_db()
    assert linked.is_active is True


@pytest.mark.parametrize("value", ["abc", "-1"])
def test_an_invalid_content_length_gets_400(hook: Client, value: str) -> None:
    response = deliver(hook, event("user.created", "x"), CONTENT_LENGTH=value)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_content_length"}
    assert AuthgearWebhookEvent.objects.count() == 0


def test_a_body_without_content_length_is_cut_off_past_the_limit(
    linked: Any, settings: Any
) -> None:
    """A chunked upload under ASGI has no Content-Length: the bytes read are counted."""
    settings.AUTHGEAR_WEBHOOK_MAX_BODY_SIZE = 1000
    delivery = event("user.disabled", sub_of(linked))
    delivery["padding"] = "x" * 2000
    body = json.dumps(delivery).encode()
    request = AsyncRequestFactory().post(
        URL, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(body)}
    )
    del request.META["CONTENT_LENGTH"]

    response = AuthgearWebhookView.as_view()(request)

    assert response.status_code == 413
    linked.refresh_from_db()
    assert linked.is_active is True
    assert AuthgearWebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"id": "\xff\xfe", "type": "user.created"}', "invalid_json"),
        (b"[1, 2]", "invalid_event"),
        (b'"user.created"', "invalid_event"),
        (b"null", "invalid_event"),
        (b'{"type": "user.created", "payload": {}}', "invalid_event"),
        (b'{"id": "E1", "payload": {}}', "invalid_event"),
        (b'{"id": 42, "type": "user.created"}', "invalid_event"),
        (b'{"id": "", "type": "user.created"}', "invalid_event"),
        (b'{"id": "E1", "type": ["user.created"]}', "invalid_event"),
        (json.dumps({"id": "E" * 101, "type": "user.created"}).encode(), "invalid_event"),
        (b'{"id": "E1", "type": "user.created", "payload": []}', "invalid_event"),
        (b'{"id": "E1", "type": "user.created", "payload": {"user": "u1"}}', "invalid_event"),
        (b'{"id": "E1", "type": "user.created", "payload": {"user": {"id": 7}}}', "invalid_event"),
        (
            b'{"id": "E1", "type": "user.profile.updated", '
            b'"payload": {"user": {"id": "u1", "standard_attributes": []}}}',
            "invalid_event",
        ),
        (b'{"id": "E1", "type": "user.created", "context": "ctx"}', "invalid_event"),
        (b'{"id": "E1", "type": "user.disabled", "seq": "435"}', "invalid_event"),
        (b'{"id": "E1", "type": "user.disabled", "seq": -1}', "invalid_event"),
        (b'{"id": "E1", "type": "user.disabled", "seq": 4.5}', "invalid_event"),
        (b'{"id": "E1", "type": "user.disabled", "seq": true}', "invalid_event"),
        (b'{"id": "E1", "type": "user.disabled", "seq": 9223372036854775808}', "invalid_event"),
        (
            b'{"id": "E1", "type": "user.disabled", "context": {"timestamp": "now"}}',
            "invalid_event",
        ),
        (b'{"id": "E1", "type": "user.disabled", "context": {"timestamp": NaN}}', "invalid_event"),
        (
            b'{"id": "E1", "type": "user.disabled", "context": {"timestamp": -Infinity}}',
            "invalid_event",
        ),
        (
            b'{"id": "E1", "type": "user.disabled", "context": {"timestamp": 1%s}}' % (b"0" * 400),
            "invalid_event",
        ),
    ],
)
def test_signed_but_malformed_bodies_get_400(
    hook: Client, received: list[Any], body: bytes, error: str
) -> None:
    response = deliver(hook, body)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert AuthgearWebhookEvent.objects.count() == 0
    assert received == []


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch", "options"])
def test_other_methods_get_405(hook: Client, method: str) -> None:
    response = getattr(hook, method)(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert AuthgearWebhookEvent.objects.count() == 0


@pytest.mark.parametrize("secret", [None, ""])
def test_endpoint_is_404_without_a_secret(
    hook: Client, settings: Any, linked: Any, secret: str | None
) -> None:
    settings.AUTHGEAR_WEBHOOK_SECRET = secret
    assert deliver(hook, event("user.disabled", sub_of(linked))).status_code == 404
    assert hook.get(URL).status_code == 404
    linked.refresh_from_db()
    assert linked.is_active is True
    assert AuthgearWebhookEvent.objects.count() == 0


def test_no_csrf_token_is_needed(linked: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    assert "csrftoken" not in client.cookies
    assert_allowed(deliver(client, event("user.disabled", sub_of(linked))))
    linked.refresh_from_db()
    assert linked.is_active is False


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

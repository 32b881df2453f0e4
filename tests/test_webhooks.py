"""Authgear webhooks, delivered through Django's test client and middleware, really signed.

The signature, and what the endpoint refuses before handling anything. Ordering, handling
and failures are in the ``test_webhooks_*`` modules beside this one.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import AsyncRequestFactory, Client

from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from authgear_django.webhooks import SIGNATURE_HEADER, AuthgearWebhookView, verify_signature
from tests import webhook_helpers
from tests.conftest import LoginFlow
from tests.webhook_helpers import (
    URL,
    assert_allowed,
    deliver,
    event,
    sign,
    sub_of,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.webhook_helpers")]

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
webhook_secret = webhook_helpers.webhook_secret
hook = webhook_helpers.hook
received = webhook_helpers.received
linked = webhook_helpers.linked
two_devices = webhook_helpers.two_devices

TEST_VECTOR = "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355"


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

"""Authgear webhooks: verify, deduplicate, apply to Django users, then tell the project.

Register ``https://<site>/auth/webhook/`` in the portal (Advanced → Hooks) and set
``AUTHGEAR_WEBHOOK_SECRET``. Every delivery is checked in this order, before anything else
happens: the endpoint is on (404), the method is POST (405), the body is small enough (413,
from ``Content-Length`` before reading and from the bytes read), the signature matches the raw
body (401), the body is an event envelope (400). An accepted event is recorded by its id, so a
redelivery does nothing again, then handled (see :meth:`AuthgearWebhookView.apply_event`), then
:data:`authgear_django.signals.webhook_received` is sent.

**Order and age.** Authgear does not promise delivery order, and a body carries no signed
time, so two checks come before the handling (:meth:`AuthgearWebhookView.skip_reason`). An
event whose ``context.timestamp`` is more than ``AUTHGEAR_WEBHOOK_MAX_EVENT_AGE`` old is not applied
(Authgear's spec retries for at most 3 days; anything older is a replay, and its id may already
be pruned). A status or profile event whose ``seq`` is not above the last one applied to that
user's status or profile is older news and is not applied either: a late ``user.reenabled``
cannot undo a newer ``user.disabled``. Both are recorded, logged and answered 200 (a non-2xx
would only make Authgear log a failure), and ``webhook_received`` is not sent for them, so
that receivers do not apply stale news either. Records older than
``AUTHGEAR_WEBHOOK_EVENT_RETENTION`` are deleted by ``manage.py authgear_cleanup``. The answer is
``200 {"is_allowed": true}`` for every accepted event, blocking events included: this app
never blocks an Authgear operation, and a failing signal receiver is logged, never turned
into an error answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, router, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.response import HttpResponseBase
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View

from authgear_django.conf import conf
from authgear_django.models import AuthgearAccount, AuthgearWebhookEvent
from authgear_django.signals import webhook_received
from authgear_django.store import end_logins, logins_of_user

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

SIGNATURE_HEADER = "x-authgear-body-signature"

# Authgear waits for these (5 s per hook) and refuses the user's operation unless it gets a
# 2xx with {"is_allowed": true}: whatever goes wrong here, they are answered "allowed".
BLOCKING_EVENTS = frozenset(
    {
        "user.pre_create",
        "user.profile.pre_update",
        "user.pre_schedule_deletion",
        "user.pre_schedule_anonymization",
        "authentication.pre_initialize",
        "authentication.post_identified",
        "authentication.pre_authenticated",
        "oidc.jwt.pre_create",
        "oidc.id_token.pre_create",
    }
)

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_READ_CHUNK = 64 * 1024
_MAX_ID_LENGTH: int = getattr(AuthgearWebhookEvent._meta.get_field("event_id"), "max_length", 100)
_MAX_TYPE_LENGTH: int = getattr(
    AuthgearWebhookEvent._meta.get_field("event_type"), "max_length", 100
)
_MAX_SUB_LENGTH: int = getattr(AuthgearAccount._meta.get_field("sub"), "max_length", 255)
_MAX_SEQ = 2**63 - 1  # a BigIntegerField
_MAX_TIMESTAMP = 2**53  # exact as a float; a larger int could not even be compared to time.time()

# An event older than conf.AUTHGEAR_WEBHOOK_MAX_EVENT_AGE (by context.timestamp, 7 days by
# default) is not applied: Authgear's documented retries stop after 3 days (authgear-protocol.md
# §8.1), so older deliveries can only be replays. authgear_cleanup deletes event records older
# than conf.AUTHGEAR_WEBHOOK_EVENT_RETENTION (30 days), which conf keeps above the max age: an
# event id still young enough to be applied must still be on record.

# Events applied in ``seq`` order, each to the account's counter of the attribute it changes.
ORDERED_EVENTS = {
    "user.disabled": "webhook_status_seq",
    "user.reenabled": "webhook_status_seq",
    "user.deleted": "webhook_status_seq",
    "user.anonymized": "webhook_status_seq",
    "user.profile.updated": "webhook_profile_seq",
}

# standard attribute → user model field, for ``user.profile.updated`` (email is handled apart,
# through the model's ``get_email_field_name()``).
PROFILE_FIELDS = {"given_name": "first_name", "family_name": "last_name"}


def verify_signature(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is the hex HMAC-SHA256 of ``body`` under ``secret``.

    Authgear sends lowercase hex in ``x-authgear-body-signature``; uppercase is accepted too.
    A missing, malformed or wrong signature is ``False``; the comparison is constant-time.
    """
    if not isinstance(signature, str) or not _HEX_SHA256.fullmatch(signature.strip()):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


class InvalidEvent(ValueError):
    """The (correctly signed) body is not an Authgear event envelope."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class WebhookEvent:
    """The fields of a delivery this app uses; ``data`` is the whole parsed envelope."""

    id: str
    type: str
    sub: str | None  # payload.user.id: the Authgear user the event is about, if any
    data: dict[str, Any]
    seq: int | None = None  # Authgear's increasing event number; None when absent
    timestamp: float | None = None  # context.timestamp (Unix seconds); None when absent

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.data.get("payload") or {}
        return payload

    @property
    def user_data(self) -> dict[str, Any]:
        user: dict[str, Any] = self.payload.get("user") or {}
        return user


def parse_event(body: bytes) -> WebhookEvent:
    """Parse and shape-check an envelope ``{id, seq, type, payload, context}``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise InvalidEvent("invalid_json", "The body is not JSON.") from None
    if not isinstance(data, dict):
        raise InvalidEvent("invalid_event", "The body is not a JSON object.")
    event_id, event_type = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > _MAX_ID_LENGTH:
        raise InvalidEvent("invalid_event", f"id must be a string of 1-{_MAX_ID_LENGTH} chars.")
    if not isinstance(event_type, str) or not event_type or len(event_type) > _MAX_TYPE_LENGTH:
        raise InvalidEvent("invalid_event", f"type must be a string of 1-{_MAX_TYPE_LENGTH} chars.")
    payload = data.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise InvalidEvent("invalid_event", "payload must be an object.")
    context = data.get("context")
    if context is not None and not isinstance(context, dict):
        raise InvalidEvent("invalid_event", "context must be an object.")
    user = (payload or {}).get("user")
    if user is not None and not isinstance(user, dict):
        raise InvalidEvent("invalid_event", "payload.user must be an object.")
    sub = (user or {}).get("id")
    if sub is not None and (not isinstance(sub, str) or len(sub) > _MAX_SUB_LENGTH):
        raise InvalidEvent("invalid_event", "payload.user.id must be a string.")
    attributes = (user or {}).get("standard_attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise InvalidEvent("invalid_event", "payload.user.standard_attributes must be an object.")
    seq = data.get("seq")
    if seq is not None and (not _is_number(seq, integer=True) or not 0 <= seq <= _MAX_SEQ):
        raise InvalidEvent("invalid_event", "seq must be a non-negative integer.")
    timestamp = (context or {}).get("timestamp")
    if timestamp is not None and (
        not _is_number(timestamp, integer=False) or not abs(timestamp) <= _MAX_TIMESTAMP
    ):
        raise InvalidEvent("invalid_event", "context.timestamp must be a number (Unix seconds).")
    return WebhookEvent(
        id=event_id, type=event_type, sub=sub or None, data=data, seq=seq, timestamp=timestamp
    )


def _is_number(value: Any, *, integer: bool) -> bool:
    """A JSON number (not a boolean; finite: ``json.loads`` accepts ``NaN`` and ``Infinity``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return not integer and isinstance(value, float) and math.isfinite(value)


def end_logins_here(user_id: Any, *, reason: str) -> int:
    """End every login of a user on this site only: delete the token rows and their sessions.

    Nothing is sent to Authgear: the callers run because Authgear itself disabled or deleted
    the user, which already makes every refresh token of the user fail there (``invalid_grant``).
    """
    return end_logins(logins_of_user(user_id), reason=reason, revoke=False, end_sessions=True).ended


def _json_error(status: int, error: str, detail: str | None = None) -> JsonResponse:
    body = {"error": error} if detail is None else {"error": error, "detail": detail}
    return JsonResponse(body, status=status)


def _allowed() -> JsonResponse:
    return JsonResponse({"is_allowed": True})


def _has_field(model_obj: Any, name: str) -> bool:
    try:
        model_obj._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class AuthgearWebhookView(View):
    """Receive Authgear's webhook deliveries (mounted at ``auth/webhook/``).

    **One transaction.** Recording the event id and the built-in handling commit together.
    The record is inserted first: a concurrent redelivery of the same id waits on the unique
    index and then finds it handled. If the handling fails (a database error, a ``pre_save``
    receiver raising, ``user.delete()`` refused by a protected foreign key), everything rolls
    back, the event is *not* marked as handled, the error is logged, and the answer is
    ``503 {"error": "handling_failed"}`` — an honest "not delivered" for Authgear's delivery
    log, and a redelivery of the same event is then handled afresh. Blocking events, which
    have no built-in handling, are answered ``200 {"is_allowed": true}`` even then, since any
    other answer would make Authgear refuse the user's sign-up or login. The view opts out of
    ``ATOMIC_REQUESTS`` so that its commit is real before the signal is sent.

    **The signal after the commit.** ``webhook_received`` is sent once the handling is
    committed, with ``send_robust``: receivers see the final state, and a failing receiver is
    logged and changes neither the answer nor the record (with PostgreSQL, a receiver's
    database error inside our transaction would otherwise poison it). The price: a process
    that dies between the commit and the receivers loses the event for them (at most once).

    **No call to Authgear.** Disabling or deleting ends the user's logins *here* only — token
    rows deleted, Django sessions ended — with ``end_logins(..., revoke=False)``. Authgear
    already refuses every refresh token of a disabled or deleted user (``invalid_grant``), so
    revoking adds nothing, while one revocation call per login, each bounded by
    ``AUTHGEAR_HTTP_TIMEOUT`` (5 s by default), would hold the transaction open across the
    network and could take longer than Authgear waits. The answer takes a few queries.
    ``login_revoked`` is sent for each ended login with ``revoked=False``.
    """

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if conf.AUTHGEAR_WEBHOOK_SECRET is None:
            raise Http404("Authgear webhooks are not enabled (AUTHGEAR_WEBHOOK_SECRET).")
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest) -> HttpResponse:
        secret = conf.AUTHGEAR_WEBHOOK_SECRET
        if secret is None:  # dispatch answered 404 already; this is for the type checker
            raise Http404
        limit = conf.AUTHGEAR_WEBHOOK_MAX_BODY_SIZE
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                return _json_error(400, "invalid_content_length")
            if length > limit:
                return _json_error(413, "body_too_large")
        try:
            body = self._read_body(request, limit)
        except UnreadablePostError:
            return _json_error(400, "unreadable_body")
        if body is None:
            return _json_error(413, "body_too_large")
        if not verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER)):
            security_logger.warning(
                "authgear_django: webhook with a %s signature refused",
                "missing" if SIGNATURE_HEADER not in request.headers else "wrong",
            )
            return _json_error(401, "invalid_signature")
        try:
            event = parse_event(body)
        except InvalidEvent as exc:
            logger.warning("authgear_django: signed webhook body refused: %s", exc.detail)
            return _json_error(400, exc.error, exc.detail)
        return self.handle_event(request, event)

    @staticmethod
    def _read_body(request: HttpRequest, limit: int) -> bytes | None:
        """The body, or ``None`` once more than ``limit`` bytes came (nothing more is read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = request.read(min(_READ_CHUNK, limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return None

    def handle_event(self, request: HttpRequest, event: WebhookEvent) -> HttpResponse:
        """Record, apply and signal one verified event (see the class docstring)."""
        try:
            with transaction.atomic(using=router.db_for_write(AuthgearWebhookEvent)):
                if not self.record_event(event):
                    logger.info(
                        "authgear_django: webhook %s %s: already handled", event.type, event.id
                    )
                    return _allowed()
                skipped = self.skip_reason(event)
                if skipped is not None:
                    logger.warning(
                        "authgear_django: webhook %s %s (seq %s) not applied: %s",
                        event.type,
                        event.id,
                        event.seq,
                        skipped,
                    )
                    return _allowed()  # the record commits: a redelivery is "already handled"
                user = self.apply_event(event)
        except Exception:
            logger.exception("authgear_django: webhook %s %s failed", event.type, event.id)
            if event.type in BLOCKING_EVENTS:
                return _allowed()
            return _json_error(503, "handling_failed")
        logger.info("authgear_django: webhook %s %s handled", event.type, event.id)
        results = webhook_received.send_robust(
            sender=AuthgearWebhookEvent,
            event_type=event.type,
            event=event.data,
            user=user,
            request=request,
        )
        for receiver, result in results:
            if isinstance(result, Exception):
                logger.error(
                    "authgear_django: webhook_received receiver %s failed on %s %s",
                    getattr(receiver, "__qualname__", repr(receiver)),
                    event.type,
                    event.id,
                    exc_info=result,
                )
        return _allowed()

    def record_event(self, event: WebhookEvent) -> bool:
        """Insert the event's record; ``False`` when its id was handled already."""
        try:
            with transaction.atomic(using=router.db_for_write(AuthgearWebhookEvent)):
                AuthgearWebhookEvent.objects.create(
                    event_id=event.id, event_type=event.type, sub=event.sub or ""
                )
        except IntegrityError:
            return False
        return True

    def skip_reason(self, event: WebhookEvent) -> str | None:
        """Why the event must not be applied (too old, or older than news applied already).

        ``None`` means apply it; for a status or profile event of a linked user, its ``seq`` is
        then stored as the last applied. The account row stays locked until the commit, so two
        events of one user are ordered even when they arrive together (PostgreSQL, MySQL).
        An event without ``seq`` or ``context.timestamp`` (not sent by Authgear) cannot be
        judged by it and is applied.
        """
        if event.timestamp is not None:
            age = time.time() - event.timestamp
            if age > conf.AUTHGEAR_WEBHOOK_MAX_EVENT_AGE:
                return f"too old (context.timestamp {age / 86400:.1f} days ago)"
        field = ORDERED_EVENTS.get(event.type)
        if field is None or event.seq is None or not event.sub:
            return None
        account = AuthgearAccount.objects.select_for_update().filter(sub=event.sub).first()
        if account is None:
            return None
        last_applied: int | None = getattr(account, field)
        if last_applied is not None and event.seq <= last_applied:
            return f"out of order (seq {event.seq} is not after {last_applied}, applied already)"
        setattr(account, field, event.seq)
        account.save(update_fields=[field])
        return None

    # --- built-in handling (override in a subclass to change it) ----------------------------

    def apply_event(self, event: WebhookEvent) -> AbstractBaseUser | None:
        """Apply the event to the linked Django user; returns that user (``None``: not linked)."""
        if not event.sub:
            return None
        account = AuthgearAccount.objects.select_related("user").filter(sub=event.sub).first()
        if account is None:
            return None
        user: AbstractBaseUser = account.user
        if event.type == "user.disabled":
            self.user_disabled(user, event)
        elif event.type == "user.reenabled":
            self.user_reenabled(user, event)
        elif event.type in ("user.deleted", "user.anonymized"):
            self.user_deleted(user, account, event)
        elif event.type == "user.profile.updated":
            self.profile_updated(user, account, event)
        return user

    def user_disabled(self, user: AbstractBaseUser, event: WebhookEvent) -> None:
        """End every login here, and deactivate the user unless the disable is time-limited.

        A time-limited disable (``temporarily_disabled_until`` in the payload or its user) ends
        at Authgear by the clock, with no ``user.reenabled`` to count on, so ``is_active`` is left
        alone then: Authgear itself refuses the user's logins meanwhile, and they can log in here
        again as soon as Authgear lets them (a deactivated user would be refused here for good).
        The account is marked ``deactivated_by_webhook`` only when this call made the user
        inactive: a user an admin had deactivated here already stays the admin's decision.
        """
        if not _time_limited(event) and _set_active(user, False):
            _mark_deactivated_by_webhook(user, True)
        end_logins_here(user.pk, reason="webhook_disabled")

    def user_reenabled(self, user: AbstractBaseUser, event: WebhookEvent) -> None:
        """Reactivate the user, but only if a ``user.disabled`` webhook deactivated them.

        A deactivation decided here (Django admin, shell) is not Authgear's to undo: the user
        stays inactive, and the skip is logged.
        """
        account: AuthgearAccount | None = getattr(user, "authgear_account", None)
        if account is not None and account.deactivated_by_webhook:
            _set_active(user, True)
            _mark_deactivated_by_webhook(user, False)
        elif getattr(user, "is_active", True) is False:
            logger.info(
                "authgear_django: webhook user.reenabled %s: user %s was deactivated here, "
                "not by Authgear; left inactive",
                event.id,
                user.pk,
            )

    def user_deleted(
        self, user: AbstractBaseUser, account: AuthgearAccount, event: WebhookEvent
    ) -> None:
        """End every login here, then unlink and deactivate, or delete the Django user."""
        mode = conf.AUTHGEAR_WEBHOOK_DELETED_USERS
        end_logins_here(user.pk, reason="webhook_deleted")
        if mode == "delete":
            user_pk = user.pk
            user.delete()
            user.pk = user_pk  # keep the id readable for receivers
        else:
            _set_active(user, False)
            account.delete()

    def profile_updated(
        self, user: AbstractBaseUser, account: AuthgearAccount, event: WebhookEvent
    ) -> None:
        """Copy email, given and family name from the standard attributes (present ones only)."""
        attributes: dict[str, Any] = event.user_data.get("standard_attributes") or {}
        changed: list[str] = []
        email = attributes.get("email")
        if isinstance(email, str) and email:
            email_field = user.get_email_field_name()
            if _has_field(user, email_field) and _assign(user, email_field, email):
                changed.append(email_field)
            if account.email != email[:254]:
                account.email = email[:254]
                account.save(update_fields=["email", "updated_at"])
        for attribute, field_name in PROFILE_FIELDS.items():
            value = attributes.get(attribute)
            if (
                isinstance(value, str)
                and _has_field(user, field_name)
                and _assign(user, field_name, value)
            ):
                changed.append(field_name)
        if changed:
            user.save(update_fields=changed)


def _assign(user: AbstractBaseUser, field_name: str, value: str) -> bool:
    """Set ``value`` (cut to the field's max length); whether it changed."""
    max_length = getattr(user._meta.get_field(field_name), "max_length", None)
    if max_length:
        value = value[:max_length]
    if getattr(user, field_name) == value:
        return False
    setattr(user, field_name, value)
    return True


def _set_active(user: AbstractBaseUser, active: bool) -> bool:
    """Set ``is_active`` if the model has it; whether it changed."""
    field: str = "is_active"  # not a field of every custom user model
    if _has_field(user, field) and getattr(user, field) != active:
        setattr(user, field, active)
        user.save(update_fields=[field])
        return True
    return False


def _mark_deactivated_by_webhook(user: AbstractBaseUser, value: bool) -> None:
    AuthgearAccount.objects.filter(user_id=user.pk).update(deactivated_by_webhook=value)


def _time_limited(event: WebhookEvent) -> bool:
    for source in (event.payload, event.user_data):
        if source.get("temporarily_disabled_until"):
            return True
    return False

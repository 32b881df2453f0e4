"""``manage.py authgear_cleanup``: delete token records of logins that can no longer be used.

Logins normally end through logout or a failed refresh, but some just die: the browser is
closed and its session expires, the encryption key that protected a token is removed, a login
without a refresh token outlives its access token. Their rows would pile up forever, holding
(encrypted) tokens for nothing. Run this from cron: it is idempotent, works in batches with the
rows locked (rows being refreshed right now are skipped, not waited for), and by default does
not call Authgear at all.

The records of handled webhook events are deleted too, once received more than
``AUTHGEAR_WEBHOOK_EVENT_RETENTION`` (30 days by default) ago: long after Authgear's last
redelivery (3 days) and after the age past which the webhook view applies no event anyway
(``AUTHGEAR_WEBHOOK_MAX_EVENT_AGE``, 7 days), so forgetting an event id never lets a replay of
it be applied again.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.contrib.sessions.backends import db as db_sessions
from django.contrib.sessions.backends import signed_cookies
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AuthgearError
from authgear_django.management import (
    MAX_CONSECUTIVE_REVOKE_FAILURES,
    last_active_at,
    non_negative_int,
    positive_int,
)
from authgear_django.models import AuthgearLogin, AuthgearWebhookEvent
from authgear_django.provider import get_client

logger = logging.getLogger("authgear_django")

EXPIRED = "expired"
UNDECRYPTABLE = "undecryptable"
NO_SESSION = "no_session"
IDLE = "idle"
FIELDS = (
    "id",
    "session_key",
    "encrypted_refresh_token",
    "encrypted_access_token",
    "access_token_expires_at",
    "created_at",
    "last_refreshed_at",
)


class Command(BaseCommand):
    help = (
        "Delete dead Authgear logins: no refresh token and access token expired (plus a grace), "
        "tokens no configured key can decrypt, Django session gone, and with --older-than-days "
        "logins idle that long; and records of webhook events older than "
        "AUTHGEAR_WEBHOOK_EVENT_RETENTION (30 days by default). Safe to run from cron; "
        "does not call Authgear unless --revoke."
    )
    # Run from cron: no system-check warnings in every cron mail, no skipped cleanup because of
    # an unrelated check error. `manage.py check` is the place for those.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-hours",
            type=non_negative_int,
            default=24,
            metavar="H",
            help=(
                "Keep a login without a refresh token until its access token expired this many "
                "hours ago (default 24)."
            ),
        )
        parser.add_argument(
            "--older-than-days",
            type=positive_int,
            metavar="N",
            help="Also delete logins not refreshed (or created) in the last N days. Default: off.",
        )
        parser.add_argument(
            "--revoke",
            action="store_true",
            help="Also revoke the deleted logins' refresh tokens at Authgear (best effort).",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=500,
            metavar="N",
            help="Rows examined and deleted per transaction (default 500).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        self.dry_run: bool = options["dry_run"]
        self.revoke: bool = options["revoke"]
        self.expired_before = now - timedelta(hours=options["grace_hours"])
        days: int | None = options["older_than_days"]
        self.idle_before = now - timedelta(days=days) if days is not None else None
        self.sessions = _Sessions(now)
        if not self.sessions.checkable:
            self.stderr.write(
                self.style.WARNING(
                    f"warning: SESSION_ENGINE {conf.SESSION_ENGINE} keeps sessions in cookies; "
                    "skipping the check for logins whose session is gone"
                )
            )
        self.revoke_counts: Counter[str] = Counter()
        self.consecutive_failures = 0

        counts: Counter[str] = Counter()
        checked = 0
        after = None
        batch_size: int = options["batch_size"]
        while True:
            rows, dead, tokens = self._batch(after, batch_size)
            if not rows:
                break
            after = rows[-1].pk
            checked += len(rows)
            counts.update(dead.values())
            self._revoke_tokens(tokens)  # after the commit: never hold row locks over the network

        self._report(checked, counts, days=days, grace_hours=options["grace_hours"])
        retention = timedelta(seconds=conf.AUTHGEAR_WEBHOOK_EVENT_RETENTION)
        self._prune_webhook_events(now - retention, retention, batch_size)

    def _prune_webhook_events(
        self, received_before: datetime, retention: timedelta, batch_size: int
    ) -> None:
        """Delete (or count) webhook event records received before ``received_before``.

        In batches of primary keys, so that a backlog of months does not become one huge
        DELETE holding its locks while webhooks keep arriving.
        """
        old = AuthgearWebhookEvent.objects.filter(received_at__lt=received_before)
        if self.dry_run:
            deleted = old.count()
        else:
            deleted = 0
            while True:
                with transaction.atomic():
                    batch = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
                    if not batch:
                        break
                    deleted += AuthgearWebhookEvent.objects.filter(pk__in=batch).delete()[0]
        verb = "would delete" if self.dry_run else "deleted"
        self.stdout.write(
            f"webhook event records received over {retention.days} days ago, {verb}: {deleted}"
        )
        if deleted and not self.dry_run:
            logger.info("authgear_cleanup deleted %d old webhook event record(s)", deleted)

    def _batch(
        self, after: Any, batch_size: int
    ) -> tuple[list[AuthgearLogin], dict[Any, str], list[str]]:
        """Examine and delete one batch in one transaction; return the refresh tokens to revoke."""
        with transaction.atomic():
            rows_query = AuthgearLogin.objects.select_for_update(
                # a row locked by a refresh in progress is alive: skip it rather than wait
                skip_locked=connection.features.has_select_for_update_skip_locked
            ).only(*FIELDS)
            if after is not None:
                rows_query = rows_query.filter(pk__gt=after)
            rows = list(rows_query.order_by("pk")[:batch_size])
            dead = self._classify(rows)
            tokens: list[str] = []
            if self.revoke:
                for row in rows:
                    if dead.get(row.pk) in (NO_SESSION, IDLE) and row.encrypted_refresh_token:
                        tokens.append(row.refresh_token or "")  # decryptable: checked above
            if dead and not self.dry_run:
                AuthgearLogin.objects.filter(pk__in=list(dead)).delete()
        return rows, dead, [token for token in tokens if token]

    def _classify(self, rows: list[AuthgearLogin]) -> dict[Any, str]:
        """The reason each dead row is dead (the first that applies); live rows are absent."""
        dead: dict[Any, str] = {}
        for row in rows:
            if (
                not row.encrypted_refresh_token
                and row.access_token_expires_at is not None
                and row.access_token_expires_at < self.expired_before
            ):
                dead[row.pk] = EXPIRED
            elif _undecryptable(row):
                dead[row.pk] = UNDECRYPTABLE
        undecided = [row for row in rows if row.pk not in dead and row.session_key]
        gone = self.sessions.missing({row.session_key for row in undecided})
        for row in undecided:
            if row.session_key in gone:
                dead[row.pk] = NO_SESSION
        if self.idle_before is not None:
            for row in rows:
                if row.pk not in dead and (
                    last_active_at(row.last_refreshed_at, row.created_at) < self.idle_before
                ):
                    dead[row.pk] = IDLE
        return dead

    def _revoke_tokens(self, tokens: list[str]) -> None:
        if not tokens:
            return
        if self.dry_run:
            self.revoke_counts["would"] += len(tokens)
            return
        client = get_client()
        for token in tokens:
            if self.consecutive_failures >= MAX_CONSECUTIVE_REVOKE_FAILURES:
                self.revoke_counts["failed"] += 1  # Authgear looks down: stop waiting
                continue
            try:
                client.revoke(token)
            except AuthgearError as exc:
                logger.warning("authgear_cleanup: revoking a refresh token failed: %s", exc)
                self.revoke_counts["failed"] += 1
                self.consecutive_failures += 1
            else:
                self.revoke_counts["revoked"] += 1
                self.consecutive_failures = 0

    def _report(
        self, checked: int, counts: Counter[str], *, days: int | None, grace_hours: int
    ) -> None:
        total = sum(counts.values())
        verb = "would delete" if self.dry_run else "deleted"
        self.stdout.write(f"checked {checked} login(s); {verb} {total}:")
        lines = [
            (EXPIRED, f"no refresh token, access token expired over {grace_hours} h ago"),
            (UNDECRYPTABLE, "tokens no configured key can decrypt"),
            (NO_SESSION, "Django session gone or expired"),
        ]
        if days is not None:
            lines.append((IDLE, f"not refreshed or created in the last {days} day(s)"))
        for reason, label in lines:
            self.stdout.write(f"  {reason} ({label}): {counts[reason]}")
        if self.revoke:
            if self.dry_run:
                self.stdout.write(f"would revoke at Authgear: {self.revoke_counts['would']}")
            else:
                self.stdout.write(
                    f"revoked at Authgear: {self.revoke_counts['revoked']}; "
                    f"failed: {self.revoke_counts['failed']}"
                )
        if self.revoke_counts["failed"]:
            self.stderr.write(
                self.style.WARNING(
                    f"warning: {self.revoke_counts['failed']} refresh token(s) could not be "
                    "revoked at Authgear; their logins were deleted here anyway"
                )
            )
        if total and not self.dry_run:
            logger.info("authgear_cleanup deleted %d dead login(s): %s", total, dict(counts))


class _Sessions:
    """Which session keys no longer name a usable session, asked of the configured engine."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.store_class: Any = import_module(conf.SESSION_ENGINE).SessionStore
        # Cookie sessions live in browsers: "not on the server" would say every login is dead.
        self.checkable = not issubclass(self.store_class, signed_cookies.SessionStore)

    def missing(self, keys: set[str]) -> set[str]:
        if not keys or not self.checkable:
            return set()
        if issubclass(self.store_class, db_sessions.SessionStore):
            # db and cached_db (the database is authoritative): one query per batch, and an
            # expired session, which Django refuses to load, counts as gone.
            model = self.store_class.get_model_class()
            alive = model.objects.filter(session_key__in=keys, expire_date__gt=self.now)
            return keys - set(alive.values_list("session_key", flat=True))
        return {key for key in keys if not self.store_class(key).exists(key)}


def _undecryptable(row: AuthgearLogin) -> bool:
    """The refresh token (or, without one, the access token) no configured key can decrypt."""
    try:
        if row.encrypted_refresh_token:
            _ = row.refresh_token
        elif row.encrypted_access_token:
            _ = row.access_token
    except TokenDecryptionError:
        return True
    return False

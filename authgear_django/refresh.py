"""Refreshing a login's access token: single flight across threads and worker processes.

The row of the login is locked (``SELECT ... FOR UPDATE``) for the duration of the refresh, and
the expiry is checked again once the lock is held: requests that queued behind a refresh find a
fresh token and use it, so one login makes exactly one refresh call per expiry even when
Authgear rotates refresh tokens (the old one dies at once). This needs a database with row
locks (PostgreSQL, MySQL, Oracle); SQLite runs one writer at a time and ignores the lock.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AuthgearError, OAuthError, TokenValidationError
from authgear_django.models import AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.roles import sync_roles
from authgear_django.signals import login_revoked, refresh_failed, tokens_refreshed
from authgear_django.store import (
    SESSION_REFRESH_RETRY_KEY,
    bind_session,
    refresh_leeway,
    session_expires_at,
    session_login_id,
    session_refresh_at,
)
from authgear_django.verification import verify_id_token

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")


def refresh_due_in_session(session: SessionBase, now: float) -> bool:
    """The hot-path question, answered from the session alone (no query, no network)."""
    refresh_at = session_refresh_at(session)
    return refresh_at is not None and now >= refresh_at


class Outcome(enum.Enum):
    FRESH = "fresh"  # nothing to do, or another request refreshed meanwhile
    REFRESHED = "refreshed"  # this request refreshed
    DEFERRED = "deferred"  # Authgear unavailable; the current token is still usable
    UNAVAILABLE = "unavailable"  # Authgear unavailable and the token has expired (plus grace)
    ENDED = "ended"  # the login is dead (revoked, invalid_grant, ...): log the user out


@dataclass(frozen=True)
class RefreshResult:
    outcome: Outcome
    error: AuthgearError | None = None
    login: AuthgearLogin | None = None
    rotated: bool = False  # Authgear issued a new refresh token
    claims: dict[str, Any] | None = None  # of the verified, refreshed ID token

    @property
    def usable(self) -> bool:
        return self.outcome in (Outcome.FRESH, Outcome.REFRESHED, Outcome.DEFERRED)


_PROCESS_LOCKS = tuple(threading.Lock() for _ in range(64))


def _process_lock(login_id: str) -> threading.Lock:
    """One of a fixed set of locks, chosen by login: bounded memory, rare false sharing."""
    return _PROCESS_LOCKS[zlib.crc32(login_id.encode()) % len(_PROCESS_LOCKS)]


def refresh_session_login(
    session: SessionBase, *, force: bool = False, rejected_access_token: str | None = None
) -> RefreshResult:
    """Make the session's login hold a usable access token, refreshing it if it is due.

    ``force`` refreshes even before the leeway (an API answered 401); with
    ``rejected_access_token`` a forced refresh is skipped when another request already
    replaced that token.
    """
    login_id = session_login_id(session)
    if not login_id:
        return RefreshResult(Outcome.ENDED)
    now = time.time()
    retry_at = session.get(SESSION_REFRESH_RETRY_KEY)
    if not force and isinstance(retry_at, (int, float)) and now < retry_at:
        return _unavailable_result(session, now, error=None)

    try:
        # The process lock makes threads of one worker queue without touching the database
        # (and is the only lock SQLite has); the row lock does the same across workers.
        with _process_lock(login_id), transaction.atomic():
            try:
                login = (
                    AuthgearLogin.objects.select_for_update()
                    .select_related("account__user")
                    .get(pk=login_id)
                )
            except (AuthgearLogin.DoesNotExist, ValueError, ValidationError):
                return RefreshResult(Outcome.ENDED)  # revoked meanwhile, or a tampered session
            if session.session_key and login.session_key != session.session_key:
                # Django cycled the session key (e.g. update_session_auth_hash): follow it, so
                # that ending this login (revoke, cleanup) ends the right session.
                AuthgearLogin.objects.filter(pk=login.pk).update(session_key=session.session_key)
                login.session_key = session.session_key
            if not _needs_refresh(login, now, force=force, rejected=rejected_access_token):
                bind_session(session, login)
                return RefreshResult(Outcome.FRESH, login=login)
            result = _refresh_locked(login)
    except OperationalError as exc:  # e.g. SQLite's "database is locked": try again later
        logger.error("authgear_django: refresh of login %s hit a database error: %s", login_id, exc)
        return _unavailable_result(session, now, error=None)

    if result.outcome is Outcome.REFRESHED:
        bind_session(session, login)
        if result.claims:
            sync_roles(login.account.user, login.account, result.claims)
        tokens_refreshed.send(sender=AuthgearLogin, login=login, rotated=result.rotated)
        return result
    if result.outcome is Outcome.ENDED:
        refresh_failed.send(sender=AuthgearLogin, login=login, error=result.error, fatal=True)
        login_revoked.send(
            sender=AuthgearLogin, login=login, reason="refresh_failed", revoked=False
        )
        return result
    # Authgear unavailable: keep everything, retry on a later request.
    # Wait before retrying, but never past the token's expiry: with short-lived tokens a single
    # failed refresh must not leave the user on an expired token for a whole interval.
    retry_at = now + conf.AUTHGEAR_REFRESH_RETRY_INTERVAL
    expires_at = session_expires_at(session)
    if expires_at is not None and expires_at > now:
        retry_at = min(retry_at, expires_at)
    session[SESSION_REFRESH_RETRY_KEY] = retry_at
    refresh_failed.send(sender=AuthgearLogin, login=login, error=result.error, fatal=False)
    return _unavailable_result(session, now, error=result.error, login=login)


def _needs_refresh(login: AuthgearLogin, now: float, *, force: bool, rejected: str | None) -> bool:
    if not login.encrypted_refresh_token:
        return False
    if force:
        if rejected is None:
            return True
        try:
            return login.access_token == rejected
        except TokenDecryptionError:
            return True
    expires_at = login.access_token_expires_at
    if expires_at is None:
        return False
    return now >= expires_at.timestamp() - refresh_leeway(login.access_token_lifetime)


def _refresh_locked(login: AuthgearLogin) -> RefreshResult:
    """Call Authgear with the row locked; never raises for provider or token trouble."""
    try:
        refresh_token = login.refresh_token
    except TokenDecryptionError as exc:
        logger.warning("authgear_django: login %s: %s; ending it", login.pk, exc)
        AuthgearLogin.objects.filter(pk=login.pk).delete()
        return RefreshResult(Outcome.ENDED, error=AuthgearError(str(exc)))
    assert refresh_token  # _needs_refresh checked
    client = get_client()
    try:
        tokens = client.refresh(refresh_token)
        claims = None
        if tokens.id_token:
            claims = verify_id_token(
                tokens.id_token,
                signing_key=client.signing_key,
                issuer=client.metadata().issuer,
                client_id=client.client_id,
                leeway=conf.AUTHGEAR_CLOCK_LEEWAY,
                expected_sub=login.account.sub,
            )
    except OAuthError as exc:
        if exc.is_invalid_grant or exc.error in ("invalid_client", "unauthorized_client"):
            logger.info("authgear_django: login %s ended by Authgear (%s)", login.pk, exc.error)
            AuthgearLogin.objects.filter(pk=login.pk).delete()
            return RefreshResult(Outcome.ENDED, error=exc)
        logger.warning("authgear_django: refreshing login %s failed: %s", login.pk, exc)
        return RefreshResult(Outcome.UNAVAILABLE, error=exc)
    except TokenValidationError as exc:
        security_logger.warning("authgear_django: refreshed ID token rejected: %s", exc)
        AuthgearLogin.objects.filter(pk=login.pk).delete()
        return RefreshResult(Outcome.ENDED, error=exc)
    except AuthgearError as exc:
        logger.warning("authgear_django: refreshing login %s failed: %s", login.pk, exc)
        return RefreshResult(Outcome.UNAVAILABLE, error=exc)

    now = timezone.now()
    login.store_tokens(tokens, id_token_claims=claims, now=now)
    login.last_refreshed_at = now
    login.refresh_count += 1
    login.save()
    return RefreshResult(
        Outcome.REFRESHED, login=login, rotated=bool(tokens.refresh_token), claims=claims
    )


def _unavailable_result(
    session: SessionBase,
    now: float,
    *,
    error: AuthgearError | None,
    login: AuthgearLogin | None = None,
) -> RefreshResult:
    expires_at = session_expires_at(session)
    if expires_at is not None and now < expires_at + conf.AUTHGEAR_REFRESH_GRACE:
        return RefreshResult(Outcome.DEFERRED, error=error, login=login)
    return RefreshResult(Outcome.UNAVAILABLE, error=error, login=login)

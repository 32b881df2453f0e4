"""Refreshing a login's access token: single flight across threads and worker processes.

The row of the login is locked (``SELECT ... FOR UPDATE``) for the duration of the refresh, and
the expiry is checked again once the lock is held: requests that queued behind a refresh find a
fresh token and use it, so one login makes exactly one refresh call per expiry even when
Authgear rotates refresh tokens (the old one dies at once). This needs a database with row
locks (PostgreSQL, MySQL, Oracle); SQLite runs one writer at a time and ignores the lock.

Tokens Authgear has issued are never dropped: with rotation on, the old refresh token is dead
the moment Authgear answers. So the answer is stored at once, even when its ID token cannot be
verified right now (its key cannot be fetched: JWKS or discovery unreachable, 5xx, timeout, a
``kid`` not published yet). Such an ID token is marked unverified on its row
(``id_token_unverified_since``, read under the row lock) and verified on a later request,
after the JWKS refetch cooldown; meanwhile its claims are not used. Only a definite answer ends
the login, and then the newest refresh token is revoked: a bad signature with a known key, or
another ``sub``, ``iss`` or ``aud`` (these three are checked on the unverified claims too, so
they end the login even while the keys are unreachable).

The same path confirms that the login's Authgear session is still alive, at most once per
``AUTHGEAR_SESSION_CHECK_INTERVAL`` (Authgear has no back-channel logout: ending a session
there revokes the grant, and only a call tells us). One userinfo call with the login's access
token (refreshed first if due), under the same locks, so N simultaneous requests of a login
make one call: 401 ends the login (reason ``session_ended``; no revocation, Authgear already
ended the grant), an outage keeps the user signed in and retries after
``AUTHGEAR_REFRESH_RETRY_INTERVAL``, and an answer updates the profile and roles.

Lazy refreshes (the default, ``AUTHGEAR_EAGER_REFRESH = False``) keep two questions apart:
"is this login alive?" (proved by the liveness check and by any refresh) and "does it hold a
fresh access token?" (asked only by code about to use the token: ``need_token``). A page that
needs no token is served on the session; a due check refreshes an expired token before its
userinfo call, so a lazy login makes about one token call per check interval instead of one
per token lifetime. While Authgear cannot answer, a login may go unproven for
``AUTHGEAR_MAX_STALENESS`` past its due check; then it gets "unavailable, retry after".
"""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, cast

import jwt
from django.contrib.auth import BACKEND_SESSION_KEY, load_backend
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from authgear_django.backends import AuthgearBackend
from authgear_django.client import JWKS_REFETCH_COOLDOWN, AuthgearClient
from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import (
    AuthgearError,
    OAuthError,
    ProviderError,
    ProviderRateLimited,
    TokenValidationError,
)
from authgear_django.login_flow import verify_id_token
from authgear_django.models import AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.roles import sync_roles
from authgear_django.session_entry import SESSION_LOGIN_KEY, SessionEntry, refresh_due
from authgear_django.signals import refresh_failed, session_checked, tokens_refreshed
from authgear_django.store import (
    armed_stale_at,
    bind_session,
    end_logins,
    login_refresh_at,
    read_entry,
    refresh_is_lazy,
    session_check_due_on_row,
    session_expires_at,
    unverified_id_token_deadline,
    write_entry,
)
from authgear_django.token_endpoint import (
    BASE_DELAY,
    ESCALATION_WINDOW,
    Backoff,
    count,
    current_backoff,
    last_backoff,
    record_rate_limited,
    record_refresh_succeeded,
)
from authgear_django.verification import KeyLookup

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")


#: A refresh held back after a 429 is made anyway once the login has less than this many
#: seconds of use left (validity plus grace): room for a short backoff before it runs out.
BACKOFF_SAFETY_MARGIN = 2 * BASE_DELAY


def refresh_due_in_session(session: SessionBase, now: float) -> bool:
    """The hot-path question, answered from the session alone (no query, no network)."""
    return refresh_due(session.get(SESSION_LOGIN_KEY), now)


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
    id_token_pending: bool = False  # the stored ID token could not be verified yet
    revoked: bool = False  # ENDED: Authgear confirmed the revocation of the refresh token
    session_ended: bool = False  # ENDED by the liveness check, not by a refresh
    retry_after: int | None = None  # UNAVAILABLE: seconds until the next attempt, if known

    @property
    def usable(self) -> bool:
        return self.outcome in (Outcome.FRESH, Outcome.REFRESHED, Outcome.DEFERRED)


class SigningKeyUnavailable(ProviderError):
    """The ID token's key is not (yet) among the published keys, or is unusable: not a verdict
    on the token, since the JWKS may be stale or the key published a moment later."""


@dataclass(frozen=True)
class SessionCheck:
    """One liveness check: alive (with userinfo), ended (the login is gone), not known (an
    outage), or postponed (not made now)."""

    claims: dict[str, Any] | None = None
    ended: AuthgearError | None = None
    unavailable: AuthgearError | None = None
    postponed_until: float | None = None


@dataclass(frozen=True)
class IdTokenCheck:
    """One of three answers about an ID token: verified, definitely invalid, or not known yet."""

    claims: dict[str, Any] | None = None
    invalid: TokenValidationError | None = None
    unavailable: AuthgearError | None = None


def verification_retry_interval() -> float:
    """Seconds between verification attempts: a sooner one would find the JWKS refetch cooldown
    still running and learn nothing new."""
    return max(JWKS_REFETCH_COOLDOWN, float(conf.AUTHGEAR_REFRESH_RETRY_INTERVAL))


_PROCESS_LOCKS = tuple(threading.Lock() for _ in range(64))


def _process_lock(login_id: str) -> threading.Lock:
    """One of a fixed set of locks, chosen by login: bounded memory, rare false sharing."""
    return _PROCESS_LOCKS[zlib.crc32(login_id.encode()) % len(_PROCESS_LOCKS)]


def token_wanted_by_default(entry: SessionEntry) -> bool:
    """Whether a request that does not ask for the token refreshes it anyway: with eager
    refreshes, and for an entry written before the liveness check (no proof of life planned)."""
    return entry.legacy or not refresh_is_lazy()


def refresh_session_login(
    session: SessionBase,
    *,
    force: bool = False,
    rejected_access_token: str | None = None,
    need_token: bool | None = None,
) -> RefreshResult:
    """Keep the session's login proven alive and, when asked, holding a fresh access token.

    ``need_token``: the caller is about to use the access token, so a due one is refreshed;
    ``None`` lets the settings decide (:func:`token_wanted_by_default`: with lazy refreshes an
    expired token is then renewed only by a due liveness check). ``force`` refreshes even
    before the leeway (an API answered 401); with ``rejected_access_token`` a forced refresh
    is skipped when another request already replaced that token.
    """
    entry = read_entry(session)
    if entry is None:
        return RefreshResult(Outcome.ENDED)
    login_id = entry.login_id
    now = time.time()
    token_wanted = force or (
        need_token if need_token is not None else token_wanted_by_default(entry)
    )
    if not force and entry.retry_at is not None and now < entry.retry_at:
        return _waiting_result(session, now, entry.retry_at, token_wanted=token_wanted)
    if (
        not force
        and need_token is not True  # code that needs the token may try a refresh: a proof
        and entry.stale(now)
        and entry.check_at is not None
        and now < entry.check_at
    ):
        # Unproven too long and the next attempt is not due yet: the last attempt's answer.
        return _stale_result(now, entry.check_at, error=None)
    verify_at, deadline = entry.verify_at, entry.deadline
    if not force and verify_at is not None and deadline is not None and deadline <= now < verify_at:
        # Past the deadline and between two attempts: the same answer as the last attempt.
        return RefreshResult(Outcome.UNAVAILABLE, id_token_pending=True)
    # The session says when a liveness check is due (no query); the row, under its lock, has
    # the last word (another request of this login may have just made it).
    check_planned = (
        not force and conf.AUTHGEAR_SESSION_CHECK_INTERVAL is not None and entry.check_due(now)
    )
    check: SessionCheck | None = None
    held_back: Backoff | None = None
    called = False

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
            # The row, read under its lock, is the authority on a pending verification; the
            # session only says when to try next (no plan, e.g. lost to an overlapping save of
            # the session: now).
            unverified = login.id_token_unverified_since is not None
            check_due = check_planned and session_check_due_on_row(login, now)
            # Lazy: a token nobody asked for is refreshed only for the check's userinfo call.
            if (token_wanted or check_due) and _needs_refresh(
                login, now, force=force, rejected=rejected_access_token
            ):
                # Authgear answered 429 lately: no refresh call from any worker until it ends.
                held_back = _held_back(
                    login,
                    now,
                    force=force,
                    token_wanted=token_wanted,
                    asked=need_token is True,
                    stale_at=armed_stale_at(entry, login, now),
                )
                if held_back is None:
                    result = _refresh_locked(login)
                    if isinstance(result.error, ProviderRateLimited):
                        held_back, called = last_backoff(), True  # our call started it
                else:
                    result = RefreshResult(Outcome.DEFERRED, login=login)
            elif unverified and (verify_at is None or now >= verify_at):
                result = _verify_pending_locked(login, now)
            elif check_due:
                result = RefreshResult(Outcome.FRESH, login=login)
            else:
                bind_session(session, login)
                return RefreshResult(Outcome.FRESH, login=login)
            if not check_due or result.outcome not in (Outcome.FRESH, Outcome.REFRESHED):
                pass  # nothing to check, or Authgear just failed us: the check waits
            elif login.id_token_unverified_since is not None:
                # No claims are applied while an ID token awaits verification: the check
                # comes back with the next verification attempt.
                check = SessionCheck(postponed_until=now + verification_retry_interval())
            else:
                check = _check_session_locked(login)
                if check.ended is not None:
                    result = RefreshResult(Outcome.ENDED, error=check.ended, session_ended=True)
    except OperationalError as exc:  # e.g. SQLite's "database is locked": try again later
        logger.error("authgear_django: refresh of login %s hit a database error: %s", login_id, exc)
        return _unavailable_result(session, now, error=None, token_wanted=token_wanted)

    if held_back is not None:
        return _wait_for_backoff(
            session,
            login,
            now,
            held_back,
            force=force,
            called=called,
            token_wanted=token_wanted,
        )
    if result.outcome is Outcome.ENDED:  # login_revoked was sent by store.end_logins
        if not result.session_ended:
            refresh_failed.send(sender=AuthgearLogin, login=login, error=result.error, fatal=True)
        return result
    if result.outcome is Outcome.UNAVAILABLE and not result.id_token_pending:
        return _refresh_unavailable(session, login, now, result.error, token_wanted=token_wanted)

    # The row holds usable tokens: a new access token, or a stored ID token just (re)checked.
    check_retry_at = None
    if check is not None and check.unavailable is not None:
        check_retry_at = now + _check_retry_delay(check.unavailable)
    elif check is not None and check.postponed_until is not None:
        check_retry_at = check.postponed_until
    proven: bool | None = None
    if result.outcome is Outcome.REFRESHED or (check is not None and check.claims is not None):
        proven = True  # Authgear refreshes only a live grant; userinfo answered
    elif check_retry_at is not None:
        proven = False  # the due check could not be made
    bind_session(
        session,
        login,
        verify_at=now + verification_retry_interval() if result.id_token_pending else None,
        check_retry_at=check_retry_at,
        proven=proven,
    )
    checked_user = None
    if check is not None and check.claims is not None:
        # userinfo carries the roles too (and more): the ID token's need not be applied first
        checked_user = claims_backend(session).apply_fresh_claims(login.account, check.claims)
    elif result.claims:
        sync_roles(login.account.user, login.account, result.claims)
    if result.outcome is Outcome.REFRESHED:
        tokens_refreshed.send(sender=AuthgearLogin, login=login, rotated=result.rotated)
    if check is not None and check.claims is not None:  # in the order things happened
        session_checked.send(
            sender=AuthgearLogin, login=login, user=checked_user, claims=check.claims
        )
    if result.id_token_pending:
        deadline = unverified_id_token_deadline(login)
        past_deadline = deadline is not None and now >= deadline
        outcome = Outcome.UNAVAILABLE if past_deadline else result.outcome
        return RefreshResult(
            outcome,
            error=result.error,
            login=login,
            rotated=result.rotated,
            id_token_pending=True,
        )
    entry = read_entry(session)
    if entry is not None and entry.stale(now):
        # Neither a refresh nor a check proved the login alive for too long (the check just
        # failed, or waits for an ID token to be verified): serve it no more until one does.
        next_attempt = entry.check_at or now
        error = check.unavailable if check is not None else None
        return _stale_result(now, next_attempt, error=error, login=login)
    return result


def _stale_result(
    now: float,
    next_attempt_at: float,
    *,
    error: AuthgearError | None,
    login: AuthgearLogin | None = None,
) -> RefreshResult:
    """Unavailable: the login went unproven past ``AUTHGEAR_MAX_STALENESS``; retry when the
    next attempt (or the token endpoint's backoff) allows."""
    wait = max(1, math.ceil(next_attempt_at - now))
    backoff = current_backoff(now)
    if backoff is not None:
        wait = max(wait, backoff.retry_after(now))
        error = ProviderRateLimited(
            "refresh: the token endpoint is backing off after a 429", retry_after=wait
        )
    return RefreshResult(Outcome.UNAVAILABLE, error=error, login=login, retry_after=wait)


def claims_backend(session: SessionBase) -> AuthgearBackend:
    """The backend whose hooks (``update_user``, ``sync_roles``) apply fresh claims: the one
    the user logged in with if it is ours (a project's subclass included), else the first of
    ours in ``AUTHENTICATION_BACKENDS``."""
    backends = conf.AUTHENTICATION_BACKENDS
    logged_in_with = session.get(BACKEND_SESSION_KEY)
    paths = [logged_in_with] if logged_in_with in backends else []
    for path in [*paths, *backends]:
        backend = load_backend(path)
        if isinstance(backend, AuthgearBackend):
            return cast(AuthgearBackend, backend)
    return cast(AuthgearBackend, AuthgearBackend())


def _check_retry_delay(error: AuthgearError) -> float:
    """After a failed liveness check, as after a failed refresh: the retry interval, or longer
    if Authgear asked for it (429 ``Retry-After``)."""
    delay = float(conf.AUTHGEAR_REFRESH_RETRY_INTERVAL)
    if isinstance(error, ProviderRateLimited) and error.retry_after:
        delay = max(delay, float(error.retry_after))
    return delay


def _check_session_locked(login: AuthgearLogin) -> SessionCheck:
    """Ask Authgear whether the login's session is alive (row locked); never raises for
    provider or token trouble.

    401 is Authgear's answer for a revoked grant (signed out, session revoked, user disabled
    or deleted): the login ends here too, without revocation, since Authgear ended the grant
    already. A userinfo about another ``sub`` ends it as well (and revokes: the grant is alive
    but its tokens are not this user's). Anything else is "not known now": retried later.
    """
    try:
        access_token = login.access_token
    except TokenDecryptionError as exc:
        logger.warning("authgear_django: login %s: %s; ending it", login.pk, exc)
        return SessionCheck(ended=_end_locked(login, AuthgearError(str(exc)), revoke=False).error)
    if not access_token:
        return SessionCheck(unavailable=AuthgearError("the login holds no access token"))
    try:
        userinfo = get_client().userinfo(access_token)
    except OAuthError as exc:
        if exc.status == 401:
            logger.info("authgear_django: login %s: Authgear session ended (%s)", login.pk, exc)
            end_logins([login], reason="session_ended", revoke=False, end_sessions=False)
            return SessionCheck(ended=exc)
        logger.warning("authgear_django: checking login %s failed: %s", login.pk, exc)
        return SessionCheck(unavailable=exc)
    except AuthgearError as exc:
        logger.warning("authgear_django: checking login %s failed: %s", login.pk, exc)
        return SessionCheck(unavailable=exc)
    if userinfo.get("sub") != login.account.sub:
        security_logger.warning(
            "authgear_django: login %s: userinfo is about another user; ending it", login.pk
        )
        error = TokenValidationError("userinfo sub does not match the login's sub")
        end_logins([login], reason="userinfo_invalid", revoke=True, end_sessions=False)
        return SessionCheck(ended=error)
    login.last_checked_at = timezone.now()
    login.save(update_fields=["last_checked_at"])
    return SessionCheck(claims=userinfo)


def _refresh_unavailable(
    session: SessionBase,
    login: AuthgearLogin,
    now: float,
    error: AuthgearError | None,
    *,
    token_wanted: bool,
) -> RefreshResult:
    """Authgear unavailable and nothing issued: keep everything, retry on a later request.

    Wait before retrying, but never past the token's expiry: with short-lived tokens a single
    failed refresh must not leave the user on an expired token for a whole interval.
    """
    retry_at = now + conf.AUTHGEAR_REFRESH_RETRY_INTERVAL
    entry = read_entry(session)
    if entry is not None:
        if entry.expires_at is not None and entry.expires_at > now:
            retry_at = min(retry_at, entry.expires_at)
        stale_at = armed_stale_at(entry, login, now)
        write_entry(session, replace(entry.with_retry_at(retry_at), stale_at=stale_at))
    refresh_failed.send(sender=AuthgearLogin, login=login, error=error, fatal=False)
    return _unavailable_result(session, now, error=error, login=login, token_wanted=token_wanted)


def _held_back(
    login: AuthgearLogin,
    now: float,
    *,
    force: bool,
    token_wanted: bool,
    asked: bool,
    stale_at: float | None,
) -> Backoff | None:
    """The backoff that holds this due refresh back, if any (one cache read).

    During a backoff every refresh waits. For a minute after one (the budget is still short)
    a refresh that can wait does: the login stays usable (token valid, or expired within the
    grace) for longer than :data:`BACKOFF_SAFETY_MARGIN`, so the calls left go to the logins
    that need them most. A forced refresh (an API refused the token) cannot wait, nor can code
    that ``asked`` for an expired token (the grace serves pages, an API needs a live token).
    """
    state = last_backoff()
    if state is None or state.active(now):
        return state
    usable_until = _usable_until(login, token_wanted=token_wanted, stale_at=stale_at)
    if force or usable_until is None or usable_until - now <= BACKOFF_SAFETY_MARGIN:
        return None
    expires_at = login.access_token_expires_at
    if asked and expires_at is not None and now >= expires_at.timestamp():
        return None
    return state


def _usable_until(
    login: AuthgearLogin, *, token_wanted: bool, stale_at: float | None
) -> float | None:
    """Until when the login may be served without a refresh: until ``stale_at`` (unproven too
    long), and (when its token is wanted) until the token's expiry plus the grace."""
    limits: list[float] = []
    if stale_at is not None:
        limits.append(stale_at)
    expires_at = login.access_token_expires_at
    if token_wanted and expires_at is not None:
        limits.append(expires_at.timestamp() + conf.AUTHGEAR_REFRESH_GRACE)
    return min(limits) if limits else None


def _wait_for_backoff(
    session: SessionBase,
    login: AuthgearLogin,
    now: float,
    backoff: Backoff,
    *,
    force: bool,
    called: bool = False,
    token_wanted: bool = True,
) -> RefreshResult:
    """A due refresh is held back (Authgear's 429, by us or another worker): keep what the
    login has, with no call.

    The user stays signed in while the access token is valid, or expired within
    ``AUTHGEAR_REFRESH_GRACE``; past that, the answer is "unavailable, retry after" the
    backoff. The session comes back as late as it safely can (:data:`BACKOFF_SAFETY_MARGIN`
    before the login stops being usable), at a random moment, so that the logins deferred
    together do not come back together; one that cannot wait comes back soon after the
    backoff, spread over half its length (at its end if it is unusable already).
    ``called``: our own call was just answered 429.
    """
    if not called:
        count("deferrals", now=now)
    active = backoff.active(now)
    error = backoff.error(now) if active else None
    entry = read_entry(session)
    stale_at = armed_stale_at(entry, login, now)
    usable_until = _usable_until(login, token_wanted=token_wanted, stale_at=stale_at)
    if entry is not None:
        earliest = backoff.until if active else now
        latest = (usable_until - BACKOFF_SAFETY_MARGIN) if usable_until is not None else earliest
        if not token_wanted:
            # A lazy check can wait until the login turns stale, but code may ask for the
            # token meanwhile: come back within the minute after the backoff, spread over it.
            latest = min(latest, earliest + ESCALATION_WINDOW)
        if usable_until is not None and usable_until <= earliest:
            low = high = earliest  # unusable already: first in line when the backoff ends
        elif latest > earliest + BASE_DELAY:
            low, high = latest - BASE_DELAY, latest
        else:
            low = earliest
            high = earliest + backoff.remaining(now) / 2
            if usable_until is not None and usable_until > earliest:
                high = min(high, usable_until)
        come_back_at = random.uniform(low, max(low, high))  # noqa: S311 - spreading load
        write_entry(session, replace(entry.with_retry_at(come_back_at), stale_at=stale_at))
    logger.info(
        "authgear_django: login %s: refresh deferred, the token endpoint %s (level %d)",
        login.pk,
        f"backs off for {backoff.retry_after(now)} s" if active else "was rate limited lately",
        backoff.level,
    )
    if called:
        refresh_failed.send(sender=AuthgearLogin, login=login, error=error, fatal=False)
    if force:
        return RefreshResult(Outcome.UNAVAILABLE, error=error, login=login)
    return _unavailable_result(session, now, error=error, login=login, token_wanted=token_wanted)


def _waiting_result(
    session: SessionBase, now: float, retry_at: float, *, token_wanted: bool
) -> RefreshResult:
    """Between two attempts: usable as the last attempt left it (until expiry plus grace if
    the token is wanted, and while the login is not stale).

    When that is over, the answer says how long to wait (longer while refreshes back off).
    """
    result = _unavailable_result(session, now, error=None, token_wanted=token_wanted)
    if result.outcome is Outcome.UNAVAILABLE:
        wait = max(1, math.ceil(retry_at - now))
        backoff = current_backoff(now)
        if backoff is not None:
            wait = max(backoff.retry_after(now), wait)
            error = ProviderRateLimited(
                "refresh: the token endpoint is backing off after a 429", retry_after=wait
            )
            return RefreshResult(Outcome.UNAVAILABLE, error=error, retry_after=wait)
        return RefreshResult(Outcome.UNAVAILABLE, retry_after=wait)
    return result


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
    return refresh_due(SessionEntry(login.pk.hex, refresh_at=login_refresh_at(login)), now)


def _refresh_locked(login: AuthgearLogin) -> RefreshResult:
    """Call Authgear with the row locked; never raises for provider or token trouble.

    An unverified stored ID token (``id_token_unverified_since``) stays so if no new one comes.
    """
    try:
        refresh_token = login.refresh_token
    except TokenDecryptionError as exc:
        logger.warning("authgear_django: login %s: %s; ending it", login.pk, exc)
        return _end_locked(login, AuthgearError(str(exc)), revoke=False)
    assert refresh_token  # _needs_refresh checked
    client = get_client()
    count("refreshes")
    try:
        tokens = client.refresh(refresh_token)
    except ProviderRateLimited as exc:
        logger.warning("authgear_django: refreshing login %s failed: %s", login.pk, exc)
        # The budget is shared by every worker (one client IP): all of them stop, not just us.
        backoff = record_rate_limited(exc.retry_after)
        return RefreshResult(Outcome.UNAVAILABLE, error=backoff.error(time.time()))
    except OAuthError as exc:
        if exc.is_invalid_grant or exc.error in ("invalid_client", "unauthorized_client"):
            logger.info("authgear_django: login %s ended by Authgear (%s)", login.pk, exc.error)
            return _end_locked(login, exc, revoke=False)
        logger.warning("authgear_django: refreshing login %s failed: %s", login.pk, exc)
        return RefreshResult(Outcome.UNAVAILABLE, error=exc)
    except AuthgearError as exc:
        logger.warning("authgear_django: refreshing login %s failed: %s", login.pk, exc)
        return RefreshResult(Outcome.UNAVAILABLE, error=exc)

    record_refresh_succeeded()
    # Authgear has answered: with rotation on, the old refresh token is dead from now on, so
    # whatever the ID token turns out to be, these tokens are either stored or revoked.
    now = timezone.now()
    check = IdTokenCheck()
    if tokens.id_token:
        check = _check_id_token(
            client,
            tokens.id_token,
            expected_sub=login.account.sub,
            received_at=now.timestamp(),
            now=now.timestamp(),
        )
    if check.invalid is not None:
        security_logger.warning("authgear_django: refreshed ID token rejected: %s", check.invalid)
        if tokens.refresh_token:
            # Rotated: the newest refresh token is the one to revoke; end_logins reads it from
            # the row (never committed: the row is deleted in this same transaction).
            login.store_tokens(tokens, id_token_claims=None, now=now)
            login.save()
        return _end_locked(login, check.invalid, revoke=True)
    if check.unavailable is not None:
        logger.warning(
            "authgear_django: login %s refreshed; its new ID token cannot be verified yet (%s), "
            "verification will be retried",
            login.pk,
            check.unavailable,
        )
    login.store_tokens(tokens, id_token_claims=check.claims, now=now)
    login.last_refreshed_at = now
    login.refresh_count += 1
    if check.unavailable is not None:
        # A refresh while still unverified does not extend the deadline of the first one.
        login.id_token_unverified_since = login.id_token_unverified_since or now
    elif check.claims is not None:
        login.id_token_unverified_since = None
    login.save()
    return RefreshResult(
        Outcome.REFRESHED,
        error=check.unavailable,
        login=login,
        rotated=bool(tokens.refresh_token),
        claims=check.claims,
        id_token_pending=login.id_token_unverified_since is not None,
    )


def _verify_pending_locked(login: AuthgearLogin, now: float) -> RefreshResult:
    """Retry the verification of the stored ID token, as of when it was received."""
    try:
        id_token = login.id_token
    except TokenDecryptionError as exc:
        logger.warning("authgear_django: login %s: %s; ending it", login.pk, exc)
        return _end_locked(login, AuthgearError(str(exc)), revoke=False)
    if not id_token:  # nothing left to verify
        login.id_token_unverified_since = None
        login.save(update_fields=["id_token_unverified_since"])
        return RefreshResult(Outcome.FRESH, login=login)
    received = login.last_refreshed_at or login.created_at  # the pending one came by refresh
    client = get_client()
    check = _check_id_token(
        client, id_token, expected_sub=login.account.sub, received_at=received.timestamp(), now=now
    )
    if check.invalid is not None:
        security_logger.warning("authgear_django: pending ID token rejected: %s", check.invalid)
        return _end_locked(login, check.invalid, revoke=True)
    if check.unavailable is not None:
        logger.warning(
            "authgear_django: login %s: ID token still cannot be verified (%s)",
            login.pk,
            check.unavailable,
        )
        return RefreshResult(
            Outcome.DEFERRED, error=check.unavailable, login=login, id_token_pending=True
        )
    assert check.claims is not None
    login.id_token_unverified_since = None
    _remember_verified_claims(login, check.claims)
    logger.info("authgear_django: login %s: pending ID token verified", login.pk)
    return RefreshResult(Outcome.FRESH, login=login, claims=check.claims)


def _check_id_token(
    client: AuthgearClient,
    id_token: str,
    *,
    expected_sub: str,
    received_at: float,
    now: float,
) -> IdTokenCheck:
    """Verify a refreshed ID token as of ``received_at``, telling "invalid" from "not now".

    Invalid: anything :func:`verify_id_token` rejects once it has the key, and (while the key
    is unavailable) unverified ``iss``/``aud``/``sub`` that contradict this login. Not now: the
    discovery document or the JWKS cannot be fetched, or the ``kid`` is not published (yet).
    The token's ``exp`` is only accepted at receipt; verified later, the time window is checked
    against ``received_at``, not against the current time.
    """
    leeway = conf.AUTHGEAR_CLOCK_LEEWAY
    age = max(0.0, now - received_at)
    try:
        claims = verify_id_token(
            id_token,
            client=client,
            signing_key=_published_key(client),
            extra_leeway=math.ceil(age),
            expected_sub=expected_sub,
        )
    except TokenValidationError as exc:
        return IdTokenCheck(invalid=exc)
    except AuthgearError as exc:
        contradiction = _contradicting_claims(
            id_token, issuer=client.endpoint, client_id=client.client_id, sub=expected_sub
        )
        if contradiction is not None:
            return IdTokenCheck(invalid=contradiction)
        return IdTokenCheck(unavailable=exc)
    if age:
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, (int, float)) or exp < received_at - leeway:
            return IdTokenCheck(invalid=TokenValidationError("ID token had expired on receipt"))
        if not isinstance(iat, (int, float)) or iat > received_at + leeway:
            return IdTokenCheck(
                invalid=TokenValidationError("ID token was issued after its receipt")
            )
    return IdTokenCheck(claims=claims)


def _published_key(client: AuthgearClient) -> KeyLookup:
    """The client's key lookup, with "no such key" turned into "not available (yet)"."""

    def lookup(kid: str | None) -> dict[str, Any]:
        jwk = client.signing_key(kid)
        if jwk is None:
            raise SigningKeyUnavailable(f"no published key matches kid {str(kid)[:64]!r} yet")
        try:
            jwt.PyJWK(jwk, algorithm="RS256")
        except jwt.PyJWTError:
            raise SigningKeyUnavailable("the published key cannot be used for RS256") from None
        return jwk

    return lookup


def _contradicting_claims(
    id_token: str, *, issuer: str, client_id: str, sub: str
) -> TokenValidationError | None:
    """A definite mismatch readable without the key: another issuer, audience or user.

    Ending a login on unverified claims is safe (it only ever fails closed); accepting one on
    them never happens.
    """
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return TokenValidationError("ID token payload is not readable")
    if claims.get("iss") != issuer:
        return TokenValidationError("ID token issuer does not equal AUTHGEAR_ENDPOINT")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        return TokenValidationError("ID token audience does not contain our client id")
    if claims.get("sub") != sub:
        return TokenValidationError("refreshed ID token belongs to another user")
    return None


def _remember_verified_claims(login: AuthgearLogin, claims: dict[str, Any]) -> None:
    """What ``store_tokens`` keeps from verified claims, for a token verified after storage."""
    sid = claims.get("sid")
    if isinstance(sid, str):
        login.sid = sid[:255]
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, (int, float)) and not isinstance(auth_time, bool):
        login.auth_time = datetime.fromtimestamp(auth_time, tz=dt_timezone.utc)
    login.save(update_fields=["sid", "auth_time", "id_token_unverified_since"])


def _end_locked(login: AuthgearLogin, error: AuthgearError, *, revoke: bool) -> RefreshResult:
    """End the login from inside the refresh (row lock held), through the one owner of that."""
    reason = "id_token_invalid" if isinstance(error, TokenValidationError) else "refresh_failed"
    ended = end_logins([login], reason=reason, revoke=revoke, end_sessions=False)
    return RefreshResult(Outcome.ENDED, error=error, revoked=ended.revoked > 0)


def _unavailable_result(
    session: SessionBase,
    now: float,
    *,
    error: AuthgearError | None,
    login: AuthgearLogin | None = None,
    token_wanted: bool = True,
) -> RefreshResult:
    """Nothing new from Authgear: still usable while the login is not stale and, when its
    token is wanted, until the token's expiry plus ``AUTHGEAR_REFRESH_GRACE``."""
    entry = read_entry(session)
    if entry is not None and entry.stale(now):
        return RefreshResult(Outcome.UNAVAILABLE, error=error, login=login)
    if not token_wanted:
        return RefreshResult(Outcome.DEFERRED, error=error, login=login)
    expires_at = session_expires_at(session)
    if expires_at is not None and now < expires_at + conf.AUTHGEAR_REFRESH_GRACE:
        return RefreshResult(Outcome.DEFERRED, error=error, login=login)
    return RefreshResult(Outcome.UNAVAILABLE, error=error, login=login)

"""What a login keeps in the session and in the database, and the one way a login ends.

The session never holds a token: only pending login attempts (state, nonce, PKCE verifier,
until the callback) and one small entry per logged-in session, whose format and "refresh due"
rule live in :mod:`authgear_django.session_entry`. Everything that ends a login (logout, a
dead refresh, an ended Authgear session, a webhook, the admin, ``authgear_revoke``) goes
through :func:`end_logins`.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from authgear_django.authorization import LoginAttempt
from authgear_django.client import TokenSet
from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AuthgearError
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.session_entry import (
    SESSION_LOGIN_KEY,
    SessionEntry,
    decode,
    encode,
    refresh_due,
)
from authgear_django.signals import login_revoked

logger = logging.getLogger("authgear_django")

__all__ = ["SESSION_LOGIN_KEY", "refresh_due"]

SESSION_ATTEMPTS_KEY = "_authgear_login_attempts"
# Keys written by earlier versions (their contents now live in the entry or on the row); only
# removed, never read.
LEGACY_SESSION_KEYS = ("_authgear_refresh_retry_at", "_authgear_id_token_pending")
SESSION_KEYS = (SESSION_LOGIN_KEY, *LEGACY_SESSION_KEYS)


def refresh_leeway(lifetime: float | None) -> float:
    """Seconds before expiry to refresh: the setting, but never more than half the lifetime,
    so that a 10-second token is refreshed once per expiry rather than on every request."""
    leeway = float(conf.AUTHGEAR_REFRESH_LEEWAY)
    if lifetime:
        leeway = min(leeway, lifetime / 2)
    return leeway


#: The most a login's own spread adds to the refresh leeway, as a fraction of it.
REFRESH_SPREAD = 0.5


def refresh_spread(login_id: Any) -> float:
    """This login's fixed share (0 to :data:`REFRESH_SPREAD`) of extra leeway: logins made in
    the same minute (a launch, a migration) would otherwise refresh in lockstep forever, a
    burst against Authgear's per-minute token budget each lifetime. Deterministic (a hash of
    the id), so every worker and every request agrees on the login's refresh time."""
    digest = zlib.crc32(str(login_id).encode())
    return REFRESH_SPREAD * digest / 2**32


def login_refresh_leeway(login: AuthgearLogin) -> float:
    """The leeway of this login: the setting plus its spread, never more than half the
    lifetime in total (a 10-second token is still refreshed once per expiry)."""
    lifetime = login.access_token_lifetime
    leeway = float(conf.AUTHGEAR_REFRESH_LEEWAY) * (1 + refresh_spread(login.pk))
    if lifetime:
        leeway = min(leeway, lifetime / 2)
    return leeway


def refresh_is_lazy() -> bool:
    """Whether access tokens are refreshed only when needed (the default): the liveness check
    then proves each login alive. Without that check there is no other proof: eager."""
    return not conf.AUTHGEAR_EAGER_REFRESH and conf.AUTHGEAR_SESSION_CHECK_INTERVAL is not None


def read_entry(session: SessionBase) -> SessionEntry | None:
    """The session's login entry, or ``None`` (none, or malformed: never raises)."""
    return decode(session.get(SESSION_LOGIN_KEY))


def write_entry(session: SessionBase, entry: SessionEntry) -> None:
    session[SESSION_LOGIN_KEY] = encode(entry)
    for key in LEGACY_SESSION_KEYS:
        session.pop(key, None)


def session_login_id(session: SessionBase) -> str | None:
    entry = read_entry(session)
    return entry.login_id if entry is not None else None


def session_refresh_at(session: SessionBase) -> float | None:
    entry = read_entry(session)
    return entry.refresh_at if entry is not None else None


def session_expires_at(session: SessionBase) -> float | None:
    entry = read_entry(session)
    return entry.expires_at if entry is not None else None


def _expires(login: AuthgearLogin) -> int | None:
    """The access token's expiry in whole seconds (they keep the session small)."""
    expires_at = login.access_token_expires_at
    return int(expires_at.timestamp()) if expires_at is not None else None


def login_refresh_at(login: AuthgearLogin) -> int | None:
    """When the row's access token is due for a refresh (Unix seconds), ``None`` if never.

    The session entry carries this very value and the refresh path checks the row against it
    with the same :func:`refresh_due`, so the two never disagree. Rounded up: never due early.
    Without a refresh token (no ``offline_access``) there is nothing to refresh.
    """
    expires_at = login.access_token_expires_at
    if not login.encrypted_refresh_token or expires_at is None:
        return None
    # From the exact expiry, not the whole-second one: rounding down first made it up to 1 s
    # early (the soak saw refreshes 4.25 s apart for 10 s tokens whose leeway is 5 s).
    return math.ceil(expires_at.timestamp() - login_refresh_leeway(login))


def access_token_due(login: AuthgearLogin, now: float) -> bool:
    """Whether the row's access token must be refreshed before it is handed out."""
    refresh_at = login_refresh_at(login)
    return refresh_at is not None and now >= refresh_at


def armed_stale_at(entry: SessionEntry | None, login: AuthgearLogin, now: float) -> int | None:
    """When the login, whose proof of life (a refresh or a liveness check) just failed, stops
    being served: ``AUTHGEAR_MAX_STALENESS`` after its check was due, or after this first
    failure if the login was idle until now (nobody could prove it while nobody visited).
    Once armed, the time stays until a proof succeeds (:func:`bind_session` with
    ``proven=True``). ``None`` without a liveness check: no proof is planned, refreshes are
    eager and the token's expiry plus grace bounds the login instead."""
    check_at = login_check_at(login)
    if check_at is None:
        return None
    if entry is not None and entry.login_id == login.pk.hex and entry.stale_at is not None:
        return math.ceil(entry.stale_at)
    return math.ceil(max(check_at, now) + conf.AUTHGEAR_MAX_STALENESS)


def login_check_at(login: AuthgearLogin) -> int | None:
    """When the login's Authgear session is next due for a liveness check (Unix seconds),
    ``None`` if never: the check is off, or the login has no refresh token (its access token
    dies with its expiry and nothing here renews it, so there is no session to keep in step).

    The login itself confirmed the session (its userinfo call), hence ``created_at`` until
    the first check. Rounded up, like ``refresh at``: never due before the row says so.
    """
    interval = conf.AUTHGEAR_SESSION_CHECK_INTERVAL
    if interval is None or not login.encrypted_refresh_token:
        return None
    since = login.last_checked_at or login.created_at
    return math.ceil(since.timestamp() + interval)


def session_check_due_on_row(login: AuthgearLogin, now: float) -> bool:
    """The row's answer (read under its lock) to "is a liveness check due?": another request
    of the same login may have just made it."""
    check_at = login_check_at(login)
    return check_at is not None and now >= check_at


def unverified_id_token_deadline(login: AuthgearLogin) -> float | None:
    """Until when a login whose stored ID token is unverified stays usable (Unix seconds).

    Like a failed refresh: the access token that came with the first unverified ID token may
    be used until it expires, plus ``AUTHGEAR_REFRESH_GRACE``. ``None``: the ID token is not
    awaiting verification.
    """
    since = login.id_token_unverified_since
    if since is None:
        return None
    return since.timestamp() + (login.access_token_lifetime or 0) + conf.AUTHGEAR_REFRESH_GRACE


# --- pending login attempts -------------------------------------------------------------------


def remember_attempt(session: SessionBase, attempt: LoginAttempt, *, limit: int) -> None:
    """Add an attempt, dropping the oldest beyond ``limit`` (one per open tab is typical)."""
    attempts = session.get(SESSION_ATTEMPTS_KEY)
    if not isinstance(attempts, dict):
        attempts = {}
    attempts[attempt.state] = attempt.to_session()
    if len(attempts) > limit:
        by_age = sorted(attempts.items(), key=lambda item: _created_at(item[1]))
        attempts = dict(by_age[-limit:])
    session[SESSION_ATTEMPTS_KEY] = attempts


def pop_attempt(session: SessionBase, state: str) -> LoginAttempt | None:
    """Remove and return the attempt for ``state``: each state is usable exactly once."""
    attempts = session.get(SESSION_ATTEMPTS_KEY)
    if not isinstance(attempts, dict) or state not in attempts:
        return None
    data = attempts.pop(state)
    if attempts:
        session[SESSION_ATTEMPTS_KEY] = attempts
    else:
        del session[SESSION_ATTEMPTS_KEY]  # keep logged-in sessions small
    return LoginAttempt.from_session(data)


def _created_at(data: Any) -> float:
    value = data.get("created_at") if isinstance(data, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


# --- the login record ---------------------------------------------------------------------------


def create_login(
    request: HttpRequest,
    account: AuthgearAccount,
    tokens: TokenSet,
    id_token_claims: dict[str, Any],
) -> AuthgearLogin:
    """Store the tokens of a fresh login and point the (already logged-in) session at them."""
    now = timezone.now()
    login = AuthgearLogin(
        account=account,
        session_key=request.session.session_key or "",
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
        last_checked_at=now,  # the login's own userinfo call just confirmed the session
    )
    login.store_tokens(tokens, id_token_claims=id_token_claims, now=now)
    login.save()
    bind_session(request.session, login)
    return login


def bind_session(
    session: SessionBase,
    login: AuthgearLogin,
    *,
    verify_at: float | None = None,
    check_retry_at: float | None = None,
    proven: bool | None = None,
) -> None:
    """Point the session at ``login`` and copy what the refresh middleware's hot path needs.

    Without a refresh token (no ``offline_access``) there is nothing to refresh, so no times
    are copied and the middleware never looks at this login again. While the row says its ID
    token is unverified, the middleware comes back at ``verify_at`` (else at the attempt the
    session already planned, else at once) and, past the deadline, on every request (so that
    each one gets the same answer). A pending retry of a failed refresh is forgotten.

    The next liveness check (``check at``) is the row's (``last_checked_at`` plus the
    interval), but never earlier than a retry planned after Authgear could not be reached:
    ``check_retry_at``, or the one the session already holds. ``refresh at`` is never later
    than it, so the hot path still compares one number.

    With lazy refreshes (:func:`refresh_is_lazy`) the token's own refresh time is left out of
    ``refresh at``: an expired token is renewed by the liveness check or when code asks for
    it (``get_access_token``), not on every page.

    ``proven``: a refresh or liveness check just succeeded (``True``: the staleness bound is
    lifted), or just failed (``False``: the bound is armed, :func:`armed_stale_at`);
    ``None``: nothing was tried, the bound stays as it was.
    """
    previous = read_entry(session)
    if previous is not None and previous.login_id != login.pk.hex:
        previous = None
    token_refresh_at: float | None = login_refresh_at(login)
    expires = _expires(login) if token_refresh_at is not None else None
    check_at: float | None = login_check_at(login)
    lazy = check_at is not None and refresh_is_lazy()
    refresh_at = None if lazy else token_refresh_at
    if check_at is not None:
        planned = [check_at, math.ceil(check_retry_at) if check_retry_at is not None else None]
        if previous is not None:
            planned.append(previous.check_at)
        check_at = max(at for at in planned if at is not None)
        refresh_at = check_at if refresh_at is None else min(refresh_at, check_at)
    if proven is None:
        stale_at = previous.stale_at if previous is not None else None
    else:
        stale_at = None if proven else armed_stale_at(previous, login, time.time())
    if stale_at is not None and refresh_at is not None:
        # unproven too long: every request must hear "503, retry after" from the refresh path
        refresh_at = min(refresh_at, stale_at)
    deadline = unverified_id_token_deadline(login)
    if deadline is not None:
        if verify_at is None and previous is not None:
            verify_at = previous.verify_at
        if verify_at is None:
            verify_at = time.time()
        # rounded up: a retry is never due before its time (nor the deadline before its time)
        come_back_at = math.ceil(min(verify_at, deadline))
        refresh_at = come_back_at if refresh_at is None else min(refresh_at, come_back_at)
    else:
        verify_at = None
    write_entry(
        session,
        SessionEntry(
            login_id=login.pk.hex,
            refresh_at=refresh_at,
            expires_at=expires,
            verify_at=verify_at,
            deadline=deadline,
            check_at=check_at,
            stale_at=stale_at,
        ),
    )


def current_login(request: HttpRequest) -> AuthgearLogin | None:
    """The login row of this session, if it still exists (one query; not on the hot path)."""
    login_id = session_login_id(request.session)
    if not login_id:
        return None
    try:
        login: AuthgearLogin = AuthgearLogin.objects.select_related("account").get(pk=login_id)
    except (AuthgearLogin.DoesNotExist, ValueError, ValidationError):
        return None  # deleted elsewhere (revoked) or a malformed id: no login
    return login


def forget_login(session: SessionBase) -> None:
    for key in SESSION_KEYS:
        session.pop(key, None)


# --- ending logins: the one owner -------------------------------------------------------------


@dataclass(frozen=True)
class EndResult:
    """What :func:`end_logins` did: logins it ended, and revocations Authgear confirmed."""

    ended: int = 0
    revoked: int = 0


def logins_of_user(user_id: Any) -> QuerySet[AuthgearLogin]:
    logins: QuerySet[AuthgearLogin] = AuthgearLogin.objects.filter(
        account__user_id=user_id
    ).select_related("account")
    return logins


def end_logins(
    logins: Iterable[AuthgearLogin], *, reason: str, revoke: bool, end_sessions: bool
) -> EndResult:
    """End each login: optionally revoke its refresh token at Authgear, delete its row,
    optionally end its Django session, and send ``login_revoked`` once.

    Each login is ended under its row lock, with the refresh token read from the locked row,
    so a refresh running at the same moment either finishes first (and its rotated token is
    the one revoked) or finds the row gone. A login whose row is already gone was ended by
    someone else: it is skipped, with no revocation and no signal (hence "once per login").
    A provider outage never keeps the local end from happening: the row goes anyway and the
    failure is logged. ``end_sessions`` deletes the session the row points at, whatever the
    session engine; leave it off for the session of the current request (``auth.logout``
    flushes that one).
    """
    ended = revoked = 0
    for login in logins:
        with transaction.atomic():
            row = AuthgearLogin.objects.select_for_update().filter(pk=login.pk).first()
            if row is None:
                continue
            confirmed = revoke and _revoke_refresh_token(row)
            AuthgearLogin.objects.filter(pk=row.pk).delete()
        if end_sessions:
            end_session(row.session_key)
        ended += 1
        revoked += confirmed
        login_revoked.send(sender=AuthgearLogin, login=login, reason=reason, revoked=confirmed)
    return EndResult(ended=ended, revoked=revoked)


def _revoke_refresh_token(login: AuthgearLogin) -> bool:
    """Best-effort revocation at Authgear; whether Authgear confirmed it."""
    try:
        refresh_token = login.refresh_token
    except TokenDecryptionError:
        logger.warning("authgear_django: login %s has an undecryptable refresh token", login.pk)
        return False
    if not refresh_token:
        return False
    try:
        get_client().revoke(refresh_token)
    except AuthgearError as exc:
        logger.warning("authgear_django: revoking login %s failed: %s", login.pk, exc)
        return False
    return True


def end_session(session_key: str) -> None:
    """Delete a Django session by key, whatever the session engine."""
    if session_key:
        engine = import_module(conf.SESSION_ENGINE)
        engine.SessionStore(session_key=session_key).delete()


def end_login(login: AuthgearLogin, *, reason: str, revoke: bool = True) -> bool:
    """Kept for callers of the old API: :func:`end_logins` for one login, its session kept.

    Returns whether Authgear confirmed the revocation.
    """
    return end_logins([login], reason=reason, revoke=revoke, end_sessions=False).revoked > 0


def end_all_logins(user_id: Any, *, reason: str) -> int:
    """Kept for callers of the old API: revoke and end every login of a user, sessions too."""
    return end_logins(logins_of_user(user_id), reason=reason, revoke=True, end_sessions=True).ended

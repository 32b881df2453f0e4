"""What a login keeps in the session and in the database, and how a login ends.

The session never holds a token: only pending login attempts (state, nonce, PKCE verifier,
until the callback), the id of the :class:`AuthgearLogin` row and the access token's expiry
(so the refresh middleware can decide without a query), and, while a refreshed ID token waits
for its verification, when to retry it and until when the login may wait.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from authgear_django.authorization import LoginAttempt
from authgear_django.client import TokenSet
from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AuthgearError
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.signals import login_revoked

logger = logging.getLogger("authgear_django")

SESSION_ATTEMPTS_KEY = "_authgear_login_attempts"
# One compact entry per logged-in session: [login id, refresh at, access token expires at]
# (Unix seconds; ``None`` when there is nothing to refresh). The refresh middleware's hot path
# reads only this, from the session Django's auth loads anyway.
SESSION_LOGIN_KEY = "_authgear"
SESSION_REFRESH_RETRY_KEY = "_authgear_refresh_retry_at"
# While the stored ID token of a login could not be verified yet (its key could not be fetched):
# [login id, retry at, deadline] (Unix seconds). See :class:`PendingIdToken`.
SESSION_ID_TOKEN_PENDING_KEY = "_authgear_id_token_pending"  # noqa: S105 - a key name
SESSION_KEYS = (SESSION_LOGIN_KEY, SESSION_REFRESH_RETRY_KEY, SESSION_ID_TOKEN_PENDING_KEY)


def refresh_leeway(lifetime: float | None) -> float:
    """Seconds before expiry to refresh: the setting, but never more than half the lifetime,
    so that a 10-second token is refreshed once per expiry rather than on every request."""
    leeway = float(conf.AUTHGEAR_REFRESH_LEEWAY)
    if lifetime:
        leeway = min(leeway, lifetime / 2)
    return leeway


def session_login_id(session: SessionBase) -> str | None:
    state = session.get(SESSION_LOGIN_KEY)
    if isinstance(state, list) and state and isinstance(state[0], str):
        return state[0]
    return None


def session_refresh_at(session: SessionBase) -> float | None:
    state = session.get(SESSION_LOGIN_KEY)
    return _timestamp(state, 1)


def session_expires_at(session: SessionBase) -> float | None:
    return _timestamp(session.get(SESSION_LOGIN_KEY), 2)


@dataclass(frozen=True)
class PendingIdToken:
    """The login's stored ID token awaits verification (the tokens themselves are stored).

    ``retry_at``: the next attempt (after the JWKS refetch cooldown). ``deadline``: the expiry
    of the first unverified token's access token plus ``AUTHGEAR_REFRESH_GRACE``; past it the
    login is treated like one whose refresh fails (503, nothing deleted) until verified.
    """

    retry_at: float
    deadline: float


def pending_id_token(session: SessionBase, login_id: str) -> PendingIdToken | None:
    """The pending verification recorded for ``login_id``; another login's record is ignored."""
    state = session.get(SESSION_ID_TOKEN_PENDING_KEY)
    if not (isinstance(state, list) and len(state) == 3 and state[0] == login_id):
        return None
    retry_at, deadline = _timestamp(state, 1), _timestamp(state, 2)
    if retry_at is None or deadline is None:
        return None
    return PendingIdToken(retry_at=retry_at, deadline=deadline)


def mark_id_token_pending(session: SessionBase, login_id: str, pending: PendingIdToken) -> None:
    """Record (or move on) a pending verification; call :func:`bind_session` afterwards."""
    session[SESSION_ID_TOKEN_PENDING_KEY] = [login_id, pending.retry_at, pending.deadline]


def clear_pending_id_token(session: SessionBase) -> None:
    session.pop(SESSION_ID_TOKEN_PENDING_KEY, None)


def _timestamp(state: Any, index: int) -> float | None:
    if isinstance(state, list) and len(state) > index:
        value = state[index]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


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
    )
    login.store_tokens(tokens, id_token_claims=id_token_claims, now=now)
    login.save()
    clear_pending_id_token(request.session)  # a previous login's, if any
    bind_session(request.session, login)
    return login


def bind_session(session: SessionBase, login: AuthgearLogin) -> None:
    """Point the session at ``login`` and copy what the refresh middleware's hot path needs.

    Without a refresh token (no ``offline_access``) there is nothing to refresh, so no times
    are copied and the middleware never looks at this login again. While its ID token awaits
    verification, the middleware comes back at the next retry and, past the deadline, on every
    request (so that each one gets the same answer).
    """
    expires_at = login.access_token_expires_at
    expires: int | None = None
    refresh_at: int | None = None
    if login.encrypted_refresh_token and expires_at is not None:
        # whole seconds keep the session small (it is decoded on every request)
        expires = int(expires_at.timestamp())
        # rounded up: the session must not call a refresh due before the row would agree
        refresh_at = math.ceil(expires - refresh_leeway(login.access_token_lifetime))
    pending = pending_id_token(session, login.pk.hex)
    if pending is not None:
        # rounded up: a retry is never due before its time (nor the deadline before its time)
        come_back_at = math.ceil(min(pending.retry_at, pending.deadline))
        refresh_at = come_back_at if refresh_at is None else min(refresh_at, come_back_at)
    session[SESSION_LOGIN_KEY] = [login.pk.hex, refresh_at, expires]
    session.pop(SESSION_REFRESH_RETRY_KEY, None)


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


def end_login(login: AuthgearLogin, *, reason: str, revoke: bool = True) -> bool:
    """Revoke the login's refresh token at Authgear (best effort) and delete the row.

    Returns whether Authgear confirmed the revocation. A provider outage never keeps the local
    logout from happening: the row goes anyway and the failure is logged.
    """
    revoked = False
    refresh_token = None
    try:
        refresh_token = login.refresh_token if revoke else None
    except TokenDecryptionError:
        logger.warning("authgear_django: login %s has an undecryptable refresh token", login.pk)
    if refresh_token and revoke:
        try:
            get_client().revoke(refresh_token)
            revoked = True
        except AuthgearError as exc:
            logger.warning("authgear_django: revoking login %s failed: %s", login.pk, exc)
    login_pk = login.pk
    with transaction.atomic():
        AuthgearLogin.objects.filter(pk=login_pk).delete()
    login.pk = login_pk  # keep the id readable for receivers
    login_revoked.send(sender=AuthgearLogin, login=login, reason=reason, revoked=revoked)
    return revoked


def end_session(session_key: str) -> None:
    """Delete a Django session by key, whatever the session engine."""
    if session_key:
        engine = import_module(conf.SESSION_ENGINE)
        engine.SessionStore(session_key=session_key).delete()


def end_all_logins(user_id: Any, *, reason: str) -> int:
    """End every Authgear login of a user: revoke at Authgear, delete rows and their sessions."""
    logins = list(AuthgearLogin.objects.filter(account__user_id=user_id).select_related("account"))
    for login in logins:
        end_login(login, reason=reason, revoke=True)
        end_session(login.session_key)
    return len(logins)


def forget_login(session: SessionBase) -> None:
    for key in SESSION_KEYS:
        session.pop(key, None)

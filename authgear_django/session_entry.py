"""The one session entry of a logged-in Authgear session, and the one "refresh due" rule.

The session never holds a token. It holds one small list under :data:`SESSION_LOGIN_KEY`, so
that the refresh middleware's hot path answers "is a refresh due?" from the session Django's
auth loads anyway, with no query::

    [login id, refresh at, expires at]                                # no liveness check
    [login id, refresh at, expires at, None, None, None, check at]     # the usual case
    [login id, refresh at, expires at, retry at, verify at, deadline, check at]  # waiting
    [login id, refresh at, expires at, None, None, None, check at, stale at]    # and bounded

Times are Unix seconds (``None``: nothing to refresh / nothing waiting). Trailing ``None``
items are not written, so an entry without a liveness check stays three items long (the
format written before the optional items existed, which is read unchanged; an entry without
``check at`` gets its first liveness check at the next visit of the refresh path).

- ``refresh at``: when the middleware must call the refresh path (a refresh, a retry, a
  verification attempt or a liveness check is due); :func:`refresh_due` is the only rule
  reading it, so the hot path stays one comparison however many reasons there are to come back.
- ``expires at``: the access token's expiry (for the grace after a failed refresh).
- ``retry at``: after Authgear failed to refresh, no new attempt before this.
- ``verify at`` / ``deadline``: the login's stored ID token is unverified (the authority is the
  ``AuthgearLogin.id_token_unverified_since`` column; these are only the hot path's copy): the
  next verification attempt, and when the login stops being usable until it is verified.
- ``check at``: when the Authgear session must next be confirmed alive (one userinfo call,
  ``AUTHGEAR_SESSION_CHECK_INTERVAL``); ``refresh at`` is never later than it.
- ``stale at``: past this the login has gone unproven too long (no successful refresh or
  liveness check for the interval plus ``AUTHGEAR_MAX_STALENESS``): while Authgear still
  cannot answer, requests get 503 with ``Retry-After`` instead of being served. Only read on
  the refresh path (a due check or retry brings every request there), never on the hot path.

This module is Django-free and never raises on what it reads: a session is input, and a
tampered, truncated or foreign entry simply means "no login".
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from typing import Any

SESSION_LOGIN_KEY = "_authgear"

_REFRESH_AT = 1
_MAX_ITEMS = 8


@dataclass(frozen=True)
class SessionEntry:
    """A decoded session entry; see the module docstring for each field."""

    login_id: str
    refresh_at: float | None = None
    expires_at: float | None = None
    retry_at: float | None = None
    verify_at: float | None = None
    deadline: float | None = None
    check_at: float | None = None
    stale_at: float | None = None

    @property
    def id_token_unverified(self) -> bool:
        """The entry carries the hot path's copy of a pending ID token verification."""
        return self.deadline is not None

    def with_retry_at(self, retry_at: float | None) -> SessionEntry:
        """The same entry with a failed refresh's retry time. ``refresh at`` stays due, so that
        each request in between still gets an answer (usable until expiry plus grace, then not)
        without a query."""
        return replace(self, retry_at=retry_at)

    def check_due(self, now: float) -> bool:
        """Whether the Authgear session must be confirmed alive now. An entry written before
        the check existed has no ``check at``: due (the row's ``last_checked_at`` decides)."""
        return self.check_at is None or now >= self.check_at

    @property
    def legacy(self) -> bool:
        """Written before the liveness check existed (no ``check at``): with no proof of life
        planned, such a login is refreshed eagerly until its entry is rewritten."""
        return self.check_at is None

    def stale(self, now: float) -> bool:
        """Unproven for longer than the interval plus ``AUTHGEAR_MAX_STALENESS``."""
        return self.stale_at is not None and now >= self.stale_at


def encode(entry: SessionEntry) -> list[Any]:
    """The JSON-serialisable list stored in the session (trailing ``None`` items dropped)."""
    items: list[Any] = [
        entry.login_id,
        entry.refresh_at,
        entry.expires_at,
        entry.retry_at,
        entry.verify_at,
        entry.deadline,
        entry.check_at,
        entry.stale_at,
    ]
    while len(items) > 3 and items[-1] is None:
        items.pop()
    return items


def decode(raw: Any) -> SessionEntry | None:
    """The entry stored in the session, or ``None`` if there is none or it is malformed.

    Never raises. A malformed time reads as absent; a malformed login id (not a UUID, in hex
    or dashed form) makes the whole entry absent, since without it there is no login.
    """
    if not isinstance(raw, (list, tuple)) or not raw or len(raw) > _MAX_ITEMS:
        return None
    login_id = _login_id(raw[0])
    if login_id is None:
        return None
    return SessionEntry(
        login_id=login_id,
        refresh_at=_timestamp(raw, 1),
        expires_at=_timestamp(raw, 2),
        retry_at=_timestamp(raw, 3),
        verify_at=_timestamp(raw, 4),
        deadline=_timestamp(raw, 5),
        check_at=_timestamp(raw, 6),
        stale_at=_timestamp(raw, 7),
    )


def refresh_due(entry: Any, now: float) -> bool:
    """Whether the refresh path must run now: the one rule, for the stored list or a decoded
    :class:`SessionEntry`.

    On the stored list it does no more than a type check and one comparison, so that the
    middleware can call it on every request with the value straight from the session.
    """
    if type(entry) is list:  # the hot path: the value as the session returns it
        if len(entry) <= _REFRESH_AT:
            return False
        refresh_at = entry[_REFRESH_AT]
    elif isinstance(entry, SessionEntry):
        refresh_at = entry.refresh_at
    else:
        decoded = decode(entry)  # a tuple (pickling serializer) or anything else
        refresh_at = decoded.refresh_at if decoded is not None else None
    if type(refresh_at) not in (int, float):
        return False
    return bool(now >= refresh_at)  # NaN never compares true: never due


def _login_id(value: Any) -> str | None:
    """A UUID's hex form, from hex (what we write) or the dashed form (a hand-made session)."""
    if not isinstance(value, str) or len(value) > 36:
        return None
    try:
        return uuid.UUID(value).hex
    except ValueError:
        return None


def _timestamp(raw: Any, index: int) -> float | None:
    if len(raw) <= index:
        return None
    value = raw[index]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return None
    return float(value)

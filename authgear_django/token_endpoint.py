"""Sharing Authgear's token-endpoint budget: one backoff for every worker, and per-minute counts.

Authgear counts every ``/oauth2/token`` request (code exchanges and refreshes alike) against
120 per minute per client IP and 60 per minute per user, answers 429 ``x_rate_limited`` over
it, sends no ``Retry-After``, and lets nobody configure it. All the site's workers usually leave
through one IP, so one budget is shared by all of them: when one worker is told 429, the others
must stop too, or they spend what is left of the minute on 429s and the next logins fail.

So a 429 on a refresh starts a *backoff* kept in the Django cache (``AUTHGEAR_CACHE_ALIAS``):
no worker or thread calls the token endpoint for a refresh until it ends. It is exponential
with jitter: :data:`BASE_DELAY` seconds at level 1, doubling while 429s keep coming within
:data:`ESCALATION_WINDOW` seconds of the previous backoff's end, capped by
``AUTHGEAR_TOKEN_BACKOFF_MAX``, and each delay is drawn between 50 % and 100 % of its value so
that workers and sites do not come back in step. A ``Retry-After`` is honoured (up to
:data:`MAX_RETRY_AFTER`). A 429 answered to a call that was already in flight when the
backoff began neither escalates nor restarts it. A successful refresh after a backoff lowers
the level by one: the budget has refilled, the next 429 starts shorter.

Code exchanges are never held back: a person is waiting for them. Each one is counted, and
a 429 answered to one starts the backoff too (``login_flow.exchange_code``).

The counts are per minute, per event, in the same cache (for ``manage.py authgear_status``);
a broken cache never breaks a refresh (without a shared backoff, each login then waits
``AUTHGEAR_REFRESH_RETRY_INTERVAL`` after its own 429, as after any failed refresh). Use a
cache shared by all workers (Redis, Memcached, the database), not the per-process LocMemCache.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches

from authgear_django.conf import conf
from authgear_django.exceptions import ProviderRateLimited
from authgear_django.signals import token_endpoint_rate_limited

logger = logging.getLogger("authgear_django")

CACHE_PREFIX = "authgear_django:token_endpoint:"
STATE_KEY = CACHE_PREFIX + "backoff"
#: Seconds of the first backoff (before jitter).
BASE_DELAY = 5.0
#: A 429 within this many seconds of the previous backoff's end doubles the next one.
ESCALATION_WINDOW = 60.0
#: The longest ``Retry-After`` obeyed, in seconds (a broken header must not stop refreshes).
MAX_RETRY_AFTER = 3600
#: Minutes of counts kept in the cache.
RETAINED_MINUTES = 60
#: What is counted, per minute.
EVENTS = ("exchanges", "refreshes", "deferrals", "rate_limited")
_MAX_LEVEL = 16  # 5 s * 2**15 is far past any cap: no need to grow the exponent further


@dataclass(frozen=True)
class Backoff:
    """The shared backoff: no refresh calls before ``until`` (Unix seconds)."""

    level: int
    until: float
    started_at: float

    def active(self, now: float) -> bool:
        return now < self.until

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    def retry_after(self, now: float) -> int:
        """Whole seconds to wait, as an HTTP ``Retry-After`` says it (at least 1)."""
        return max(1, math.ceil(self.remaining(now)))

    def error(self, now: float) -> ProviderRateLimited:
        """What a refresh held back by this backoff reports: a 429 to wait out."""
        return ProviderRateLimited(
            "refresh: the token endpoint is backing off after a 429",
            retry_after=self.retry_after(now),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "until": self.until, "started_at": self.started_at}

    @classmethod
    def from_value(cls, value: Any) -> Backoff | None:
        """The backoff a cache value holds; ``None`` for anything malformed (never raises)."""
        if not isinstance(value, dict):
            return None
        level, until, started = value.get("level"), value.get("until"), value.get("started_at")
        if not isinstance(level, int) or isinstance(level, bool) or level < 0:
            return None
        if not (isinstance(until, (int, float)) and isinstance(started, (int, float))):
            return None
        if not (_is_time(until) and _is_time(started)):
            return None
        return cls(level=min(level, _MAX_LEVEL), until=float(until), started_at=float(started))


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Warnings:
    """When this process last logged a cache failure (at most once a minute)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cache_warned_at: float | None = None


_warnings = _Warnings()


def backoff_delay(
    level: int, *, retry_after: int | None = None, rng: random.Random | None = None
) -> float:
    """Seconds of a backoff at ``level`` (1 = first): exponential, capped, jittered to 50-100 %.

    A ``Retry-After`` is a floor (up to :data:`MAX_RETRY_AFTER`): Authgear knows best.
    """
    draw: float = (rng or random).random()
    exponent = min(max(level, 1), _MAX_LEVEL) - 1
    nominal = min(float(conf.AUTHGEAR_TOKEN_BACKOFF_MAX), BASE_DELAY * 2**exponent)
    delay = nominal * (0.5 + 0.5 * draw)
    if retry_after:
        delay = max(delay, float(min(retry_after, MAX_RETRY_AFTER)))
    return float(delay)


def current_backoff(now: float | None = None) -> Backoff | None:
    """The backoff in force now, if any: the shared one, or this process's if the cache lost it."""
    now = time.time() if now is None else now
    state = _read_state()
    return state if state is not None and state.active(now) else None


def last_backoff() -> Backoff | None:
    """The most recent backoff, ended or not, while it is still remembered (for the status)."""
    return _read_state()


def record_rate_limited(retry_after: int | None = None, *, now: float | None = None) -> Backoff:
    """A token-endpoint call was answered 429: start (or escalate) the shared backoff.

    Sends ``token_endpoint_rate_limited`` when a backoff starts or grows, not for the further
    429s of calls that were already in flight (those are only counted).
    """
    now = time.time() if now is None else now
    count("rate_limited", now=now)
    previous = _read_state()
    if previous is not None and previous.active(now):
        wanted = now + min(retry_after, MAX_RETRY_AFTER) if retry_after else previous.until
        if wanted <= previous.until:
            return previous
        extended = Backoff(level=previous.level, until=wanted, started_at=previous.started_at)
        _write_state(extended, now=now)
        _announce(extended, now)
        return extended
    escalate = previous is not None and now - previous.until <= ESCALATION_WINDOW
    level = min(previous.level + 1, _MAX_LEVEL) if escalate and previous else 1
    backoff = Backoff(
        level=level,
        until=now + backoff_delay(level, retry_after=retry_after),
        started_at=now,
    )
    if previous is None and not _add_state(backoff, now=now):
        # Another worker started it a moment ago: theirs is the one everybody follows.
        winner = _read_state()
        if winner is not None and winner.active(now):
            return winner
        _write_state(backoff, now=now)
    elif previous is not None:
        _write_state(backoff, now=now)
    _announce(backoff, now)
    return backoff


def record_refresh_succeeded(now: float | None = None) -> None:
    """A refresh went through: after a backoff, lower its level by one (the budget refilled)."""
    now = time.time() if now is None else now
    state = _read_state()
    if state is None or state.active(now) or state.level <= 0:
        return
    _write_state(
        Backoff(level=state.level - 1, until=state.until, started_at=state.started_at), now=now
    )


def count(event: str, *, now: float | None = None) -> None:
    """Add one to this minute's count of ``event`` (one of :data:`EVENTS`); never raises."""
    now = time.time() if now is None else now
    key = _count_key(event, _minute(now))
    cache = caches[conf.AUTHGEAR_CACHE_ALIAS]
    timeout = (RETAINED_MINUTES + 1) * 60
    try:
        cache.add(key, 0, timeout)
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout)
    except Exception:
        _cache_failed("count")


def minute_counts(minutes: int, *, now: float | None = None) -> list[dict[str, Any]]:
    """Counts of the last ``minutes`` minutes (this one last): ``{"minute": start, event: n}``."""
    now = time.time() if now is None else now
    minutes = max(1, min(minutes, RETAINED_MINUTES))
    current = _minute(now)
    wanted = [current - back for back in range(minutes - 1, -1, -1)]
    keys = [_count_key(event, minute) for minute in wanted for event in EVENTS]
    try:
        found = caches[conf.AUTHGEAR_CACHE_ALIAS].get_many(keys)
    except Exception:
        _cache_failed("read")
        found = {}
    rows = []
    for minute in wanted:
        row: dict[str, Any] = {"minute": minute * 60}
        for event in EVENTS:
            value = found.get(_count_key(event, minute), 0)
            row[event] = value if isinstance(value, int) and not isinstance(value, bool) else 0
        rows.append(row)
    return rows


def status(minutes: int, *, now: float | None = None) -> dict[str, Any]:
    """Everything ``authgear_status`` shows: the backoff and the counts, JSON-serialisable."""
    now = time.time() if now is None else now
    rows = minute_counts(minutes, now=now)
    state = last_backoff()
    limit = conf.AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE
    busiest = max((row["exchanges"] + row["refreshes"] for row in rows), default=0)
    return {
        "now": now,
        "backoff": None
        if state is None
        else {
            **state.as_dict(),
            "active": state.active(now),
            "remaining": round(state.remaining(now), 1),
        },
        "rate_limit_per_minute": limit,
        "busiest_minute_calls": busiest,
        "busiest_minute_percent": round(100.0 * busiest / limit, 1),
        "minutes": rows,
        "totals": {event: sum(row[event] for row in rows) for event in EVENTS},
    }


# --- plumbing ----------------------------------------------------------------------------------


def _minute(now: float) -> int:
    return int(now // 60)


def _count_key(event: str, minute: int) -> str:
    return f"{CACHE_PREFIX}count:{event}:{minute}"


def _state_timeout(backoff: Backoff, now: float) -> float:
    """Kept until the escalation window after its end has passed: then it is forgotten."""
    return max(1.0, backoff.until - now + ESCALATION_WINDOW + 1)


def _read_state() -> Backoff | None:
    """The shared backoff (``None`` when the cache cannot be read)."""
    try:
        return Backoff.from_value(caches[conf.AUTHGEAR_CACHE_ALIAS].get(STATE_KEY))
    except Exception:
        _cache_failed("read")
        return None


def _add_state(backoff: Backoff, *, now: float) -> bool:
    try:
        return bool(
            caches[conf.AUTHGEAR_CACHE_ALIAS].add(
                STATE_KEY, backoff.as_dict(), _state_timeout(backoff, now)
            )
        )
    except Exception:
        _cache_failed("write")
        return True


def _write_state(backoff: Backoff, *, now: float) -> None:
    try:
        caches[conf.AUTHGEAR_CACHE_ALIAS].set(
            STATE_KEY, backoff.as_dict(), _state_timeout(backoff, now)
        )
    except Exception:
        _cache_failed("write")


def _announce(backoff: Backoff, now: float) -> None:
    retry_after = backoff.retry_after(now)
    logger.warning(
        "authgear_django: Authgear's token endpoint answered 429: refreshes back off for %d s "
        "(level %d); code exchanges go on",
        retry_after,
        backoff.level,
    )
    token_endpoint_rate_limited.send_robust(
        sender=Backoff, retry_after=retry_after, level=backoff.level
    )


def _cache_failed(operation: str) -> None:
    """Log a cache error at most once a minute (it would otherwise be on every refresh)."""
    now = time.time()
    with _warnings.lock:
        if _warnings.cache_warned_at is not None and now - _warnings.cache_warned_at < 60:
            return
        _warnings.cache_warned_at = now
    logger.warning(
        "authgear_django: token endpoint %s in the cache failed", operation, exc_info=True
    )

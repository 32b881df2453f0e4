"""Authgear's token-endpoint rate limit, for the local provider: ``LOCAL_OP_TOKEN_RATE_LIMIT``.

Authgear counts every ``/oauth2/token`` request (code exchanges and refreshes alike) against
120 a minute per client IP and answers 429 ``{"error": "x_rate_limited"}`` over it, without
``Retry-After``. Set ``LOCAL_OP_TOKEN_RATE_LIMIT=<calls per minute per client IP>`` to get the
same answer here and watch a site back off (0 or unset: no limit).

The budget of each IP is a bucket of ``limit`` calls refilled evenly over a minute (a burst of
a whole minute's budget, then one call per 60/limit seconds), kept in this process's memory
(``runserver --noreload`` is one process). The hook is in ``testhooks.CountingTokenView``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, JsonResponse

RATE_LIMITED_BODY = {
    "error": "x_rate_limited",
    "error_description": "rate limit exceeded, please try again later.",
}
_MAX_TRACKED_IPS = 10_000  # a flood of addresses must not grow memory without bound


class TokenRateLimiter:
    """Per-IP buckets of ``limit`` calls a minute; :meth:`allow` spends one call."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (calls left, as of when)

    def allow(self, ip: str) -> bool:
        now = self.clock()
        with self._lock:
            left, since = self._buckets.get(ip, (float(self.limit), now))
            left = min(float(self.limit), left + max(0.0, now - since) * self.limit / 60.0)
            allowed = left >= 1.0
            if allowed:
                left -= 1.0
            if ip not in self._buckets and len(self._buckets) >= _MAX_TRACKED_IPS:
                self._buckets.clear()  # forgetting is generous, never a wrong 429
            self._buckets[ip] = (left, now)
            return allowed


_limiter: TokenRateLimiter | None = None
_limiter_lock = threading.Lock()


def _current_limiter() -> TokenRateLimiter | None:
    """The limiter for ``LOCAL_OP_TOKEN_RATE_LIMIT`` (rebuilt when the setting changes)."""
    global _limiter
    limit = int(getattr(settings, "LOCAL_OP_TOKEN_RATE_LIMIT", 0) or 0)
    if limit <= 0:
        return None
    with _limiter_lock:
        if _limiter is None or _limiter.limit != limit:
            _limiter = TokenRateLimiter(limit)
        return _limiter


def rate_limited_response(request: HttpRequest) -> JsonResponse | None:
    """429 ``x_rate_limited`` (no ``Retry-After``) when the client IP is over its budget."""
    limiter = _current_limiter()
    if limiter is None or limiter.allow(str(request.META.get("REMOTE_ADDR", ""))):
        return None
    response = JsonResponse(RATE_LIMITED_BODY, status=429)
    response["Cache-Control"] = "no-store"
    return response

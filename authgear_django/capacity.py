"""How many signed-in users one egress IP can carry under Authgear's token-endpoint limit.

Authgear allows 120 ``/oauth2/token`` calls a minute per client IP (code exchanges and refreshes
alike) and 60 a minute per user, and answers 429 ``x_rate_limited`` over it. All of a site's
workers usually leave through one IP, so the number of users it can keep signed in is that
budget divided by what one user costs. These pure functions (no Django) give that cost for each
way the site can run, so that the rate-limit guide's table and the load test share one model.

The model is a steady state for a user who keeps browsing (an upper bound: an idle user makes no
calls at all), with the library's rules:

- eager refresh (``AUTHGEAR_EAGER_REFRESH = True``, or lazy mode where every page calls
  ``get_access_token``): a request refreshes once the token is within the leeway
  ``min(leeway_cap, lifetime / 2)`` of its expiry, so one call every ``lifetime - leeway``;
- lazy refresh with pages that need no token: only the liveness check, every
  ``check_interval`` seconds, refreshes the token first if it is due by the same rule; a token
  that is still good at a check is used as it is, so one call every ``check_interval`` times
  the number of checks a token lasts (at least one). Without a liveness check
  (``check_interval=None``) nothing else proves a login alive, so the library refreshes eagerly;
- each login adds one code exchange (:func:`users_per_egress_ip`'s ``logins_per_user_hour``).
"""

from __future__ import annotations

import math
from fractions import Fraction

#: Authgear's token-endpoint budget per client IP and minute (not configurable there).
AUTHGEAR_LIMIT_PER_MINUTE = 120
#: Authgear's token-endpoint budget per user and minute.
AUTHGEAR_LIMIT_PER_USER_MINUTE = 60
#: ``AUTHGEAR_SESSION_CHECK_INTERVAL``'s default, seconds.
DEFAULT_CHECK_INTERVAL = 300
#: ``AUTHGEAR_REFRESH_LEEWAY``'s default, seconds.
DEFAULT_LEEWAY_CAP = 60


def _exact(value: float, name: str) -> Fraction:
    """Exact arithmetic, so that a table computed here never drifts by a rounding step."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return Fraction(value)


def refresh_period(
    lifetime: float,
    *,
    eager: bool,
    check_interval: float | None = DEFAULT_CHECK_INTERVAL,
    leeway_cap: float = DEFAULT_LEEWAY_CAP,
) -> Fraction:
    """Seconds between two refreshes of one browsing user's token.

    Lazy mode with the liveness check turned off (``check_interval=None``) is eager: the
    library has no other proof that the login is still alive (``store.refresh_is_lazy``).
    """
    life = _exact(lifetime, "lifetime")
    cap = _exact(leeway_cap, "leeway_cap")
    if life <= 0:
        raise ValueError(f"lifetime must be above 0 seconds, not {lifetime!r}")
    if cap < 0:
        raise ValueError(f"leeway_cap must be 0 or more, not {leeway_cap!r}")
    usable = life - min(cap, life / 2)  # how long a token serves before it is due
    if eager or check_interval is None:
        return usable
    interval = _exact(check_interval, "check_interval")
    if interval <= 0:
        raise ValueError(f"check_interval must be above 0 seconds, not {check_interval!r}")
    checks_per_token = max(1, math.ceil(usable / interval))
    return interval * checks_per_token


def token_calls_per_user_hour(
    lifetime: float,
    *,
    eager: bool,
    check_interval: float | None = DEFAULT_CHECK_INTERVAL,
    leeway_cap: float = DEFAULT_LEEWAY_CAP,
) -> float:
    """Refresh calls one continuously browsing user makes per hour (code exchanges excluded)."""
    period = refresh_period(
        lifetime, eager=eager, check_interval=check_interval, leeway_cap=leeway_cap
    )
    return float(3600 / period)


def users_per_egress_ip(
    lifetime: float,
    *,
    eager: bool,
    check_interval: float | None = DEFAULT_CHECK_INTERVAL,
    limit_per_minute: int = AUTHGEAR_LIMIT_PER_MINUTE,
    leeway_cap: float = DEFAULT_LEEWAY_CAP,
    logins_per_user_hour: float = 0.0,
) -> int:
    """Browsing users one egress IP keeps signed in within the budget (rounded down).

    ``logins_per_user_hour`` adds the code exchanges (one per login) to each user's cost.
    """
    if limit_per_minute <= 0:
        raise ValueError(f"limit_per_minute must be above 0, not {limit_per_minute!r}")
    logins = _exact(logins_per_user_hour, "logins_per_user_hour")
    if logins < 0:
        raise ValueError(f"logins_per_user_hour must be 0 or more, not {logins_per_user_hour!r}")
    period = refresh_period(
        lifetime, eager=eager, check_interval=check_interval, leeway_cap=leeway_cap
    )
    calls_per_hour = Fraction(3600) / period + logins
    return math.floor(Fraction(limit_per_minute * 60) / calls_per_hour)

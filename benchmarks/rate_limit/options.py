"""The rate-limit test's command line, and the token-call demand it predicts for the load.

The provider's limit defaults to a third of what eager refresh would ask of it (so eager mode
must back off, and lazy mode must stay under it); both predictions come from
:mod:`authgear_django.capacity`, the model of the rate-limit guide.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from authgear_django.capacity import token_calls_per_user_hour

from ..soak.constants import HOST
from ..soak.options import LOOPBACK_NAMES

# "ci": 20 users on 3 workers x 4 threads, 60 s of load (about 75 s wall time with start-up).
# The liveness check runs every 30 s (not 300) so that lazy mode refreshes within the run.
PROFILES: dict[str, dict[str, object]] = {
    "default": {},
    "ci": {"users": 20, "duration": 60.0, "token_lifetime": 10, "check_interval": 30},
}


@dataclass(frozen=True)
class Demand:
    """Token calls per minute the load asks for, by the capacity model (refreshes only)."""

    eager: float
    lazy: float
    limit: int  # what the provider allows per minute in this run

    @classmethod
    def of(cls, args: argparse.Namespace) -> Demand:
        def per_minute(eager: bool) -> float:
            per_hour = token_calls_per_user_hour(
                args.token_lifetime, eager=eager, check_interval=args.check_interval
            )
            return float(args.users * per_hour / 60)

        eager = per_minute(True)
        limit = args.limit if args.limit is not None else max(1, math.floor(eager / 3))
        return cls(eager=eager, lazy=per_minute(False), limit=limit)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.rate_limit",
        description="Users browsing pages that need no token while the local provider limits "
        "token calls to a third of eager refresh's demand (127.0.0.1 only).",
    )
    add = parser.add_argument
    add("--profile", choices=sorted(PROFILES), default="default", help="ci: 20 users, 60 s")
    add("--eager", action="store_true", help="run the site with AUTHGEAR_EAGER_REFRESH=true")
    add("--users", type=int, default=20, help="signed-in users (default 20)")
    add("--duration", type=float, default=90.0, help="seconds of load, logins included (90)")
    add("--interval", type=float, default=0.5, help="seconds between a user's pages (0.5)")
    add("--token-lifetime", type=int, default=10, help="access-token lifetime, s (10, >= 4)")
    add(
        "--check-interval",
        type=int,
        default=30,
        help="the site's AUTHGEAR_SESSION_CHECK_INTERVAL, seconds (default 30)",
    )
    add(
        "--limit",
        type=int,
        default=None,
        help="provider's token calls per minute (default: a third of eager refresh's demand)",
    )
    add("--ramp-up", type=float, default=5.0, help="seconds over which users log in (5)")
    add("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    add("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    add("--seed", type=int, default=None, help="random seed (only the soak users' pools use it)")
    add(
        "--postgres-url",
        default=os.environ.get("SOAK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="admin URL to create/drop the site's database (loopback only)",
    )
    add("--redis-host", default=HOST, help="Redis host (loopback only; default 127.0.0.1)")
    add("--redis-port", type=int, default=6379)
    add(
        "--redis-db",
        type=int,
        default=14,
        help="Redis DB number dedicated to this test: flushed before and after (14)",
    )
    add("--keep", action="store_true", help="keep the temporary directory (logs, provider DB)")
    profile, _rest = parser.parse_known_args(argv)
    parser.set_defaults(**PROFILES[profile.profile])
    args = parser.parse_args(argv)
    if min(args.users, args.workers, args.threads, args.check_interval) < 1:
        parser.error("--users, --workers, --threads and --check-interval must be at least 1")
    if args.duration <= 0 or args.interval <= 0 or not 0 <= args.ramp_up < args.duration:
        parser.error("--duration and --interval must be positive, --ramp-up in [0, duration)")
    if args.token_lifetime < 4:
        parser.error("--token-lifetime must be at least 4 seconds")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1 call per minute")
    if urlsplit(args.postgres_url).hostname not in LOOPBACK_NAMES:
        parser.error("--postgres-url must point at 127.0.0.1 (loopback only)")
    if args.redis_host not in LOOPBACK_NAMES:
        parser.error("--redis-host must be 127.0.0.1 (loopback only)")
    # what the soak stack and its simulated users read, fixed here: one page at a time
    args.keep_alive, args.debug, args.slow_hashes, args.break_cache = 2, False, False, False
    args.burst, args.burst_chance, args.think_max = 1, 0.0, 0.0
    return args

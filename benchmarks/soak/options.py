"""The soak test's command line: its flags, their defaults and the checks on their values.

Also where the loopback-only rule is enforced for the PostgreSQL and Redis the stack uses.
``--profile`` picks a preset of defaults (``ci``: a short run that fits a CI job); any flag given
explicitly still wins over the preset.
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

from .constants import HOST

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}

# Presets of defaults. "ci": 3 workers x 4 threads, 36 users, 35 s of load (about 6 expiry
# windows of 5 s per login with 10 s tokens), about 50 s wall time with the start-up.
PROFILES: dict[str, dict[str, object]] = {
    "default": {},
    "ci": {"workers": 3, "threads": 4, "users": 36, "duration": 35.0, "token_lifetime": 10},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description="Soak test of the example site (gunicorn, PostgreSQL, Redis) against the "
        "local OpenID provider, on 127.0.0.1 only.",
    )
    add = parser.add_argument
    add(
        "--profile",
        choices=sorted(PROFILES),
        default="default",
        help="preset of defaults: ci = 3 workers x 4 threads, 36 users, 35 s (explicit flags win)",
    )
    add("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    add("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    add("--users", type=int, default=30, help="simulated users, one login each (default 30)")
    add("--duration", type=float, default=90.0, help="seconds of load, ramp-up included (90)")
    add(
        "--token-lifetime",
        type=int,
        default=10,
        help="access-token lifetime at the provider, seconds (default 10, at least 4)",
    )
    add("--ramp-up", type=float, default=None, help="seconds over which users log in")
    add("--think-max", type=float, default=0.3, help="max think time between pages, s (0.3)")
    add("--burst", type=int, default=3, help="pages loaded at once in a burst (default 3)")
    add("--burst-chance", type=float, default=0.2, help="share of steps that are bursts (0.2)")
    add("--seed", type=int, default=None, help="random seed of the simulated users")
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
        default=15,
        help="Redis DB number dedicated to the soak test: flushed before and after (15)",
    )
    add(
        "--keep-alive",
        type=int,
        default=2,
        help="gunicorn --keep-alive, seconds (default 2, gunicorn's default)",
    )
    add("--debug", action="store_true", help="run the site with DJANGO_DEBUG=true")
    add(
        "--slow-hashes",
        action="store_true",
        help="keep the provider's PBKDF2 hashes (~0.7 s CPU per login and token request)",
    )
    add("--keep", action="store_true", help="keep the temporary directory (logs, provider DB)")
    add(
        "--break-cache",
        action="store_true",
        help="deliberately break the setup to see the soak fail: the site gets no REDIS_URL, so "
        "each gunicorn worker has its own LocMemCache and fetches discovery and JWKS itself",
    )
    profile, _rest = parser.parse_known_args(argv)
    parser.set_defaults(**PROFILES[profile.profile])
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1 or args.users < 1 or args.burst < 1:
        parser.error("--workers, --threads, --users and --burst must be at least 1")
    if args.duration <= 0 or not 0 <= args.burst_chance <= 1 or args.think_max < 0:
        parser.error("--duration must be positive, --burst-chance in [0, 1], --think-max >= 0")
    if args.token_lifetime < 4:
        parser.error("--token-lifetime must be at least 4 seconds (whole-second refresh windows)")
    if args.ramp_up is None:
        args.ramp_up = min(10.0, args.duration / 6)
    if not 0 <= args.ramp_up < args.duration:
        parser.error("--ramp-up must be in [0, duration)")
    if urlsplit(args.postgres_url).hostname not in LOOPBACK_NAMES:
        parser.error("--postgres-url must point at 127.0.0.1 (loopback only)")
    if args.redis_host not in LOOPBACK_NAMES:
        parser.error("--redis-host must be 127.0.0.1 (loopback only)")
    return args

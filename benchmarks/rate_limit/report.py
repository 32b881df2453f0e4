"""The rate-limit test's report: pages, token calls per minute, 429s, and the goals.

Goals (exit status 1 if one is missed): no 5xx and no page left without an answer; no
unexpected logout and no failed login; and once the provider has answered its first 429, the
site's token calls (answered 200 or 429 alike: Authgear counts both) stay within the limit:
``limit x minutes since the first 429 + workers x threads``. The tolerance is the calls the
site may already have in flight when that 429 lands (at most one per gunicorn thread: each
serves one request, and a request makes at most one token call before it sees the backoff).
A site that ignores the 429 keeps calling at its full demand and misses this goal.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..soak.results import Results, UserRecord
from .load import Sample
from .options import Demand

FIRST_PROBLEMS = 5  # listed per kind of problem


@dataclass(frozen=True)
class AfterFirst429:
    """Token calls from the first 429 to the end, and what the limit allows in that time."""

    since: float  # seconds after the start of the load
    seconds: float
    calls: int
    allowed: float

    @property
    def per_minute(self) -> float:
        return self.calls * 60 / self.seconds if self.seconds > 0 else float("nan")


def after_first_429(
    samples: list[Sample], *, limit: int, tolerance: int, started: float
) -> AfterFirst429 | None:
    """None when the provider never answered 429 (nothing to check)."""
    first = next((i for i, sample in enumerate(samples) if sample.rejected), None)
    if first is None or first == 0:
        return None
    # the sample before the first 429: calls counted from there include the 429'd one
    base, last = samples[first - 1], samples[-1]
    seconds = last.at - base.at
    return AfterFirst429(
        since=base.at - started,
        seconds=seconds,
        calls=last.calls - base.calls,
        allowed=limit * seconds / 60 + tolerance,
    )


def report(
    args: argparse.Namespace,
    *,
    mode: str,
    demand: Demand,
    results: Results,
    records: list[UserRecord],
    samples: list[Sample],
    started: float,
    ended: float,
) -> bool:
    """Print the figures and the goals; True when every goal is met."""
    first, last = samples[0], samples[-1]
    minutes = (last.at - first.at) / 60
    tolerance = args.workers * args.threads
    after = after_first_429(samples, limit=demand.limit, tolerance=tolerance, started=started)
    served = sum(results.status_classes.values())
    refreshes = last.refreshes - first.refreshes
    exchanges = last.exchanges - first.exchanges
    rejected = last.rejected - first.rejected
    relogins = sum(max(0, record.logins - 1) for record in records)

    print(f"\n== rate-limit test: site in {mode} mode, {args.users} users, {ended - started:.0f} s")
    print(
        f"demand by the capacity model ({args.token_lifetime} s tokens, check every "
        f"{args.check_interval} s): eager {demand.eager:.0f}/min, lazy {demand.lazy:.0f}/min "
        f"(refreshes; plus {args.users} code exchanges at login)"
    )
    print(f"provider limit: {demand.limit} token calls/min per client IP (429 x_rate_limited)")
    print(f"pages served: {served} ({dict(sorted(results.status_classes.items()))})")
    print(f"5xx: {len(results.server_errors)}, no answer: {len(results.no_response)}")
    print(f"unexpected logouts: {len(results.unexpected_logouts)} (re-logins {relogins})")
    print(f"failed logins: {len(results.failed_logins)}")
    print(
        f"token calls: {exchanges + refreshes} ({exchanges} code exchanges, {refreshes} "
        f"refreshes) = {(exchanges + refreshes) / minutes:.0f}/min, refreshes "
        f"{refreshes / minutes:.0f}/min"
    )
    print(f"429s seen (provider answers other than 200): {rejected}")
    if after is None:
        print("no 429: the site stayed within the limit")
    else:
        print(
            f"after the first 429 (t={after.since:.0f} s): {after.calls} calls in "
            f"{after.seconds:.0f} s = {after.per_minute:.0f}/min; allowed {after.allowed:.0f} "
            f"(limit {demand.limit}/min x {after.seconds / 60:.2f} min + {tolerance} in flight)"
        )

    goals = [
        ("no 5xx and every page answered", not results.server_errors and not results.no_response),
        ("no unexpected logout", not results.unexpected_logouts),
        ("every login succeeded", not results.failed_logins),
        (
            "token calls within the limit after the first 429",
            after is None or after.calls <= after.allowed,
        ),
        ("the harness itself ran cleanly", not results.client_errors and len(samples) > 2),
    ]
    print("\ngoals:")
    for name, met in goals:
        print(f"  [{'met' if met else 'MISSED'}] {name}")
    for kind in (
        "server_errors",
        "no_response",
        "unexpected_logouts",
        "failed_logins",
        "client_errors",
    ):
        items: list[str] = getattr(results, kind)
        for item in items[:FIRST_PROBLEMS]:
            print(f"  {kind}: {item}")
    return all(met for _, met in goals)

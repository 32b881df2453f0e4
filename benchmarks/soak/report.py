"""The soak report: the run's figures, each goal met or missed, and the first problems of each kind.

Goals (exit status 1 if one is missed): no 5xx and no request left without an answer; no
gunicorn worker timeout; no unexpected logout; every page shows its own user and /call-api/ gets
200 from the API; refreshes per login per expiry <= 1, where the expiry windows a login lived
through are floor(browsing time / (lifetime - leeway)); per login, refreshes <= its windows + 1
(``AuthgearLogin.refresh_count`` read from the soak database, and the provider's token records,
which must agree); no refresh of a token before its refresh point (a second refresh in one
window); discovery and JWKS each fetched at most once per cache period by all the gunicorn
workers together (the provider's counters: the cache is shared). The rules are in ``goals``;
a summary table ends the report.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

from . import probes
from .analysis import RefreshFigures, percentile, refresh_figures
from .goals import document_fetches, evaluate_goals, summary_table
from .pages import PAGES
from .results import Results, UserRecord
from .stack import Stack


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1000:.0f} ms"


def summary(values: list[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    return f"{min(values):.2f}-{max(values):.2f} {unit} (mean {statistics.fmean(values):.2f})"


def report(
    stack: Stack,
    args: argparse.Namespace,
    results: Results,
    records: list[UserRecord],
    started: float,
    ended: float,
    before: dict[str, Any],
    after: dict[str, Any],
) -> bool:
    """Print the report; whether every goal was met."""
    refreshes = refresh_figures(stack, args, records, before, after)
    incidents = probes.worker_incidents(stack)
    logged_in = sum(1 for record in records if record.logged_in)
    fetches = document_fetches(
        after,
        span=time.time() - (stack.site_started or started),
        discovery_ttl=float(stack.site_cache["discovery_ttl"]),
        jwks_ttl=float(stack.site_cache["jwks_ttl"]),
    )
    print_figures(stack, args, results, ended - started, logged_in, refreshes, incidents)
    print(
        f"documents    discovery fetched {fetches.discovery} time(s), JWKS {fetches.jwks} "
        f"time(s) by {args.workers} workers (provider's counters since it started; site cache "
        f"{stack.site_cache['backend']})"
    )
    goals = evaluate_goals(
        users=args.users,
        logged_in=logged_in,
        results=results,
        refreshes=refreshes,
        incidents=incidents,
        fetches=fetches,
    )
    print()
    for name, met in goals:
        print(f"{'ok  ' if met else 'FAIL'}  {name}")
    for title, items in (
        ("failed logins", results.failed_logins),
        ("5xx", results.server_errors),
        ("no answer", results.no_response),
        ("connection resets retried", results.retried),
        ("gunicorn incidents", incidents),
        ("unexpected logouts", results.unexpected_logouts),
        ("other redirects", results.other_redirects),
        ("wrong content", results.wrong_content),
        ("API not ok", results.api_not_ok),
        ("early refreshes", refreshes.early),
        ("over the per-login bound", refreshes.over_bound),
        ("site/provider mismatch", refreshes.mismatched),
        ("script errors", results.client_errors),
    ):
        if items:
            print(f"\n{title} ({len(items)}), first ones:")
            for item in items[:8]:
                print(f"  {item}")
    print("\n=== summary ===")
    for line in summary_table(results=results, refreshes=refreshes, fetches=fetches):
        print(line)
    return all(met for _name, met in goals)


def print_figures(
    stack: Stack,
    args: argparse.Namespace,
    results: Results,
    elapsed: float,
    logged_in: int,
    refreshes: RefreshFigures,
    incidents: list[str],
) -> None:
    """The figures of the run: setup, load, logins, requests, latency, refreshes."""
    served = len(results.latencies)
    by_worker = probes.access_log_by_worker(stack)
    logins, window = refreshes.logins, refreshes.window
    print()
    print("=== soak results ===")
    print(
        f"setup        gunicorn {args.workers} workers x {args.threads} threads; PostgreSQL "
        f"{stack.database}; "
        + (
            "per-process LocMemCache (--break-cache: a deliberate break); "
            if args.break_cache
            else f"Redis DB {args.redis_db} ({stack.redis_keys()} keys at the end); "
        )
        + f"access tokens {args.token_lifetime} s, leeway min(60 s, {args.token_lifetime} s / 2) = "
        f"{refreshes.leeway:g} s, rotation on"
    )
    print(
        f"load         {args.users} users for {elapsed:.0f} s (ramp-up {args.ramp_up:.0f} s), "
        f"think 0-{args.think_max * 1000:.0f} ms, {results.bursts} bursts of {args.burst} "
        f"pages at once"
    )
    print(
        f"logins       {logged_in}/{args.users} ({refreshes.code_ok} code exchanges ok, "
        f"{refreshes.code_errors} failed); responses "
        + ", ".join(f"{k} {v}" for k, v in sorted(results.login_status_classes.items()))
        + f"; login flow p50 {ms(percentile(results.login_durations, 0.5))}, "
        f"p95 {ms(percentile(results.login_durations, 0.95))}"
    )
    print(
        f"requests     {served} pages served ({served / elapsed:.1f}/s): "
        + ", ".join(f"{key} {value}" for key, value in sorted(results.status_classes.items()))
        + f"; {len(results.no_response)} without an answer; "
        f"{results.connection_retries} connection resets retried once"
    )
    if by_worker:
        print(
            "workers      requests per gunicorn worker (access log, logins included): "
            + ", ".join(str(count) for _pid, count in by_worker.most_common())
            + f"; worker timeouts/restarts: {len(incidents)}"
        )
    print(
        f"latency      p50 {ms(percentile(results.latencies, 0.5))}, "
        f"p95 {ms(percentile(results.latencies, 0.95))}, "
        f"p99 {ms(percentile(results.latencies, 0.99))}, "
        f"max {ms(max(results.latencies, default=math.nan))}"
    )
    for page in PAGES:
        values = results.latencies_by_page.get(page, [])
        print(
            f"             {page:<11} {len(values):5d} pages, p50 {ms(percentile(values, 0.5))},"
            f" p95 {ms(percentile(values, 0.95))}"
        )
    print(
        f"unexpected logouts {len(results.unexpected_logouts)}; wrong user/content "
        f"{len(results.wrong_content)}; /call-api/ answers other than 200 "
        f"{len(results.api_not_ok)}"
    )
    print(
        f"refreshes    {refreshes.calls} refresh_token calls at the provider ({refreshes.ok} ok, "
        f"{refreshes.errors} failed); site refresh_count total "
        f"{sum(login.site_refreshes or 0 for login in logins)}; revocations "
        f"{refreshes.revocations}"
    )
    print(f"             time between two refreshes of a login: {summary(refreshes.intervals)}")
    print(
        f"per expiry   {refreshes.per_expiry:.3f} refreshes per login per expiry = "
        f"{refreshes.calls} refresh calls / {refreshes.windows} expiry windows\n"
        f"             expiry windows = sum over logins of floor(T / (lifetime - leeway)) = "
        f"floor(T / {window:g} s),\n"
        f"             T = a login's browsing time, from sending the login form to its last "
        f"request: {summary(refreshes.browsing)}.\n"
        f"             A token is refreshed at the first request after its expiry - leeway, so "
        f"windows last a\n"
        f"             little over {window:g} s and a correct site scores a little under 1."
    )
    intervals, early = refreshes.intervals, refreshes.early
    print(
        f"per login    refreshes <= its windows + 1: "
        f"{len(logins) - len(refreshes.over_bound)}/{len(logins)};"
        f" site refresh_count = provider's count: "
        f"{len(logins) - len(refreshes.mismatched)}/{len(logins)}\n"
        f"             refreshes that replaced a token which had reached expiry - leeway (from the"
        f" provider's\n"
        f"             token records; an early one would be a second refresh in one window): "
        f"{len(intervals) - len(early)}/{len(intervals)}"
    )

"""Refreshes per login and expiry window, from the provider's and the site's own records.

The expiry windows a login lived through are floor(browsing time / (lifetime - leeway)); the
provider's refresh-token chain of each login gives its refreshes and when each token was
replaced, the site's ``AuthgearLogin.refresh_count`` must give the same count. Also the grant
counters of the provider's ``/_test/stats`` and the percentile used for latencies.
:func:`login_refreshes` and :func:`figures_from` do the arithmetic without I/O (unit-tested in
``tests/test_soak_goals.py``); the other two read the run's records first.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from . import probes
from .results import UserRecord
from .stack import Stack


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def grants(stats: dict[str, Any], grant_type: str) -> tuple[int, int]:
    """(ok, error) token requests of this grant type in the provider's counters."""
    counts = stats.get("token", {}).get(grant_type, {})
    return int(counts.get("ok", 0)), int(counts.get("error", 0))


@dataclass
class LoginRefreshes:
    email: str
    browsing: float  # seconds from sending the login form to the start of the last request
    provider_refreshes: int  # refresh grants of this login's chain at the provider
    site_refreshes: int | None  # AuthgearLogin.refresh_count
    windows: int  # floor(browsing / (lifetime - leeway)): expiry windows lived through
    intervals: list[float]  # seconds between consecutive refreshes, at the provider
    early: list[str]  # refreshes of a token not yet due


def analyse_refreshes(
    stack: Stack, args: argparse.Namespace, records: list[UserRecord]
) -> tuple[list[LoginRefreshes], float]:
    """Each login's refreshes, and the leeway of the site's refresh point (records of the run)."""
    site_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in probes.site_logins(stack):
        site_rows[row["email"]].append(row)
    return login_refreshes(
        records, probes.provider_refresh_tokens(stack), site_rows, args.token_lifetime
    )


def refresh_leeway(token_lifetime: float) -> float:
    """The site's refresh leeway for this lifetime: ``authgear_django.store.refresh_leeway``."""
    return min(60.0, token_lifetime / 2)


def login_refreshes(
    records: list[UserRecord],
    chains: dict[str, list[tuple[float, float | None]]],
    site_rows: dict[str, list[dict[str, Any]]],
    token_lifetime: float,
) -> tuple[list[LoginRefreshes], float]:
    """Each login's refreshes from the provider's token chains and the site's login rows.

    ``chains``: per email, (created, revoked) of each refresh token, oldest first;
    ``site_rows``: per email, the site's login rows (``refresh_count``). No I/O here.
    """
    lifetime = float(token_lifetime)
    leeway = refresh_leeway(lifetime)
    window = lifetime - leeway
    logins = []
    for record in records:
        if record.login_submitted is None or record.last_request is None:
            continue
        end = record.last_request
        browsing = end - record.login_submitted
        chain = [created for created, _revoked in chains.get(record.email, [])]
        early = []
        for k, (created, replaced) in enumerate(itertools.pairwise(chain)):
            # The site stores each token a moment after the provider issued it, so the site's
            # refresh point (its expiry - leeway, compared exactly under the row lock) is
            # never earlier than this one: a refresh before it is a second one in a window.
            due = created + window
            if replaced < due:
                early.append(f"token {k} replaced {due - replaced:.2f} s before its refresh point")
        rows = site_rows.get(record.email, [])
        # one login per user, unless it was logged out (then the run fails anyway)
        logins.append(
            LoginRefreshes(
                email=record.email,
                browsing=browsing,
                provider_refreshes=max(0, len(chain) - record.logins),
                site_refreshes=sum(row["refresh_count"] for row in rows) if rows else None,
                windows=math.floor(browsing / window),
                intervals=[b - a for a, b in itertools.pairwise(chain)],
                early=early,
            )
        )
    return logins, leeway


@dataclass
class RefreshFigures:
    """The run's refresh figures, and the logins that break a per-login rule."""

    logins: list[LoginRefreshes]
    leeway: float
    window: float  # lifetime - leeway
    ok: int  # refresh_token grants at the provider during the load
    errors: int
    code_ok: int  # authorization_code grants (logins) during the load
    code_errors: int
    revocations: int
    windows: int  # expiry windows, summed over the logins
    per_expiry: float  # refresh calls per login per expiry window
    browsing: list[float]
    intervals: list[float]
    early: list[str]  # refreshes before their token was due
    over_bound: list[str]  # logins with more refreshes than their windows + 1
    mismatched: list[str]  # logins whose site and provider counts differ

    @property
    def calls(self) -> int:
        return self.ok + self.errors


def refresh_figures(
    stack: Stack,
    args: argparse.Namespace,
    records: list[UserRecord],
    before: dict[str, Any],
    after: dict[str, Any],
) -> RefreshFigures:
    """The figures between two readings of the provider's counters (before and after the load)."""
    logins, leeway = analyse_refreshes(stack, args, records)
    return figures_from(logins, leeway, args.token_lifetime, before, after)


def figures_from(
    logins: list[LoginRefreshes],
    leeway: float,
    token_lifetime: float,
    before: dict[str, Any],
    after: dict[str, Any],
) -> RefreshFigures:
    """The run's refresh figures from each login's refreshes and the provider's counters."""
    ok_before, error_before = grants(before, "refresh_token")
    ok_after, error_after = grants(after, "refresh_token")
    code_ok, code_errors = (
        a - b
        for a, b in zip(
            grants(after, "authorization_code"), grants(before, "authorization_code"), strict=True
        )
    )
    windows = sum(login.windows for login in logins)
    calls = ok_after - ok_before + error_after - error_before
    return RefreshFigures(
        logins=logins,
        leeway=leeway,
        window=token_lifetime - leeway,
        ok=ok_after - ok_before,
        errors=error_after - error_before,
        code_ok=code_ok,
        code_errors=code_errors,
        revocations=sum(after.get("revoke", {}).values()) - sum(before.get("revoke", {}).values()),
        windows=windows,
        per_expiry=calls / windows if windows else math.nan,
        browsing=[login.browsing for login in logins],
        intervals=[value for login in logins for value in login.intervals],
        early=[f"{login.email}: {item}" for login in logins for item in login.early],
        over_bound=[
            f"{login.email}: site {login.site_refreshes}, provider {login.provider_refreshes} "
            f"refreshes > {login.windows} windows + 1"
            for login in logins
            if max(login.site_refreshes or 0, login.provider_refreshes) > login.windows + 1
        ],
        mismatched=[
            f"{login.email}: site {login.site_refreshes}, provider {login.provider_refreshes}"
            for login in logins
            if login.site_refreshes != login.provider_refreshes
        ],
    )

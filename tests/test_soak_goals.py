"""The soak test's goal checks (``benchmarks/soak``): the rules that decide its exit status.

No servers: the figures a run would read from the provider, the site's database and the
simulated users are built here, and the pure functions of ``analysis``, ``goals`` and
``options`` are checked on them. A soak that cannot fail proves nothing, so most cases are
breaks that must turn a goal to FAIL.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks.soak.analysis import RefreshFigures, figures_from, login_refreshes
from benchmarks.soak.goals import (
    DocumentFetches,
    document_fetches,
    evaluate_goals,
    periods,
    summary_table,
)
from benchmarks.soak.options import parse_args
from benchmarks.soak.results import Results, UserRecord

LIFETIME = 10  # seconds: leeway 5 s, so one expiry window is 5 s
T0 = 1_800_000_000.0  # wall clock of the first login


def record(index: int, *, browsing: float = 30.0, logins: int = 1) -> UserRecord:
    return UserRecord(
        index,
        f"soak-{index}@example.com",
        login_submitted=T0,
        logged_in=T0 + 1,
        last_request=T0 + browsing,
        requests=100,
        logins=logins,
    )


def chain(*offsets: float) -> list[tuple[float, float | None]]:
    """A login's refresh tokens at the provider: token 0 at the login, then one per refresh."""
    created = [T0 + offset for offset in offsets]
    return [(at, created[k + 1] if k + 1 < len(created) else None) for k, at in enumerate(created)]


def stats(
    *, refresh_ok: int = 0, refresh_error: int = 0, codes: int = 0, fetches: Any = None
) -> dict[str, Any]:
    """The provider's ``/_test/stats`` answer (only the parts the soak reads)."""
    data: dict[str, Any] = {
        "token": {
            "authorization_code": {"ok": codes, "error": 0},
            "refresh_token": {"ok": refresh_ok, "error": refresh_error},
        },
        "revoke": {"refresh_token": 0, "access_token": 0, "unknown": 0, "error": 0},
    }
    if fetches is not None:
        data["fetches"] = fetches
    return data


def figures(
    chains: dict[str, list[tuple[float, float | None]]],
    site_counts: dict[str, int],
    records: list[UserRecord],
    refresh_calls: int,
    refresh_errors: int = 0,
) -> RefreshFigures:
    site_rows = {email: [{"email": email, "refresh_count": n}] for email, n in site_counts.items()}
    logins, leeway = login_refreshes(records, chains, site_rows, LIFETIME)
    return figures_from(
        logins,
        leeway,
        LIFETIME,
        stats(),
        stats(refresh_ok=refresh_calls, refresh_error=refresh_errors, codes=len(records)),
    )


def good_refreshes() -> RefreshFigures:
    """One login browsing 30 s (6 windows of 5 s), refreshed every 5.2 s: 5 refreshes."""
    user = record(1)
    return figures({user.email: chain(0, 5.2, 10.4, 15.6, 20.8, 26.0)}, {user.email: 5}, [user], 5)


def shared_cache_fetches() -> DocumentFetches:
    return document_fetches(stats(fetches={"discovery": 1, "jwks": 1}), 50.0, 3600, 3600)


def goals(
    *,
    results: Results | None = None,
    refreshes: RefreshFigures | None = None,
    fetches: DocumentFetches | None = None,
    logged_in: int = 1,
) -> dict[str, bool]:
    return dict(
        evaluate_goals(
            users=1,
            logged_in=logged_in,
            results=results or Results(),
            refreshes=refreshes or good_refreshes(),
            incidents=[],
            fetches=fetches or shared_cache_fetches(),
        )
    )


def failed(goal_results: dict[str, bool]) -> list[str]:
    return [name for name, met in goal_results.items() if not met]


# --- a clean run passes -------------------------------------------------------------------


def test_a_clean_run_meets_every_goal() -> None:
    refreshes = good_refreshes()
    assert refreshes.per_expiry == pytest.approx(5 / 6)
    assert refreshes.early == [] and refreshes.mismatched == [] and refreshes.over_bound == []
    assert failed(goals(refreshes=refreshes)) == []


# --- 5xx and logouts ----------------------------------------------------------------------


def test_one_5xx_while_browsing_fails_the_run() -> None:
    results = Results()
    results.status_classes["5xx"] += 1
    results.server_errors.append("soak-1@example.com /private/: HTTP 500")
    assert failed(goals(results=results)) == ["5xx responses = 0"]


def test_one_5xx_during_a_login_hop_fails_the_run() -> None:
    results = Results()
    results.login_status_classes["5xx"] += 1
    assert failed(goals(results=results)) == ["5xx responses = 0"]


def test_one_unexpected_logout_fails_the_run() -> None:
    results = Results()
    results.unexpected_logouts.append("soak-1@example.com /private/: HTTP 302 to /auth/login/")
    assert failed(goals(results=results)) == ["unexpected logouts = 0"]


def test_a_user_that_never_logged_in_fails_the_run() -> None:
    assert failed(goals(logged_in=0)) == ["every user logged in"]


# --- refreshes ----------------------------------------------------------------------------


def test_a_second_refresh_in_one_expiry_window_fails_the_run() -> None:
    """Two workers both refreshing one login: token 1 replaced 0.1 s after it was issued."""
    user = record(1)
    refreshes = figures(
        {user.email: chain(0, 5.2, 5.3, 10.5, 15.7, 20.9)}, {user.email: 5}, [user], 5
    )
    assert refreshes.early == [
        "soak-1@example.com: token 1 replaced 4.90 s before its refresh point"
    ]
    assert failed(goals(refreshes=refreshes)) == [
        "no second refresh in an expiry window (none before its token was due)"
    ]


def test_more_refresh_calls_than_expiry_windows_fails_the_run() -> None:
    """Refresh calls that reached the provider but left no token (e.g. refused, then retried)
    count too: 7 calls for 6 windows is more than one per login per expiry window."""
    refreshes = figures(
        {"soak-1@example.com": chain(0, 5.2, 10.4, 15.6, 20.8, 26.0)},
        {"soak-1@example.com": 5},
        [record(1)],
        refresh_calls=7,
    )
    assert refreshes.per_expiry == pytest.approx(7 / 6)
    assert "refreshes per login per expiry <= 1" in failed(goals(refreshes=refreshes))


def test_a_run_without_any_expiry_window_does_not_pass_the_refresh_goal() -> None:
    """Browsing shorter than one window: per-expiry is NaN, which must not count as <= 1."""
    user = record(1, browsing=3.0)
    refreshes = figures({user.email: chain(0)}, {user.email: 0}, [user], 0)
    assert math.isnan(refreshes.per_expiry)
    assert failed(goals(refreshes=refreshes)) == ["refreshes per login per expiry <= 1"]


def test_site_and_provider_refresh_counts_that_differ_fail_the_run() -> None:
    """The site's refresh_count says 4 where the provider issued 5 refresh tokens."""
    user = record(1)
    refreshes = figures(
        {user.email: chain(0, 5.2, 10.4, 15.6, 20.8, 26.0)}, {user.email: 4}, [user], 5
    )
    assert refreshes.mismatched == ["soak-1@example.com: site 4, provider 5"]
    assert failed(goals(refreshes=refreshes)) == ["site and provider refresh counts agree"]


def test_a_login_without_a_site_row_is_a_mismatch() -> None:
    user = record(1)
    refreshes = figures({user.email: chain(0, 5.2, 10.4, 15.6, 20.8, 26.0)}, {}, [user], 5)
    assert refreshes.mismatched == ["soak-1@example.com: site None, provider 5"]


def test_more_refreshes_than_windows_plus_one_breaks_the_per_login_bound() -> None:
    """8 refreshes, spaced by a full window each, in a login that lived through 3 windows."""
    user = record(1, browsing=16.0)
    offsets = [5.0 * k for k in range(9)]
    refreshes = figures({user.email: chain(*offsets)}, {user.email: 8}, [user], 8)
    assert refreshes.early == []
    assert refreshes.over_bound == [
        "soak-1@example.com: site 8, provider 8 refreshes > 3 windows + 1"
    ]
    assert "per login: refreshes <= windows elapsed + 1" in failed(goals(refreshes=refreshes))


def test_a_relogin_counts_its_new_chain_start_as_a_login_not_a_refresh() -> None:
    user = record(1, logins=2)
    refreshes = figures({user.email: chain(0, 5.2, 10.4, 15.6)}, {user.email: 2}, [user], 2)
    assert [login.provider_refreshes for login in refreshes.logins] == [2]


def test_a_refused_refresh_call_fails_the_run() -> None:
    user = record(1)
    refreshes = figures(
        {user.email: chain(0, 5.2, 10.4, 15.6, 20.8, 26.0)},
        {user.email: 5},
        [user],
        refresh_calls=5,
        refresh_errors=1,
    )
    assert "refresh calls refused by the provider = 0" in failed(goals(refreshes=refreshes))


# --- discovery and JWKS: one shared cache for all workers ---------------------------------


def test_one_fetch_of_each_document_per_cache_period_passes() -> None:
    fetches = shared_cache_fetches()
    assert (fetches.discovery, fetches.jwks) == (1, 1)
    assert (fetches.allowed_discovery, fetches.allowed_jwks) == (1, 1)
    assert fetches.discovery_ok and fetches.jwks_ok


def test_each_worker_fetching_discovery_itself_fails_the_run() -> None:
    """What a per-process cache does with 3 gunicorn workers."""
    fetches = document_fetches(stats(fetches={"discovery": 3, "jwks": 1}), 50.0, 3600, 3600)
    assert failed(goals(fetches=fetches)) == [
        "discovery fetched at most once per cache period (all workers together)"
    ]


def test_each_worker_fetching_jwks_itself_fails_the_run() -> None:
    fetches = document_fetches(stats(fetches={"discovery": 1, "jwks": 2}), 50.0, 3600, 3600)
    assert failed(goals(fetches=fetches)) == [
        "JWKS fetched at most once per cache period (all workers together)"
    ]


def test_a_provider_without_fetch_counters_fails_rather_than_passes() -> None:
    """An older provider (no ``fetches`` in /_test/stats) must not make the goal pass."""
    fetches = document_fetches(stats(), 50.0, 3600, 3600)
    assert (fetches.discovery, fetches.jwks) == (None, None)
    assert failed(goals(fetches=fetches)) == [
        "discovery fetched at most once per cache period (all workers together)",
        "JWKS fetched at most once per cache period (all workers together)",
    ]


def test_a_counter_that_is_not_a_number_is_unknown() -> None:
    fetches = document_fetches(stats(fetches={"discovery": True, "jwks": "1"}), 50.0, 3600, 3600)
    assert (fetches.discovery, fetches.jwks) == (None, None)


def test_a_short_cache_period_allows_one_fetch_per_period_the_run_overlapped() -> None:
    fetches = document_fetches(stats(fetches={"discovery": 3, "jwks": 4}), 50.0, 20, 15)
    assert (fetches.allowed_discovery, fetches.allowed_jwks) == (3, 4)
    assert fetches.discovery_ok and fetches.jwks_ok


@pytest.mark.parametrize(
    ("span", "ttl", "expected"), [(1, 3600, 1), (3600, 3600, 1), (3601, 3600, 2)]
)
def test_periods(span: float, ttl: float, expected: int) -> None:
    assert periods(span, ttl) == expected


def test_a_cache_period_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        periods(10, 0)


# --- the summary table --------------------------------------------------------------------


def test_the_summary_table_shows_each_headline_figure_with_its_verdict() -> None:
    results = Results()
    results.latencies.extend([0.05] * 120)
    results.status_classes["5xx"] += 2
    fetches = document_fetches(stats(fetches={"discovery": 3, "jwks": 1}), 50.0, 3600, 3600)
    lines = summary_table(results=results, refreshes=good_refreshes(), fetches=fetches)
    rows = {line.split("  ")[0]: " ".join(line.split()) for line in lines}
    assert rows["measure"] == "measure value goal"
    assert rows["pages served"] == "pages served 120"
    assert rows["5xx responses"] == "5xx responses 2 = 0 FAIL"
    assert rows["unexpected logouts"] == "unexpected logouts 0 = 0 ok"
    assert rows["refreshes (provider calls / site refresh_count)"].endswith(
        " 5 / 5 equal per login ok"
    )
    assert rows["refreshes per login per expiry window"].endswith(" 0.833 <= 1, none early ok")
    assert rows["discovery fetches (cache period 3600 s)"].endswith(" 3 <= 1 FAIL")
    assert rows["JWKS fetches (cache period 3600 s)"].endswith(" 1 <= 1 ok")
    assert len(lines) == 8


# --- the command line ---------------------------------------------------------------------


def test_the_ci_profile_is_a_short_run_with_several_workers_and_dozens_of_users() -> None:
    args = parse_args(["--profile", "ci"])
    assert args.workers >= 3 and args.threads >= 2
    assert args.users >= 24
    assert 30 <= args.duration <= 45
    assert args.token_lifetime == 10
    assert not args.break_cache


def test_explicit_flags_win_over_the_profile() -> None:
    args = parse_args(["--profile", "ci", "--users", "5", "--duration", "60"])
    assert (args.users, args.duration, args.workers) == (5, 60.0, 3)


def test_the_default_profile_keeps_the_long_run() -> None:
    args = parse_args([])
    assert (args.users, args.duration) == (30, 90.0)


def test_break_cache_is_a_switch_of_the_harness() -> None:
    assert parse_args(["--profile", "ci", "--break-cache"]).break_cache is True

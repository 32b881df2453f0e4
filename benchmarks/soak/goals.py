"""The soak's goals and its summary table, computed from figures only (no servers, no I/O).

Kept apart from ``report`` (which reads the stack and prints) so that the rules deciding the
exit status are unit-tested in ``tests/test_soak_goals.py``. A goal whose figure is unknown
(for example a provider without the ``fetches`` counters) is missed, never met by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .analysis import RefreshFigures
from .results import Results


@dataclass(frozen=True)
class DocumentFetches:
    """Discovery and JWKS fetches the provider counted, against what one shared cache allows.

    ``allowed_*``: one fetch per cache period of the site (its ``AUTHGEAR_*_CACHE_TTL``) that
    the run overlapped, whatever the number of gunicorn workers: with a cache shared by all
    workers the first fetch serves everybody until it expires.
    """

    discovery: int | None  # None: the provider did not report the counter
    jwks: int | None
    discovery_ttl: float
    jwks_ttl: float
    allowed_discovery: int
    allowed_jwks: int

    @property
    def discovery_ok(self) -> bool:
        return self.discovery is not None and self.discovery <= self.allowed_discovery

    @property
    def jwks_ok(self) -> bool:
        return self.jwks is not None and self.jwks <= self.allowed_jwks


def periods(span: float, ttl: float) -> int:
    """How many cache periods of ``ttl`` seconds a run of ``span`` seconds can overlap (>= 1)."""
    if ttl <= 0:
        raise ValueError("a cache period must be positive")
    return max(1, math.ceil(span / ttl))


def document_fetches(
    stats: dict[str, Any], span: float, discovery_ttl: float, jwks_ttl: float
) -> DocumentFetches:
    """The fetch figures from the provider's ``/_test/stats`` read at the end of the run.

    ``span``: seconds from the start of the site to that reading; the counters are the
    provider's totals since it started, and nothing but the site fetches these documents.
    """
    fetches = stats.get("fetches")
    counts = fetches if isinstance(fetches, dict) else {}

    def count(name: str) -> int | None:
        value = counts.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return DocumentFetches(
        discovery=count("discovery"),
        jwks=count("jwks"),
        discovery_ttl=discovery_ttl,
        jwks_ttl=jwks_ttl,
        allowed_discovery=periods(span, discovery_ttl),
        allowed_jwks=periods(span, jwks_ttl),
    )


def five_xx(results: Results) -> int:
    """5xx answers: browsing requests and every hop of the logins."""
    return results.status_classes.get("5xx", 0) + results.login_status_classes.get("5xx", 0)


def evaluate_goals(
    *,
    users: int,
    logged_in: int,
    results: Results,
    refreshes: RefreshFigures,
    incidents: list[str],
    fetches: DocumentFetches,
) -> list[tuple[str, bool]]:
    """Each goal's name and whether it was met; the run passes only if all were."""
    return [
        ("every user logged in", logged_in == users and not results.failed_logins),
        ("5xx responses = 0", five_xx(results) == 0 and not results.server_errors),
        ("requests without an answer = 0", not results.no_response),
        ("no gunicorn worker timeout or restart", not incidents),
        ("unexpected logouts = 0", not results.unexpected_logouts),
        ("every page showed its own user", not results.wrong_content),
        ("/call-api/: the API accepted the token", not results.api_not_ok),
        ("refresh calls refused by the provider = 0", refreshes.errors == 0),
        # NaN (no expiry window lived through) is not a pass: the run proved nothing
        ("refreshes per login per expiry <= 1", refreshes.per_expiry <= 1),
        (
            "no second refresh in an expiry window (none before its token was due)",
            not refreshes.early,
        ),
        ("per login: refreshes <= windows elapsed + 1", not refreshes.over_bound),
        ("site and provider refresh counts agree", not refreshes.mismatched),
        (
            "discovery fetched at most once per cache period (all workers together)",
            fetches.discovery_ok,
        ),
        ("JWKS fetched at most once per cache period (all workers together)", fetches.jwks_ok),
        ("no error in the soak script", not results.client_errors),
    ]


def summary_table(
    *,
    results: Results,
    refreshes: RefreshFigures,
    fetches: DocumentFetches,
) -> list[str]:
    """The headline figures, each with its goal and verdict, as aligned text lines."""
    site_refreshes = sum(login.site_refreshes or 0 for login in refreshes.logins)

    def fetch_row(
        name: str, count: int | None, allowed: int, ttl: float, ok: bool
    ) -> tuple[str, ...]:
        return (
            f"{name} fetches (cache period {ttl:g} s)",
            "unknown" if count is None else str(count),
            f"<= {allowed}",
            "ok" if ok else "FAIL",
        )

    rows: list[tuple[str, ...]] = [
        ("measure", "value", "goal", ""),
        ("pages served", str(len(results.latencies)), "", ""),
        ("5xx responses", str(five_xx(results)), "= 0", _verdict(five_xx(results) == 0)),
        (
            "unexpected logouts",
            str(len(results.unexpected_logouts)),
            "= 0",
            _verdict(not results.unexpected_logouts),
        ),
        (
            "refreshes (provider calls / site refresh_count)",
            f"{refreshes.calls} / {site_refreshes}",
            "equal per login",
            _verdict(not refreshes.mismatched and refreshes.errors == 0),
        ),
        (
            "refreshes per login per expiry window",
            "n/a" if math.isnan(refreshes.per_expiry) else f"{refreshes.per_expiry:.3f}",
            "<= 1, none early",
            _verdict(
                refreshes.per_expiry <= 1 and not refreshes.early and not refreshes.over_bound
            ),
        ),
        fetch_row(
            "discovery",
            fetches.discovery,
            fetches.allowed_discovery,
            fetches.discovery_ttl,
            fetches.discovery_ok,
        ),
        fetch_row("JWKS", fetches.jwks, fetches.allowed_jwks, fetches.jwks_ttl, fetches.jwks_ok),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _verdict(met: bool) -> str:
    return "ok" if met else "FAIL"

"""``manage.py authgear_status``: how close is the site to Authgear's token-endpoint limit?

Authgear allows 120 ``/oauth2/token`` calls a minute per client IP (code exchanges and
refreshes alike) and answers 429 over it. This prints, from the shared cache, the calls of
the last minutes, the refreshes deferred while backing off, the 429s, and the backoff in force.
``--fail-above PERCENT`` exits 1 when the busiest of those minutes used more than that share of
``AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE`` (or when a backoff is in force), for monitoring.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from authgear_django.management import positive_int
from authgear_django.token_endpoint import RETAINED_MINUTES, status


def _percent(value: str) -> float:
    """``argparse`` type: a percentage above 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} must be a percentage above 0")
    return number


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%H:%M:%S")


class Command(BaseCommand):
    help = (
        "Show Authgear token-endpoint use from the shared cache: calls per minute, refreshes "
        "deferred, 429s and the current backoff. --fail-above PERCENT exits 1 for monitoring."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=positive_int,
            default=5,
            metavar="N",
            help=f"How many recent minutes to show (default 5, at most {RETAINED_MINUTES}).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--fail-above",
            type=_percent,
            metavar="PERCENT",
            help="Exit 1 when the busiest minute used more than PERCENT of "
            "AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE, or when refreshes are backing off.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = min(int(options["minutes"]), RETAINED_MINUTES)
        report = status(minutes)
        fail_above: float | None = options["fail_above"]
        problem = self._problem(report, fail_above) if fail_above is not None else None
        if options["json"]:
            self.stdout.write(json.dumps({**report, "problem": problem}, sort_keys=True))
        else:
            self._print(report)
        if problem is not None:
            raise CommandError(problem, returncode=1)

    @staticmethod
    def _problem(report: dict[str, Any], fail_above: float) -> str | None:
        backoff = report["backoff"]
        if backoff is not None and backoff["active"]:
            return (
                f"refreshes are backing off after a 429 for {backoff['remaining']:.0f} s more "
                f"(level {backoff['level']})"
            )
        if report["busiest_minute_percent"] > fail_above:
            return (
                f"{report['busiest_minute_calls']} token calls in one minute: "
                f"{report['busiest_minute_percent']:g}% of {report['rate_limit_per_minute']}, "
                f"above {fail_above:g}%"
            )
        return None

    def _print(self, report: dict[str, Any]) -> None:
        backoff = report["backoff"]
        if backoff is None:
            self.stdout.write("Backoff: none")
        elif backoff["active"]:
            self.stdout.write(
                f"Backoff: ACTIVE until {_clock(backoff['until'])} UTC "
                f"({backoff['remaining']:.0f} s more), level {backoff['level']}"
            )
        else:
            self.stdout.write(
                f"Backoff: ended at {_clock(backoff['until'])} UTC, level {backoff['level']}"
            )
        self.stdout.write(
            f"Busiest minute: {report['busiest_minute_calls']} token calls, "
            f"{report['busiest_minute_percent']:g}% of {report['rate_limit_per_minute']}/min"
        )
        self.stdout.write(
            f"{'minute (UTC)':<13}{'exchanges':>10}{'refreshes':>10}{'deferred':>10}{'429s':>6}"
        )
        for row in report["minutes"]:
            self.stdout.write(
                f"{_clock(row['minute'])[:5]:<13}{row['exchanges']:>10}{row['refreshes']:>10}"
                f"{row['deferrals']:>10}{row['rate_limited']:>6}"
            )
        totals = report["totals"]
        self.stdout.write(
            f"{'total':<13}{totals['exchanges']:>10}{totals['refreshes']:>10}"
            f"{totals['deferrals']:>10}{totals['rate_limited']:>6}"
        )

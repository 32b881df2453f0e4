"""``manage.py authgear_status``: token-endpoint use, 429s and the backoff, for people and
for monitoring (``--json``, ``--fail-above``).

The counts come from real logins and refreshes against the fake Authgear (shared cache).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from tests.command_helpers import log_in, run
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db

RATE_LIMITED = json.dumps({"error": "x_rate_limited"})


@pytest.fixture
def rate_limited(clock: Any, fake_authgear: FakeAuthgear) -> tuple[LoginFlow, LoginFlow]:
    """Two logins (2 exchanges); 29.5 min later the first refresh gets 429 (a backoff starts)
    and the second login's refresh is deferred."""
    first, second = log_in(fake_authgear, FakeUser()), log_in(fake_authgear, FakeUser())
    clock.shift(1800 - 30)
    fake_authgear.fail("refresh", status=429, body=RATE_LIMITED, content_type="application/json")
    first.client.get("/private/")
    second.client.get("/private/")
    return first, second


def failure(*args: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        run("authgear_status", *args)
    return info.value


def test_text_shows_the_backoff_and_the_counts_per_minute(rate_limited: Any) -> None:
    out, _ = run("authgear_status", "--minutes", "60")
    lines = out.splitlines()
    assert lines[0].startswith("Backoff: ACTIVE until ") and lines[0].endswith(", level 1")
    assert lines[1] == "Busiest minute: 2 token calls, 1.7% of 120/min"
    assert lines[2].split() == ["minute", "(UTC)", "exchanges", "refreshes", "deferred", "429s"]
    rows = [line.split()[1:] for line in lines[3:-1]]
    assert len(rows) == 60
    assert ["2", "0", "0", "0"] in rows  # the minute of the two logins
    assert rows[-1] == ["0", "1", "1", "1"]  # this minute: one refresh, 429, one deferred
    assert lines[-1].split() == ["total", "2", "1", "1", "1"]


def test_json_has_the_same_figures(rate_limited: Any) -> None:
    out, _ = run("authgear_status", "--json", "--minutes", "2")
    report = json.loads(out)
    assert report["backoff"]["active"] is True and report["backoff"]["level"] == 1
    assert 0 < report["backoff"]["remaining"] <= 5
    assert len(report["minutes"]) == 2  # the logins' minute is older: not counted
    assert report["totals"] == {"exchanges": 0, "refreshes": 1, "deferrals": 1, "rate_limited": 1}
    assert report["problem"] is None  # no --fail-above asked


def test_fail_above_exits_1_during_a_backoff(rate_limited: Any) -> None:
    error = failure("--fail-above", "90")
    assert error.returncode == 1
    assert "backing off after a 429" in str(error) and "level 1" in str(error)


@override_settings(AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE=4)
def test_fail_above_measures_the_busiest_minute_against_the_limit(
    rate_limited: Any, clock: Any
) -> None:
    clock.shift(6)  # the backoff (at most 5 s) is over
    out, _ = run("authgear_status", "--minutes", "60", "--fail-above", "50")
    assert "Backoff: ended at " in out and "2 token calls, 50% of 4/min" in out
    error = failure("--minutes", "60", "--fail-above", "49.5", "--json")
    assert error.returncode == 1
    assert str(error) == "2 token calls in one minute: 50% of 4, above 49.5%"


def test_nothing_happened_yet(fake_authgear: FakeAuthgear) -> None:
    out, _ = run("authgear_status", "--fail-above", "1")
    assert out.splitlines()[0] == "Backoff: none"
    assert out.splitlines()[-1].split() == ["total", "0", "0", "0", "0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--minutes", "0"], "argument --minutes: '0' must be at least 1"),
        (["--fail-above", "-3"], "argument --fail-above: '-3' must be a percentage above 0"),
        (["--fail-above", "x"], "argument --fail-above: 'x' is not a number"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    assert message in str(failure(*args))

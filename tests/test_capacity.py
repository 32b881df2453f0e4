"""The capacity model behind the rate-limit guide: token calls per user and users per egress IP.

Expected values are worked out by hand from the library's rules (leeway ``min(60, lifetime/2)``,
one liveness check every ``AUTHGEAR_SESSION_CHECK_INTERVAL``), not recomputed with the code.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from authgear_django.capacity import (
    refresh_period,
    token_calls_per_user_hour,
    users_per_egress_ip,
)
from tests.test_core_is_django_free import BLOCK_DJANGO


@pytest.mark.parametrize(
    ("lifetime", "calls"),
    [
        (10, 720.0),  # leeway 5 s: a refresh every 5 s
        (300, 15.0),  # leeway 60 s: every 240 s
        (1800, 3600 / 1740),  # leeway 60 s: every 1740 s
    ],
)
def test_eager_refreshes_once_per_lifetime_minus_leeway(lifetime: int, calls: float) -> None:
    assert token_calls_per_user_hour(lifetime, eager=True) == pytest.approx(calls)


@pytest.mark.parametrize(
    ("lifetime", "calls"),
    [
        (10, 12.0),  # due at every 300 s check
        (300, 12.0),  # due after 240 s, so at every check
        (1800, 2.0),  # lasts 1740 s: five checks use it, the sixth (1800 s) refreshes
    ],
)
def test_lazy_refreshes_only_at_the_liveness_checks(lifetime: int, calls: float) -> None:
    assert token_calls_per_user_hour(lifetime, eager=False) == pytest.approx(calls)


def test_lazy_follows_the_check_interval() -> None:
    assert token_calls_per_user_hour(10, eager=False, check_interval=30) == pytest.approx(120.0)
    assert token_calls_per_user_hour(10, eager=False, check_interval=900) == pytest.approx(4.0)


def test_lazy_without_liveness_check_is_eager() -> None:
    """The library refreshes eagerly when no check proves the login alive."""
    assert token_calls_per_user_hour(10, eager=False, check_interval=None) == pytest.approx(720.0)
    assert users_per_egress_ip(1800, eager=False, check_interval=None) == 3480


@pytest.mark.parametrize("lifetime", [4, 10, 60, 119, 120, 121, 300, 1800, 3600, 86400])
@pytest.mark.parametrize("check_interval", [30, 300, 1000])
def test_lazy_never_costs_more_than_eager(lifetime: int, check_interval: int) -> None:
    lazy = token_calls_per_user_hour(lifetime, eager=False, check_interval=check_interval)
    eager = token_calls_per_user_hour(lifetime, eager=True, check_interval=check_interval)
    assert lazy <= eager


def test_leeway_cap_zero_refreshes_at_expiry() -> None:
    assert refresh_period(1800, eager=True, leeway_cap=0) == 1800


@pytest.mark.parametrize(
    ("lifetime", "eager", "users"),
    [
        (10, True, 10),  # 7200 calls an hour / 720
        (10, False, 600),  # 7200 / 12
        (300, True, 480),  # 7200 / 15
        (1800, True, 3480),  # 7200 / (3600/1740): exactly 3480, not 3479 by a rounding error
        (1800, False, 3600),  # 7200 / 2
    ],
)
def test_users_per_egress_ip_at_authgears_limit(lifetime: int, eager: bool, users: int) -> None:
    assert users_per_egress_ip(lifetime, eager=eager) == users


def test_users_per_egress_ip_counts_logins_and_other_limits() -> None:
    # 2 refreshes + 2 code exchanges an hour: 7200 / 4
    assert users_per_egress_ip(1800, eager=False, logins_per_user_hour=2) == 1800
    # a third of the eager demand of 20 users with 10 s tokens (the load test's limit): 80/min
    assert users_per_egress_ip(10, eager=True, limit_per_minute=80) == 6


@pytest.mark.parametrize(
    "call",
    [
        lambda: token_calls_per_user_hour(0, eager=True),
        lambda: token_calls_per_user_hour(float("nan"), eager=True),
        lambda: token_calls_per_user_hour(10, eager=True, leeway_cap=-1),
        lambda: token_calls_per_user_hour(10, eager=False, check_interval=0),
        lambda: users_per_egress_ip(10, eager=True, limit_per_minute=0),
        lambda: users_per_egress_ip(10, eager=True, logins_per_user_hour=-1),
    ],
)
def test_nonsense_inputs_are_refused(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_capacity_imports_no_django() -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", BLOCK_DJANGO, "authgear_django.capacity"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

"""Authgear's token-endpoint limit (120/min per client IP, 429 ``x_rate_limited``, no
``Retry-After``): one shared backoff for every worker, refreshes that wait, exchanges that don't.

Time is controlled with time-machine (the fake Authgear and our code read the same clock); a
"second process" is the same cache with this process's memory forgotten.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings

from authgear_django import token_endpoint
from authgear_django.api import (
    NoAccessToken,
    TokenEndpointBackingOff,
    get_access_token,
    retry_later_response,
)
from authgear_django.client import reset_process_memory
from authgear_django.models import AuthgearLogin
from authgear_django.signals import token_endpoint_rate_limited
from tests.conftest import CLOCK_START, LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager_refresh(settings: Any) -> None:
    """These tests are about eager refreshes (before expiry, on any request): the setting
    that keeps them (lazy refreshes: tests/test_refresh_lazy.py)."""
    settings.AUTHGEAR_EAGER_REFRESH = True


RATE_LIMITED = json.dumps({"error": "x_rate_limited", "error_description": "rate limit exceeded"})


def log_in(fake: FakeAuthgear, user: FakeUser | None = None) -> LoginFlow:
    flow = LoginFlow(Client(), fake)
    assert flow.login(user or FakeUser()).status_code == 302
    return flow


def answer_429(fake: FakeAuthgear, *, retry_after: str | None = None) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    fake.fail(
        "refresh", status=429, body=RATE_LIMITED, content_type="application/json", headers=headers
    )


def other_process() -> None:
    """What a worker process that never saw the 429 knows: only the shared cache (the backoff
    is kept nowhere else; the client's per-process copies of discovery and keys go too)."""
    reset_process_memory()


def request_of(flow: LoginFlow) -> Any:
    request = RequestFactory().get("/")
    request.session = flow.client.session
    return request


@pytest.fixture
def two_logins(clock: Any, fake_authgear: FakeAuthgear) -> tuple[LoginFlow, LoginFlow]:
    """Two browsers whose 1800 s tokens are due for a refresh (30 s before expiry)."""
    first, second = log_in(fake_authgear), log_in(fake_authgear)
    clock.shift(1800 - 30)
    return first, second


def test_a_429_on_a_refresh_stops_every_process_from_refreshing(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear
) -> None:
    first, second = two_logins
    answer_429(fake_authgear)
    assert first.client.get("/private/").status_code == 200  # token still valid: signed in
    assert fake_authgear.calls["refresh"] == 1
    backoff = token_endpoint.current_backoff()
    assert backoff is not None and backoff.level == 1

    other_process()
    fake_authgear.heal()
    assert second.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 1  # the other process saw the backoff: no call
    assert token_endpoint.current_backoff() == backoff


def test_code_exchanges_go_through_during_the_backoff(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear
) -> None:
    answer_429(fake_authgear)
    two_logins[0].client.get("/private/")
    assert token_endpoint.current_backoff() is not None
    exchanges = fake_authgear.calls["token"]
    newcomer = log_in(fake_authgear)
    assert fake_authgear.calls["token"] == exchanges + 1
    assert newcomer.client.get("/private/").status_code == 200


def test_a_valid_token_stays_signed_in_without_any_call_during_the_backoff(
    two_logins: tuple[LoginFlow, LoginFlow],
    fake_authgear: FakeAuthgear,
    clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = two_logins
    answer_429(fake_authgear, retry_after="25")  # the backoff outlasts the loop below
    first.client.get("/private/")
    fake_authgear.heal()
    calls = sum(fake_authgear.calls.values())
    with caplog.at_level(logging.INFO, logger="authgear_django"):
        for _ in range(20):
            clock.shift(1)
            assert second.client.get("/private/").status_code == 200
    assert sum(fake_authgear.calls.values()) == calls
    assert AuthgearLogin.objects.count() == 2
    deferred = [r for r in caplog.records if "refresh deferred" in r.getMessage()]
    assert deferred and all(r.levelno == logging.INFO for r in deferred)
    assert sum(row["deferrals"] for row in token_endpoint.minute_counts(5)) >= 1


def test_an_expired_token_during_the_backoff_says_when_to_retry(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear, clock: Any
) -> None:
    first, second = two_logins
    answer_429(fake_authgear, retry_after="300")
    first.client.get("/private/")
    clock.shift(30 + 31)  # both tokens expired, past the 30 s grace; the backoff goes on
    with pytest.raises(NoAccessToken) as info:
        get_access_token(request_of(second))
    error = info.value
    assert isinstance(error, TokenEndpointBackingOff)
    assert 0 < error.retry_after <= 300 - 61
    response = retry_later_response(error)
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == str(error.retry_after)
    page = second.client.get("/private/", HTTP_ACCEPT="application/json")
    assert page.status_code == 503 and 0 < int(page["Retry-After"]) <= 300 - 61
    assert AuthgearLogin.objects.count() == 2  # nobody was logged out
    assert fake_authgear.calls["refresh"] == 1


def test_retry_after_is_honoured(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear
) -> None:
    answer_429(fake_authgear, retry_after="90")
    two_logins[0].client.get("/private/")
    backoff = token_endpoint.current_backoff()
    assert backoff is not None
    assert backoff.until - CLOCK_START - (1800 - 30) == pytest.approx(90)  # not 2.5-5 s


@override_settings(AUTHGEAR_TOKEN_BACKOFF_MAX=30)
def test_the_backoff_doubles_while_429s_keep_coming_and_is_capped(clock: Any) -> None:
    random.seed(3)
    seen: list[tuple[int, float]] = []
    now = float(CLOCK_START)
    for _ in range(6):
        backoff = token_endpoint.record_rate_limited(now=now)
        seen.append((backoff.level, backoff.until - now))
        # a call already in flight when it began: no escalation, no new backoff
        assert token_endpoint.record_rate_limited(now=now + 0.1) == backoff
        now = backoff.until + 10  # the next 429 comes 10 s after the backoff ended
    nominal = [5, 10, 20, 30, 30, 30]
    assert [level for level, _ in seen] == [1, 2, 3, 4, 5, 6]
    for (_, delay), top in zip(seen, nominal, strict=True):
        assert top / 2 <= delay <= top
    later = token_endpoint.record_rate_limited(now=now + 61)  # quiet for over a minute
    assert later.level == 1


def test_the_jitter_spreads_each_delay_over_half_to_all_of_it() -> None:
    draws = random.Random(11)
    for level, nominal in ((1, 5.0), (3, 20.0), (9, 120.0)):
        delays = [token_endpoint.backoff_delay(level, rng=draws) for _ in range(500)]
        assert min(delays) >= nominal / 2 and max(delays) <= nominal
        assert max(delays) - min(delays) > 0.4 * nominal  # really spread, not one value


def test_a_successful_refresh_after_a_backoff_lowers_its_level(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear, clock: Any
) -> None:
    first, second = two_logins
    answer_429(fake_authgear)
    first.client.get("/private/")
    # The deferred login comes back as late as it safely can: 10 s before its token's expiry
    # plus grace (1800 + 30), i.e. 45-50 s from now, within a minute of the backoff's end.
    clock.shift(45)
    first.client.get("/private/")
    assert fake_authgear.calls["refresh"] == 1
    clock.shift(6)
    first.client.get("/private/")  # one more try, 429 again: level 2
    assert fake_authgear.calls["refresh"] == 2
    state = token_endpoint.last_backoff()
    assert state is not None and state.level == 2
    fake_authgear.heal()
    clock.shift(11)
    assert second.client.get("/private/").status_code == 200  # 2 s of grace left: refreshed
    assert fake_authgear.calls["refresh"] == 3
    state = token_endpoint.last_backoff()
    assert state is not None and state.level == 1


def test_after_a_backoff_a_refresh_that_can_wait_waits(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """For a minute after a backoff the budget is short: only logins about to become unusable
    refresh; the others keep their token (valid, or within the grace) with no call."""
    first, second = two_logins
    answer_429(fake_authgear)
    first.client.get("/private/")
    fake_authgear.heal()
    clock.shift(6)  # the backoff (at most 5 s) is over
    assert second.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 1  # 54 s of use left: it waits
    clock.shift(50)  # 4 s of grace left: it may wait no longer
    assert second.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 2
    assert AuthgearLogin.objects.get(pk=second.client.session["_authgear"][0]).refresh_count == 1


def test_counts_and_the_signal(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear, clock: Any
) -> None:
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    token_endpoint_rate_limited.connect(receiver)
    try:
        first, second = two_logins
        answer_429(fake_authgear)
        first.client.get("/private/")
        first.client.get("/private/")  # waits (retry time): no call, no second signal
        second.client.get("/private/")  # deferred by the shared backoff
    finally:
        token_endpoint_rate_limited.disconnect(receiver)
    assert [(r["level"], 1 <= r["retry_after"] <= 5) for r in received] == [(1, True)]
    totals = token_endpoint.status(60)["totals"]
    assert totals == {"exchanges": 2, "refreshes": 1, "deferrals": 1, "rate_limited": 1}


def test_without_a_working_cache_each_login_waits_on_its_own(
    two_logins: tuple[LoginFlow, LoginFlow], fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Nothing is shared without a cache, but nothing breaks: each login's 429 makes it wait
    AUTHGEAR_REFRESH_RETRY_INTERVAL, as after any failed refresh, and it stays signed in."""
    first, second = two_logins
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    ):
        answer_429(fake_authgear)
        assert first.client.get("/private/").status_code == 200
        assert second.client.get("/private/").status_code == 200
        assert fake_authgear.calls["refresh"] == 2
        clock.shift(5)
        assert first.client.get("/private/").status_code == 200
        assert fake_authgear.calls["refresh"] == 2
        assert token_endpoint.current_backoff() is None
        assert token_endpoint.status(5)["totals"]["rate_limited"] == 0


# --- the scenario: many short-lived logins against a small budget ------------------------------


def test_twenty_logins_with_ten_second_tokens_against_forty_calls_a_minute(
    clock: Any, fake_authgear: FakeAuthgear
) -> None:
    """20 logins, 10 s tokens, Authgear allowing 40 token calls a minute, each browser asking
    for a page every 0.5 s of (fake) time for 60 s: nobody sees a 5xx, nobody is logged out,
    and after the first 429 at most 10 more."""
    random.seed(5)
    fake_authgear.access_token_lifetime = 10
    fake_authgear.token_rate_limit = 40
    start = float(CLOCK_START)
    browsers = [log_in(fake_authgear) for _ in range(20)]
    statuses: Counter[int] = Counter()
    for _ in range(120):
        clock.shift(0.5)
        for browser in browsers:
            statuses[browser.client.get("/private/").status_code] += 1
    answers = [status for _, _, status in fake_authgear.token_answers]
    first_429 = next(at for at, _, status in fake_authgear.token_answers if status == 429)
    after = [status for at, _, status in fake_authgear.token_answers if at >= first_429]
    per_minute_after = len(after) * 60 / (start + 60 - first_429)
    print(  # the figures of the report
        f"statuses={dict(statuses)} token answers={dict(Counter(answers))} first 429 at "
        f"+{first_429 - start:.1f} s; after it {dict(Counter(after))} = "
        f"{per_minute_after:.1f}/min; backoff={token_endpoint.last_backoff()}"
    )
    assert not [code for code in statuses if code >= 500]
    assert statuses[302] == 0 and AuthgearLogin.objects.count() == 20
    assert answers.count(429) <= 1 + 10
    # From the first 429 on, the site calls at most at Authgear's rate (before it, the bucket
    # lets the first minute's budget go in a burst, as a rate limiter of this shape does).
    assert per_minute_after <= 40


# --- the local provider's limiter (LOCAL_OP_TOKEN_RATE_LIMIT) ----------------------------------


def test_the_local_provider_limits_token_calls_per_client_ip() -> None:
    from example_project.local_provider.token_rate_limit import TokenRateLimiter

    now = [0.0]
    limiter = TokenRateLimiter(3, clock=lambda: now[0])
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("10.0.0.2")  # another client IP has its own budget
    now[0] = 19.0
    assert not limiter.allow("10.0.0.1")  # 3 a minute: one call back every 20 s
    now[0] = 20.0
    assert limiter.allow("10.0.0.1") and not limiter.allow("10.0.0.1")


def test_the_local_provider_answers_429_like_authgear() -> None:
    from example_project.local_provider.token_rate_limit import rate_limited_response

    factory = RequestFactory()
    with override_settings(LOCAL_OP_TOKEN_RATE_LIMIT=2):
        answers = [rate_limited_response(factory.post("/oauth2/token")) for _ in range(3)]
    assert answers[:2] == [None, None]
    limited = answers[2]
    assert limited is not None and limited.status_code == 429
    assert json.loads(limited.content)["error"] == "x_rate_limited"
    assert not limited.has_header("Retry-After")
    with override_settings(LOCAL_OP_TOKEN_RATE_LIMIT=0):
        assert rate_limited_response(factory.post("/oauth2/token")) is None


def test_a_429_on_a_code_exchange_is_counted_and_starts_the_backoff(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """The exchange itself reports: a refused one counts (no login was linked) and makes the
    refreshes of every worker wait, so the budget left goes to people signing in."""
    flow = LoginFlow(Client(), fake_authgear)
    url = flow.start()
    fake_authgear.fail(
        "token",
        status=429,
        body='{"error":"x_rate_limited"}',
        content_type="application/json",
        headers={"Retry-After": "20"},
    )
    response = flow.finish(fake_authgear.authorize(url, FakeUser()))
    assert response.status_code == 503 and response["Retry-After"] == "20"
    backoff = token_endpoint.current_backoff()
    assert backoff is not None and backoff.until == pytest.approx(CLOCK_START + 20)
    totals = token_endpoint.status(60)["totals"]
    assert totals["exchanges"] == 1 and totals["rate_limited"] == 1
    fake_authgear.heal()
    flow.login(FakeUser())  # exchanges are never held back
    assert token_endpoint.status(60)["totals"]["exchanges"] == 2

"""The provider goes away while a user is logged in: the site degrades, then says so clearly.

This module has its own provider + site pair, because the test stops the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import at, log_in, screenshot
from tests.e2e.servers import Stack

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.e2e

REFRESH_GRACE = 30  # AUTHGEAR_REFRESH_GRACE's default; the example settings do not set it
RETRY_INTERVAL = 10  # AUTHGEAR_REFRESH_RETRY_INTERVAL's default
POLL_INTERVAL = 1.0


@pytest.fixture(scope="module")
def doomed_stack(start_e2e_stack: Callable[[str], Stack]) -> Iterator[Stack]:
    stack = start_e2e_stack("provider-down")
    yield stack
    stack.stop()


def test_provider_down_degrades_to_a_503_page(context: BrowserContext, doomed_stack: Stack) -> None:
    stack = doomed_stack
    lifetime = stack.access_token_lifetime
    page = context.new_page()
    times = log_in(page, stack)
    # The site's copy of the token expires between these two moments.
    expires_earliest, expires_latest = times.submitted + lifetime, times.done + lifetime

    stack.op.stop()
    assert not stack.op.running

    # The token is still valid: the site works without the provider.
    response = page.goto(f"{stack.site_url}/private/")
    assert response is not None and response.status == 200
    assert at(page.url, stack.site_url, "/private/")
    assert time.time() < expires_earliest, "the test was too slow to check the valid token"

    # From the refresh leeway on, refreshing fails (connection refused): the user keeps the page
    # until the token's expiry plus the grace period, then gets the 503 page. Poll (bounded).
    deadline = expires_latest + REFRESH_GRACE + 5
    history: list[tuple[float, int]] = []
    while True:
        response = page.goto(f"{stack.site_url}/private/")
        assert response is not None
        now = time.time()
        history.append((round(now - times.submitted, 1), response.status))
        if response.status != 200:
            break
        assert at(page.url, stack.site_url, "/private/"), page.url
        assert now < deadline, f"no 503 page by expiry + grace: {history}"
        time.sleep(POLL_INTERVAL)

    assert response.status == 503, history
    assert now >= expires_earliest + REFRESH_GRACE - 0.5, f"503 before the grace ended: {history}"
    assert response.headers.get("retry-after", "").isdigit(), response.headers
    assert at(page.url, stack.site_url, "/private/")
    try_again = page.get_by_role("link", name="Try again")
    assert try_again.is_visible()
    assert try_again.get_attribute("href") == "/auth/login/?next=%2Fprivate%2F"
    heading = page.locator("h1").inner_text()
    screenshot(page, "error-provider-down.png")
    print(f"(seconds since the login, status): {history}; 503 page heading: {heading!r}")

    # The provider comes back (same database and port): the login recovers by itself, at the
    # latest once the site's retry interval has passed.
    stack.op.start()
    stack.op.wait_ready()
    deadline = time.time() + RETRY_INTERVAL + 5
    while True:
        response = page.goto(f"{stack.site_url}/private/")
        assert response is not None
        if response.status == 200:
            break
        assert response.status == 503, response.status
        assert time.time() < deadline, "the site did not recover after the provider came back"
        time.sleep(POLL_INTERVAL)
    assert at(page.url, stack.site_url, "/private/")
    assert stack.refresh_grants() == 1

"""The refresh middleware against the real provider: 10-second access tokens, rotation on."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.flows import at, log_in, wait_until
from tests.e2e.servers import DEMO_EMAIL, Stack, http

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

CONCURRENT_REQUESTS = 10
PRIVATE_HEADING = "<h1>Private page</h1>"

# Ten fetches of /private/ started together by the page (same cookies, no HTTP cache, no
# redirect following: a redirect to the login page would show as "opaqueredirect"), each
# aborted after timeoutMs.
FETCH_ALL = """
async ({url, count, timeoutMs}) => {
  const one = async (i) => {
    const r = await fetch(`${url}?burst=${i}`, {
      credentials: "same-origin", redirect: "manual", cache: "no-store",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = r.type === "opaqueredirect" ? "" : await r.text();
    return {status: r.status, type: r.type, text: text};
  };
  return Promise.all(Array.from({length: count}, (_, i) => one(i)));
}
"""


def refused_refreshes(stats: dict[str, Any]) -> int:
    return int(stats["token"].get("refresh_token", {}).get("error", 0))


def assert_still_logged_in(page: Page, stack: Stack) -> None:
    response = page.goto(f"{stack.site_url}/welcome/")
    assert response is not None and response.status == 200
    assert at(page.url, stack.site_url, "/welcome/")
    assert page.locator("main h1").inner_text() == f"Welcome {DEMO_EMAIL}"
    response = page.goto(f"{stack.site_url}/call-api/")  # the current token works at the API
    assert response is not None and response.status == 200
    assert page.locator("#api-status").inner_text() == "200"
    assert json.loads(page.locator("#api-body").inner_text())["email"] == DEMO_EMAIL


def burst_from_threads(context: BrowserContext, url: str, count: int) -> list[tuple[int, bool]]:
    """``count`` requests released together by a barrier, with the browser's cookies."""
    cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies(url)}
    barrier = threading.Barrier(count)

    def one(index: int) -> tuple[int, bool]:
        session = http()
        session.cookies.update(cookies)
        barrier.wait(timeout=10)
        response = session.get(f"{url}?thread={index}", allow_redirects=False, timeout=15)
        return response.status_code, PRIVATE_HEADING in response.text

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_expired_token_is_refreshed_once(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    log_in(page, stack)
    before = stack.stats()

    stack.wait_until_access_tokens_expire()
    assert stack.refresh_grants() == Stack.grants(before, "refresh_token"), "refreshed too early"

    response = page.goto(f"{stack.site_url}/private/")
    assert response is not None and response.status == 200
    assert at(page.url, stack.site_url, "/private/")
    after = stack.stats()
    assert Stack.grants(after, "refresh_token") == Stack.grants(before, "refresh_token") + 1
    assert refused_refreshes(after) == refused_refreshes(before)

    assert_still_logged_in(page, stack)
    assert stack.refresh_grants() == Stack.grants(after, "refresh_token")  # fresh: no more


def test_concurrent_requests_make_one_refresh(context: BrowserContext, stack: Stack) -> None:
    if stack.database != "postgresql":
        pytest.skip(
            "single-flight refresh needs row locks and the site is on SQLite: PostgreSQL is "
            "not reachable at E2E_POSTGRES_URL"
        )
    page = context.new_page()
    times = log_in(page, stack)
    before = stack.stats()
    refreshes = Stack.grants(before, "refresh_token")
    half_lifetime = stack.access_token_lifetime / 2  # the middleware's leeway for 10 s tokens
    url = f"{stack.site_url}/private/"

    # 1. The browser sends ten requests at once, once the token is due for a refresh (the
    #    site stored its expiry before the welcome page loaded).
    wait_until(times.done + half_lifetime + 1.3)  # the due time is rounded up to a second
    results: list[dict[str, Any]] = page.evaluate(
        FETCH_ALL, {"url": url, "count": CONCURRENT_REQUESTS, "timeoutMs": 15_000}
    )
    assert [result["status"] for result in results] == [200] * CONCURRENT_REQUESTS, [
        (result["status"], result["type"]) for result in results
    ]
    assert all(PRIVATE_HEADING in result["text"] for result in results)
    assert stack.refresh_grants() == refreshes + 1
    first_burst_done = time.time()

    # 2. Once the new token is due in turn: ten threads released together by a barrier (the
    #    browser opens at most six connections to a host), with the browser's cookies.
    wait_until(first_burst_done + half_lifetime + 1.3)
    answers = burst_from_threads(context, url, CONCURRENT_REQUESTS)
    assert answers == [(200, True)] * CONCURRENT_REQUESTS, answers
    assert stack.refresh_grants() == refreshes + 2

    # The browser is still logged in, on the token of the last refresh.
    assert_still_logged_in(page, stack)
    assert stack.refresh_grants() == refreshes + 2
    refused = refused_refreshes(stack.stats()) - refused_refreshes(before)
    assert refused == 0, f"the provider refused {refused} refresh request(s)"

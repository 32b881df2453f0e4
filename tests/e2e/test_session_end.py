"""Sessions ended elsewhere: at the provider (the liveness check) and on the "Your sessions" page.

Two browser contexts, A and B, signed in as the same demo user on a stack whose site checks
each login's provider session every ``AUTHGEAR_SESSION_CHECK_INTERVAL`` = 15 seconds (room
for a slow revocation command on a loaded machine) and whose access tokens live an hour:
nothing is refreshed during these tests, so the only way the site can learn that the provider
ended B's grant is the liveness check (one userinfo call).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import ACTION_TIMEOUT_MS, NAVIGATION_TIMEOUT_MS, SITE_SERVER, _stacks
from tests.e2e.flows import (
    live_grant_ids,
    log_in,
    probe,
    provider_command,
    site_setting,
    wait_until,
)
from tests.e2e.servers import DEMO_EMAIL, Stack, start_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = pytest.mark.e2e

CHECK_INTERVAL = 15  # seconds: the site's AUTHGEAR_SESSION_CHECK_INTERVAL
LONG_LIFETIME = 3600  # seconds: no access token expires (so none is refreshed) in these tests
POLL_EVERY = 1.0  # seconds between two looks at B after the revocation
POLL_FOR = 25.0  # seconds B may take to be signed out
CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="module")
def checked_stack(e2e_workdir: Path, postgres_url: str | None) -> Iterator[Stack]:
    """A provider + site whose site checks sessions every 5 s; hour-long access tokens."""
    stack = start_stack(
        "session-check",
        e2e_workdir / "session-check",
        access_token_lifetime=LONG_LIFETIME,
        postgres_url=postgres_url,
        site_server=SITE_SERVER,
        site_env={"AUTHGEAR_SESSION_CHECK_INTERVAL": str(CHECK_INTERVAL)},
    )
    _stacks.append(stack)  # its logs go into the report of a failure
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def two_contexts(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    """Two fresh browser contexts, told apart on the sessions page by their User-Agent."""
    contexts = []
    try:
        for _ in range(2):
            context = browser.new_context(user_agent=f"{CHROME_UA} e2e-{uuid.uuid4().hex}")
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            contexts.append(context)
        yield contexts[0], contexts[1]
    finally:
        for context in contexts:
            context.close()


def user_agent(context: BrowserContext) -> str:
    page = context.pages[0] if context.pages else context.new_page()
    value: str = page.evaluate("navigator.userAgent")
    return value


def test_a_grant_revoked_at_the_provider_signs_that_browser_out_at_the_next_check(
    checked_stack: Stack, two_contexts: tuple[BrowserContext, BrowserContext]
) -> None:
    stack = checked_stack
    assert site_setting(stack, "AUTHGEAR_SESSION_CHECK_INTERVAL") == str(CHECK_INTERVAL), (
        "the example site ignores AUTHGEAR_SESSION_CHECK_INTERVAL from its environment"
    )
    context_a, context_b = two_contexts
    refreshes_before = stack.refresh_grants()
    log_in(context_a.new_page(), stack)
    login_b = log_in(context_b.new_page(), stack)
    grants = live_grant_ids(stack)
    assert len(grants) >= 2
    grant_b = grants[-1]  # the newest grant: B signed in last

    # Make B's login pass one check now (due 5 s after the sign-in, rounded up to a whole
    # second, so at the latest 6 s after the login finished): the next one cannot come before
    # this request + 5 s, a window in which the revocation cannot be noticed yet.
    wait_until(login_b.done + CHECK_INTERVAL + 1.2)
    checked = probe(context_b, stack)
    assert checked.signed_in, "B was signed out before its grant was revoked"

    provider_command(stack, "end_sessions", DEMO_EMAIL, "--grant", grant_b)
    revoked_at = time.time()
    assert grant_b not in live_grant_ids(stack)

    # Before the next check may run, B is still signed in: only the check can tell.
    right_after = probe(context_b, stack)
    assert right_after.finished < checked.started + CHECK_INTERVAL, (
        f"the revocation took {right_after.finished - checked.started:.1f}s: no request of B "
        f"came within the {CHECK_INTERVAL}s interval, so nothing was proved"
    )
    assert right_after.signed_in, "B was signed out before a liveness check could run"

    # Within about one interval (polled every second), the check signs B out.
    signed_out = None
    deadline = revoked_at + POLL_FOR
    while time.time() < deadline:
        time.sleep(POLL_EVERY)
        look = probe(context_b, stack)
        if not look.signed_in:
            signed_out = look
            break
    assert signed_out is not None, f"B was still signed in {POLL_FOR}s after the revocation"
    assert signed_out.finished >= checked.started + CHECK_INTERVAL, "signed out before the check"
    assert signed_out.finished - revoked_at <= CHECK_INTERVAL + POLL_EVERY + 1.0, (
        f"B was signed out {signed_out.finished - revoked_at:.1f}s after the revocation"
    )
    assert not probe(context_b, stack).signed_in  # and stays signed out

    # A's grant is alive: A passes its own check (due by now: no request since the revocation
    # for more than one interval) and stays signed in.
    time.sleep(max(0.0, revoked_at + CHECK_INTERVAL + 1.5 - time.time()))
    assert probe(context_a, stack).signed_in, "A was signed out with B"
    assert grants[-2] in live_grant_ids(stack)
    # Nothing was refreshed: the liveness check, not a failed refresh, ended B's login.
    assert stack.refresh_grants() == refreshes_before


def test_sign_out_all_other_sessions_ends_the_other_browser(
    checked_stack: Stack, two_contexts: tuple[BrowserContext, BrowserContext]
) -> None:
    stack = checked_stack
    context_a, context_b = two_contexts
    page_a = context_a.new_page()
    log_in(page_a, stack)
    log_in(context_b.new_page(), stack)
    grant_a, grant_b = live_grant_ids(stack)[-2:]
    agent_a, agent_b = user_agent(context_a), user_agent(context_b)

    response = page_a.goto(f"{stack.site_url}/auth/sessions/")
    assert response is not None and response.status == 200
    sessions = page_a.locator("li.session")
    current = page_a.locator("li.session.current")
    assert current.count() == 1
    assert current.locator("strong").get_attribute("title") == agent_a
    titles = [row.locator("strong").get_attribute("title") for row in sessions.all()]
    assert agent_a in titles and agent_b in titles, titles

    with page_a.expect_navigation():
        page_a.get_by_role("button", name="Sign out all other sessions").click()
    assert page_a.locator("li.session").count() == 1  # earlier tests' logins went too
    assert page_a.locator("li.session.current strong").get_attribute("title") == agent_a

    assert not probe(context_b, stack).signed_in, "B is still signed in"
    assert probe(context_a, stack).signed_in
    # The site revoked B's grant at the provider; A's is untouched.
    live = live_grant_ids(stack)
    assert grant_b not in live and grant_a in live

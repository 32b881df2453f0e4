"""What a user does in the browser: open the site, sign in at the provider, log out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tests.e2e.servers import DEMO_EMAIL, DEMO_PASSWORD, Stack

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"


def at(url: str, base: str, path: str) -> bool:
    """Whether ``url`` is ``path`` on the server ``base`` (any query string)."""
    parts, origin = urlsplit(url), urlsplit(base)
    return (parts.scheme, parts.netloc, parts.path) == (origin.scheme, origin.netloc, path)


def wait_at(page: Page, base: str, path: str) -> None:
    """Wait (bounded by the navigation timeout) until the page is at ``path`` on ``base``."""
    page.wait_for_url(lambda url: at(url, base, path))


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    return path


def open_landing(page: Page, stack: Stack) -> None:
    response = page.goto(f"{stack.site_url}/")
    assert response is not None and response.status == 200, response and response.status
    assert page.locator("main h1").inner_text() == "authgear-django example"


def click_log_in(page: Page, stack: Stack) -> None:
    """On the landing page: click the page's "Log in" button; arrive at the provider's login."""
    page.locator("main").get_by_role("link", name="Log in", exact=True).click()
    wait_at(page, stack.op_url, "/login")
    page.locator("#login-form").wait_for()


def submit_credentials(page: Page, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> None:
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Continue").click()


@dataclass
class LoginTimes:
    submitted: float  # before the credentials were sent: the tokens are issued after this
    done: float  # after the welcome page loaded: the site stored the tokens before this


def log_in(page: Page, stack: Stack) -> LoginTimes:
    """Landing → Log in → provider login → credentials → /welcome/ (asserts the greeting)."""
    open_landing(page, stack)
    click_log_in(page, stack)
    submitted = time.time()
    submit_credentials(page)
    wait_at(page, stack.site_url, "/welcome/")
    assert page.locator("main h1").inner_text() == f"Welcome {DEMO_EMAIL}"
    return LoginTimes(submitted=submitted, done=time.time())


def wait_until(moment: float) -> None:
    """Sleep until the wall-clock time ``moment`` (used only to let a token become due)."""
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)

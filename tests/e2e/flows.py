"""What a user does in the browser: open the site, sign in at the provider, log out."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tests.e2e.servers import DEMO_EMAIL, DEMO_PASSWORD, Stack, run_command

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

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


# --- the provider's management commands, and "is this browser signed in?" ---------------------


def provider_command(stack: Stack, *args: str) -> str:
    """Run a management command of the stack's provider (its environment and database)."""
    command = [sys.executable, "-m", "example_project.local_provider", *args]
    return run_command("provider", command, stack.op.env, stack.op.log_path)


def site_setting(stack: Stack, name: str) -> str:
    """The value the stack's site sees for ``conf.<name>`` (a setting it may ignore)."""
    code = f"from authgear_django.conf import conf; print(repr(conf.{name}))"
    command = [sys.executable, "manage.py", "shell", "-c", code]
    output = run_command("site", command, stack.site.env, stack.site.log_path)
    return output.strip().splitlines()[-1]


def live_grant_ids(stack: Stack, email: str = DEMO_EMAIL) -> list[str]:
    """The user's live grants at the provider (``end_sessions --list``), oldest first."""
    output = provider_command(stack, "end_sessions", email, "--list")
    return re.findall(r"^grant ([0-9a-f-]{36}) ", output, flags=re.MULTILINE)


@dataclass
class Probe:
    """One request of the landing page with a browser context's cookies (no redirect followed)."""

    signed_in: bool
    started: float  # wall clock before the request
    finished: float  # wall clock after the answer


def probe(context: BrowserContext, stack: Stack) -> Probe:
    """GET the site's landing page with the context's cookies: signed in or not?

    Redirects are not followed: a login ended by the liveness check redirects to the login
    page, which would sign the browser in again through the provider's own session. The
    answer's cookies (the ended session) are kept by the context.
    """
    started = time.time()
    response = context.request.get(f"{stack.site_url}/", max_redirects=0)
    finished = time.time()
    text = response.text()
    if response.status == 200 and "You are logged in as" in text:
        return Probe(signed_in=True, started=started, finished=finished)
    if response.status == 302 or (response.status == 200 and ">Log in</a>" in text):
        return Probe(signed_in=False, started=started, finished=finished)
    raise AssertionError(f"unexpected answer of the landing page: {response.status}\n{text[:500]}")

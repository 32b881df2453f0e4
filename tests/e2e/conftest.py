"""Fixtures of the end-to-end tests: real servers (provider + example site) and Chromium.

Run them with ``python -m pytest tests/e2e -m e2e``. They are skipped, with the reason, when
Chromium (``/usr/bin/chromium``, or ``E2E_CHROMIUM``) or the ``playwright`` package is missing.
The sites use a fresh PostgreSQL database each when ``E2E_POSTGRES_URL`` (default
``postgres://postgres@127.0.0.1:5432/postgres``) answers, else SQLite (and the concurrency
test is skipped: single-flight refresh needs row locks). The shared site runs under
``manage.py runserver`` unless ``E2E_SITE_SERVER=asgi`` (uvicorn); ``test_asgi.py`` always
starts its own ASGI stack. Screenshots go to ``artifacts/e2e/``; on a failure, the servers'
logs are added to the report and the pages are screenshotted.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.servers import ROOT, SITE_SERVERS, Stack, postgres_admin_url, start_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Playwright

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "artifacts" / "e2e"
ACTION_TIMEOUT_MS = 5_000  # clicks, fills, waiting for an element
NAVIGATION_TIMEOUT_MS = 10_000  # a navigation (a login crosses both servers)
SHORT_LIFETIME = 10  # seconds: the providers' access-token lifetime
# How the stacks serve the example site unless a test asks otherwise: "runserver" or "asgi".
SITE_SERVER = os.environ.get("E2E_SITE_SERVER", "").strip() or "runserver"

_stacks: list[Stack] = []  # every stack started this session, for the logs of a failure


def _missing_prerequisite() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (set E2E_CHROMIUM or install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if importlib.util.find_spec("oauth2_provider") is None:
        return (
            "django-oauth-toolkit (the local provider) is not installed: pip install -e '.[demo]'"
        )
    return None


def missing_site_server(site_server: str) -> str | None:
    """Why the example site cannot be served that way here, if it cannot (a typo fails)."""
    if site_server not in SITE_SERVERS:
        raise pytest.UsageError(f"E2E_SITE_SERVER={site_server!r} is not one of {SITE_SERVERS}")
    if site_server == "asgi" and importlib.util.find_spec("uvicorn") is None:
        return "uvicorn (the ASGI server) is not installed: pip install uvicorn"
    return None


@pytest.fixture(scope="session", autouse=True)
def _e2e_prerequisites() -> None:
    """Skip every end-to-end test, before any server starts, when there is no browser."""
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    if report.failed:
        for stack in _stacks:
            for title, text in stack.logs():
                report.sections.append((f"{title} log (last lines)", text))
    return report


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def postgres_url() -> str | None:
    return postgres_admin_url()


@pytest.fixture(scope="session")
def start_e2e_stack(e2e_workdir: Path, postgres_url: str | None) -> Iterator[Callable[..., Stack]]:
    """Start a provider + site pair (10 s access tokens); all are stopped at the end.

    ``start(name, site_server=...)``: the site under ``SITE_SERVER`` unless told otherwise;
    the test is skipped, before anything starts, when that server is not available.
    """
    started: list[Stack] = []

    def start(name: str, *, site_server: str = SITE_SERVER) -> Stack:
        reason = missing_site_server(site_server)
        if reason:
            pytest.skip(reason)
        stack = start_stack(
            name,
            e2e_workdir / name,
            access_token_lifetime=SHORT_LIFETIME,
            postgres_url=postgres_url,
            site_server=site_server,
        )
        started.append(stack)
        _stacks.append(stack)
        return stack

    yield start
    errors = []
    for stack in reversed(started):
        try:
            stack.stop()
        except Exception as error:  # stop the others anyway
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def stack(start_e2e_stack: Callable[..., Stack]) -> Stack:
    """The shared provider + site: 10-second access tokens, PostgreSQL when available."""
    return start_e2e_stack("main")


# --- browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    manager = sync_playwright()
    instance = manager.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def context(
    browser: Browser, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) per test, with bounded waits."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    try:
        yield context
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            for index, page in enumerate(context.pages):
                try:
                    page.screenshot(path=artifacts / f"failed-{name}-{index}.png", timeout=3_000)
                except Exception as error:  # the page may be gone; keep the real failure
                    print(f"no screenshot of page {index}: {error}")
        context.close()

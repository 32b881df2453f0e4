"""The example site under an ASGI server (uvicorn + ``example_project.asgi``), in Chromium.

Once per e2e run, whatever ``E2E_SITE_SERVER`` says for the shared stack: Django's async
handler runs our sync views in its thread, ``TokenRefreshMiddleware`` in its async mode, and
the decorators behind it. Login → welcome → reauthentication page → API page → a due refresh →
bearer API without a token → logout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import at, log_in, wait_at, wait_until
from tests.e2e.servers import DEMO_EMAIL, Stack, http

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def asgi_stack(start_e2e_stack: Callable[..., Stack]) -> Stack:
    """A provider + example site served by uvicorn (skipped when uvicorn is missing)."""
    return start_e2e_stack("asgi", site_server="asgi")


def test_login_api_refresh_and_logout_under_asgi(
    context: BrowserContext, asgi_stack: Stack
) -> None:
    stack = asgi_stack
    page = context.new_page()
    times = log_in(page, stack)  # landing → provider → callback → /welcome/ with the greeting

    landing = http().get(f"{stack.site_url}/", timeout=5)
    assert landing.headers.get("server") == "uvicorn", "the site is not served over ASGI"

    # reauthentication_required (max_age=60): a sign-in of a moment ago gets in
    response = page.goto(f"{stack.site_url}/sensitive/")
    assert response is not None and response.status == 200
    assert at(page.url, stack.site_url, "/sensitive/")

    # the API page calls the provider with the stored access token
    response = page.goto(f"{stack.site_url}/call-api/")
    assert response is not None and response.status == 200
    assert page.locator("#api-status").inner_text() == "200"
    assert json.loads(page.locator("#api-body").inner_text())["email"] == DEMO_EMAIL

    # TokenRefreshMiddleware (async mode): once the token is due, the next page refreshes it
    before = stack.refresh_grants()
    # the refresh leeway; the due time is rounded up to a whole second
    wait_until(times.done + stack.access_token_lifetime / 2 + 1.3)
    response = page.goto(f"{stack.site_url}/private/")
    assert response is not None and response.status == 200
    assert page.locator("main h1").inner_text() == "Private page"
    assert stack.refresh_grants() == before + 1
    response = page.goto(f"{stack.site_url}/call-api/")  # the refreshed token works
    assert response is not None and response.status == 200
    assert page.locator("#api-status").inner_text() == "200"

    # bearer_token_required: no token is a 401 with the RFC 6750 challenge, not a 500
    api = http().get(f"{stack.site_url}/api/me/", timeout=5)
    assert api.status_code == 401
    assert api.headers["WWW-Authenticate"] == 'Bearer realm="api"'

    # logout: both sessions end, the refresh token is revoked
    revoked = stack.stats()["revoke"]["refresh_token"]
    page.goto(f"{stack.site_url}/welcome/")
    page.locator("main").get_by_role("button", name="Log out").click()
    wait_at(page, stack.site_url, "/")
    assert page.locator("main").get_by_role("link", name="Log in", exact=True).is_visible()
    assert stack.stats()["revoke"]["refresh_token"] == revoked + 1
    response = context.request.get(f"{stack.site_url}/private/", max_redirects=0, timeout=5_000)
    assert response.status == 302
    assert response.headers["location"].startswith("/auth/login/?next=/private/")

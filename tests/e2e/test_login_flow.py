"""Logging in and out of the example site through the local provider, in Chromium."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import (
    at,
    click_log_in,
    log_in,
    open_landing,
    query,
    screenshot,
    submit_credentials,
    wait_at,
)
from tests.e2e.servers import DEMO_EMAIL, Stack

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.e2e


def assert_not_logged_in(context: BrowserContext, stack: Stack) -> None:
    """A fresh request for /private/ in this browser is sent to our login view."""
    response = context.request.get(f"{stack.site_url}/private/", max_redirects=0, timeout=5_000)
    assert response.status == 302, response.status
    assert response.headers["location"].startswith("/auth/login/?next=/private/")


def test_login_lands_on_welcome_with_claims(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    open_landing(page, stack)
    screenshot(page, "landing.png")

    click_log_in(page, stack)
    authorize = query(page.url)["next"][0]
    assert authorize.startswith("/oauth2/authorize?")
    sent = query(authorize)
    assert sent["client_id"] == ["demo-client"]
    assert sent["code_challenge_method"] == ["S256"]
    assert sent["redirect_uri"] == [f"{stack.site_url}/auth/callback/"]
    assert {"state", "nonce", "code_challenge"} <= set(sent)
    assert page.get_by_role("link", name="Cancel").is_visible()
    screenshot(page, "provider-login.png")

    submit_credentials(page)
    wait_at(page, stack.site_url, "/welcome/")
    assert page.locator("main h1").inner_text() == f"Welcome {DEMO_EMAIL}"
    claims = json.loads(page.locator("#claims").inner_text())
    assert claims["sub"] == stack.demo_sub
    assert claims["email"] == DEMO_EMAIL
    assert claims["email_verified"] is True
    assert claims["https://authgear.com/claims/user/roles"] == ["admin"]
    screenshot(page, "welcome.png")

    response = page.goto(f"{stack.site_url}/private/")
    assert response is not None and response.status == 200
    assert at(page.url, stack.site_url, "/private/")
    assert page.locator("main h1").inner_text() == "Private page"

    # The demo user's Authgear role "admin" made them staff and superuser at this login.
    page.locator("header nav").get_by_role("link", name="Admin", exact=True).click()
    wait_at(page, stack.site_url, "/admin/")
    page.get_by_role("link", name="Authgear accounts", exact=True).click()
    wait_at(page, stack.site_url, "/admin/authgear_django/authgearaccount/")
    assert DEMO_EMAIL in page.locator("#result_list").inner_text()
    screenshot(page, "admin-authgear-accounts.png")


def test_call_api_uses_the_access_token(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    log_in(page, stack)

    response = page.goto(f"{stack.site_url}/call-api/")
    assert response is not None and response.status == 200
    assert page.locator("#api-status").inner_text() == "200"
    body = json.loads(page.locator("#api-body").inner_text())
    assert body["sub"] == stack.demo_sub
    assert body["email"] == DEMO_EMAIL
    assert f"{stack.op_url}/oauth2/userinfo" in page.locator("main").inner_text()
    screenshot(page, "call-api.png")


def test_logout_revokes_and_ends_both_sessions(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    log_in(page, stack)
    before = stack.stats()["revoke"]

    page.locator("main").get_by_role("button", name="Log out").click()
    wait_at(page, stack.site_url, "/")
    assert page.locator("main").get_by_role("link", name="Log in", exact=True).is_visible()

    stats = stack.stats()
    assert stats["revoke"]["refresh_token"] == before["refresh_token"] + 1, stats["revoke"]
    assert stats["revoke"]["error"] == before["error"], stats["revoke"]
    assert stats["live_refresh_tokens"].get(DEMO_EMAIL, 0) == 0, stats

    # Not logged in here: /private/ goes to our login view, which goes to the provider...
    assert_not_logged_in(context, stack)
    page.goto(f"{stack.site_url}/private/")
    # ... and not at the provider either: it asks for the password again.
    wait_at(page, stack.op_url, "/login")
    page.locator("#login-form").wait_for()


def test_wrong_password_is_refused(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    open_landing(page, stack)
    click_log_in(page, stack)

    submit_credentials(page, password="not-the-password")
    page.locator("#login-form .error").wait_for()
    assert "enter a correct" in page.locator("#login-form .error").inner_text().lower()
    assert at(page.url, stack.op_url, "/login")

    assert_not_logged_in(context, stack)


def test_cancel_at_the_provider_shows_our_error_page(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    open_landing(page, stack)
    click_log_in(page, stack)

    with page.expect_response(lambda r: at(r.url, stack.site_url, "/auth/callback/")) as answer:
        page.get_by_role("link", name="Cancel").click()
    callback = answer.value
    assert callback.status == 403, callback.status
    assert query(callback.url)["error"] == ["access_denied"]
    page.wait_for_load_state()
    assert page.title() == "Sign-in cancelled"
    assert page.locator("h1").inner_text() == "Sign-in cancelled"
    try_again = page.get_by_role("link", name="Try again")
    assert try_again.is_visible()
    screenshot(page, "error-cancelled.png")

    assert_not_logged_in(context, stack)
    try_again.click()  # starts a new login: back at the provider's login page
    wait_at(page, stack.op_url, "/login")
    page.locator("#login-form").wait_for()


def test_two_tabs_log_in_at_once(context: BrowserContext, stack: Stack) -> None:
    first, second = context.new_page(), context.new_page()
    for page in (first, second):
        open_landing(page, stack)
    for page in (first, second):
        click_log_in(page, stack)  # two logins pending in one site session
    first_state = query(query(first.url)["next"][0])["state"]
    second_authorize = query(second.url)["next"][0]
    assert query(second_authorize)["state"] != first_state

    submit_credentials(first)
    wait_at(first, stack.site_url, "/welcome/")
    assert first.locator("main h1").inner_text() == f"Welcome {DEMO_EMAIL}"

    # The second tab's form carries the provider's CSRF token from before the first tab
    # signed in (Django rotates it at login), so it resumes its own authorization request,
    # which the provider's single sign-on session now answers without a password.
    second.goto(f"{stack.op_url}{second_authorize}")
    wait_at(second, stack.site_url, "/welcome/")
    assert second.locator("main h1").inner_text() == f"Welcome {DEMO_EMAIL}"

    for page in (first, second):
        response = page.goto(f"{stack.site_url}/private/")
        assert response is not None and response.status == 200
        assert at(page.url, stack.site_url, "/private/")

"""The optional browser SSO check (``AUTHGEAR_BROWSER_SSO_CHECK``): at most once per interval,
a signed-in browser's page load goes through Authgear with ``prompt=none`` and comes back.

The fake Authgear answers ``prompt=none`` from the test browser's Authgear session
(``FakeAuthgear.browser_user``, set by the interactive sign-in). Time is frozen (``clock``).

What Authgear answers, and what the callback does with it, is in
``test_sso_check_callback.py``; what they share is in ``sso_check_helpers.py``.
"""

from __future__ import annotations

import time
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client
from django.urls import path

from authgear_django.conf import conf
from authgear_django.models import AuthgearLogin
from authgear_django.sso_check import SSO_CHECK_AT_KEY, SSO_STATE_PREFIX
from authgear_django.store import SESSION_ATTEMPTS_KEY
from tests import sso_check_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.sso_check_helpers import (
    CALLBACK,
    INTERVAL,
    NAVIGATION,
    navigate_due,
    query_of,
    signed_in,
)
from tests.urls import urlpatterns as test_urlpatterns

pytestmark = pytest.mark.django_db

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
sso_on = sso_check_helpers.sso_on
logged_in = sso_check_helpers.logged_in


# --- the setting --------------------------------------------------------------------------------


def test_the_setting_is_off_by_default(settings: Any) -> None:
    assert conf.AUTHGEAR_BROWSER_SSO_CHECK is False
    settings.AUTHGEAR_BROWSER_SSO_CHECK = True
    assert conf.AUTHGEAR_BROWSER_SSO_CHECK is True


def test_off_by_default_no_navigation_is_redirected(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.browser_user = None  # even with Authgear's browser session gone
    for _ in range(3):
        clock.shift(INTERVAL)
        response = logged_in.client.get("/private/", **NAVIGATION)
        assert response.status_code == 200
    assert signed_in(logged_in)
    assert SSO_CHECK_AT_KEY not in logged_in.client.session


# --- the redirect -------------------------------------------------------------------------------


def test_a_due_navigation_goes_through_authgear_with_prompt_none(
    sso_on: None, logged_in: LoginFlow, clock: Any
) -> None:
    clock.shift(INTERVAL - 1)
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 200  # not due yet
    clock.shift(1)
    response = logged_in.client.get("/private/?tab=2", **NAVIGATION)
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    params = {name: values[0] for name, values in query_of(response["Location"]).items()}
    assert params["prompt"] == "none"
    assert params["scope"] == "openid"
    assert params["redirect_uri"] == CALLBACK
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256" and params["code_challenge"]
    assert params["nonce"] and params["state"].startswith(SSO_STATE_PREFIX)
    assert "max_age" not in params and "id_token_hint" not in params  # refused with none
    attempt = logged_in.client.session[SESSION_ATTEMPTS_KEY][params["state"]]
    assert attempt["next_url"] == "/private/?tab=2"
    login_id, due_at = logged_in.client.session[SSO_CHECK_AT_KEY]
    assert login_id == AuthgearLogin.objects.get().pk.hex
    assert due_at >= time.time() + INTERVAL  # recorded before the redirect


def test_no_check_before_the_first_interval_after_sign_in(
    sso_on: None, clock: Any, login_flow: LoginFlow, authgear_user: FakeUser
) -> None:
    response = login_flow.login(authgear_user)
    assert response.status_code == 302 and response["Location"] == "/private/"
    for _ in range(INTERVAL - 1):
        assert login_flow.client.get("/private/", **NAVIGATION).status_code == 200
        clock.shift(1)
    assert login_flow.client.get("/private/", **NAVIGATION).status_code == 200


# --- never a loop, never for other requests -------------------------------------------------------


@pytest.mark.parametrize("outcome", ["abandoned", "failed", "alive"])
def test_one_attempt_per_interval_whatever_happens(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, outcome: str
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    if outcome == "failed":
        fake_authgear.fail("token", status=503)
    if outcome != "abandoned":
        response = logged_in.client.get(fake_authgear.silent_authorize(authorize_url))
        assert response["Location"] == "/private/?tab=2"
    for _ in range(INTERVAL - 1):
        page = logged_in.client.get("/private/?tab=2", **NAVIGATION)
        assert page.status_code == 200  # no second round trip within the interval
        clock.shift(1)
    fake_authgear.heal()
    clock.shift(1)
    again = logged_in.client.get("/private/", **NAVIGATION)
    assert again.status_code == 302 and "prompt=none" in again["Location"]


def test_authgear_unreachable_when_due_serves_the_page_and_waits_an_interval(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    from django.core.cache import cache

    from authgear_django.client import reset_process_memory

    cache.clear()  # no cached discovery document
    reset_process_memory()
    fake_authgear.fail("discovery", exception=CONNECTION_REFUSED)
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 200
    fake_authgear.heal()
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 200  # no retry yet
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 302


NOT_NAVIGATIONS: dict[str, tuple[str, str, dict[str, str]]] = {
    "post": ("post", "/private/", NAVIGATION),
    "xhr": ("get", "/private/", {**NAVIGATION, "HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}),
    "fetch": ("get", "/private/", {**NAVIGATION, "HTTP_SEC_FETCH_MODE": "cors"}),
    "iframe": ("get", "/private/", {**NAVIGATION, "HTTP_SEC_FETCH_DEST": "iframe"}),
    "json": ("get", "/private/", {"HTTP_ACCEPT": "application/json"}),
    "no_accept": ("get", "/private/", {}),
    "bearer": ("get", "/private/", {**NAVIGATION, "HTTP_AUTHORIZATION": "Bearer abc"}),
    "prefetch": ("get", "/private/", {**NAVIGATION, "HTTP_SEC_PURPOSE": "prefetch"}),
    "our_logout_page": ("get", "/auth/logout/", NAVIGATION),
    "our_login_page": ("get", "/auth/login/?next=/private/", NAVIGATION),
}


@pytest.mark.parametrize("kind", NOT_NAVIGATIONS)
def test_only_page_navigations_are_redirected(
    sso_on: None, logged_in: LoginFlow, clock: Any, kind: str
) -> None:
    method, path, headers = NOT_NAVIGATIONS[kind]
    clock.shift(INTERVAL)
    response = getattr(logged_in.client, method)(path, **headers)
    assert "prompt=none" not in response.get("Location", "")
    assert signed_in(logged_in)
    # still due: the next real page load makes the check
    again = logged_in.client.get("/private/", **NAVIGATION)
    assert again.status_code == 302 and "prompt=none" in again["Location"]


def test_an_anonymous_visitor_is_never_redirected(sso_on: None, client: Any, clock: Any) -> None:
    for _ in range(2):
        clock.shift(INTERVAL)
        assert client.get("/", **NAVIGATION).status_code == 200
        assert client.get("/private/", **NAVIGATION)["Location"].startswith("/auth/login/")
    assert SSO_CHECK_AT_KEY not in client.session


async def async_whoami(request: HttpRequest) -> HttpResponse:
    """An async view that loads the user with ``await request.auser()`` (no thread)."""
    user = await request.auser()
    return HttpResponse(f"async page for {user.get_username()}")


urlpatterns = [*test_urlpatterns, path("async/whoami/", async_whoami)]


@pytest.mark.urls("tests.test_sso_check")
@pytest.mark.skipif(django.VERSION < (5, 0), reason="request.auser is new in Django 5.0")
def test_an_async_view_awaiting_the_user_gets_the_check_too(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Through Django's async handler, where the view awaits ``request.auser()``."""
    browser = AsyncClient()
    browser.cookies = logged_in.client.cookies
    headers = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}

    async def load() -> Any:
        return await browser.get("/async/whoami/?tab=1", headers=headers)

    clock.shift(INTERVAL - 1)
    response = async_to_sync(load)()
    assert response.status_code == 200 and response.content == b"async page for jane"
    clock.shift(1)
    response = async_to_sync(load)()
    assert response.status_code == 302
    assert query_of(response["Location"])["prompt"] == ["none"]
    fake_authgear.browser_user = None
    callback = fake_authgear.silent_authorize(response["Location"])
    assert logged_in.client.get(callback)["Location"] == "/async/whoami/?tab=1"
    assert not signed_in(logged_in)


def load_user_early(get_response: Any) -> Any:
    """A project middleware that reads the user before ours: no lazy user left to hook."""

    def middleware(request: HttpRequest) -> HttpResponse:
        assert request.user.is_authenticated is not None
        return get_response(request)  # type: ignore[no-any-return]

    return middleware


def test_the_check_runs_when_the_user_was_loaded_before_the_middleware(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, settings: Any
) -> None:
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("authgear_django.middleware.TokenRefreshMiddleware"),
        "tests.test_sso_check.load_user_early",
    )
    settings.MIDDLEWARE = middleware
    browser = Client()  # loads the new middleware list
    browser.cookies = logged_in.client.cookies
    clock.shift(INTERVAL)
    assert browser.post("/private/", **NAVIGATION).status_code == 200  # never for a POST
    response = browser.get("/private/", **NAVIGATION)
    assert response.status_code == 302
    assert query_of(response["Location"])["prompt"] == ["none"]
    assert browser.get("/private/", **NAVIGATION).status_code == 200  # recorded: no loop


def test_signing_in_again_restarts_the_clock(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
) -> None:
    """A due time belongs to one login: a new sign-in in the same session is not checked at
    once (it has just been through Authgear)."""
    clock.shift(INTERVAL)
    assert logged_in.login(authgear_user).status_code == 302  # the old login is replaced
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 200
    clock.shift(INTERVAL - 1)
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 200
    clock.shift(1)
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 302

"""The optional browser SSO check (``AUTHGEAR_BROWSER_SSO_CHECK``): at most once per interval,
a signed-in browser's page load goes through Authgear with ``prompt=none`` and comes back.

The fake Authgear answers ``prompt=none`` from the test browser's Authgear session
(``FakeAuthgear.browser_user``, set by the interactive sign-in). Time is frozen (``clock``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client
from django.urls import path

from authgear_django.conf import conf
from authgear_django.models import AuthgearLogin
from authgear_django.signals import login_revoked
from authgear_django.sso_check import SSO_CHECK_AT_KEY, SSO_STATE_PREFIX
from authgear_django.store import SESSION_ATTEMPTS_KEY, SESSION_LOGIN_KEY
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.urls import urlpatterns as test_urlpatterns

pytestmark = pytest.mark.django_db
INTERVAL = 300  # AUTHGEAR_SESSION_CHECK_INTERVAL's default
CALLBACK = "http://testserver/auth/callback/"

# What a browser sends for a top-level page load (fetch metadata included).
NAVIGATION = {
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "HTTP_SEC_FETCH_MODE": "navigate",
    "HTTP_SEC_FETCH_DEST": "document",
    "HTTP_SEC_FETCH_SITE": "same-origin",
}


@pytest.fixture
def sso_on(settings: Any) -> None:
    settings.AUTHGEAR_BROWSER_SSO_CHECK = True


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    # the first page after the login: the session's SSO clock starts here, not due yet
    assert login_flow.client.get("/private/", **NAVIGATION).status_code == 200
    return login_flow


@pytest.fixture
def ended_reasons() -> Iterator[list[tuple[str, bool]]]:
    """``(reason, revoked)`` of every ``login_revoked`` sent during the test."""
    seen: list[tuple[str, bool]] = []

    def receiver(sender: Any, reason: str, revoked: bool, **kwargs: Any) -> None:
        seen.append((reason, revoked))

    login_revoked.connect(receiver, weak=False)
    yield seen
    login_revoked.disconnect(receiver)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def navigate_due(flow: LoginFlow, clock: Any, page: str = "/private/?tab=2") -> str:
    """Let the interval pass, load ``page``: the redirect to Authgear's authorize endpoint."""
    clock.shift(INTERVAL)
    response = flow.client.get(page, **NAVIGATION)
    assert response.status_code == 302, response.content
    location = str(response["Location"])
    assert location.startswith("https://authgear.test/oauth2/authorize?")
    return location


def signed_in(flow: LoginFlow) -> bool:
    return "_auth_user_id" in flow.client.session


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


# --- Authgear's answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["login_required", "interaction_required", "consent_required"])
def test_no_authgear_browser_session_signs_out_and_lands_on_the_page(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
    error: str,
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    if error == "login_required":
        fake_authgear.browser_user = None  # signed out at Authgear; this site's grant lives on
        callback = fake_authgear.silent_authorize(authorize_url)
    else:
        callback = fake_authgear.deny(authorize_url, error=error)
    assert query_of(callback)["error"] == [error]
    response = logged_in.client.get(callback)
    assert response.status_code == 302
    assert response["Location"] == "/private/?tab=2"
    assert not signed_in(logged_in)
    assert SESSION_LOGIN_KEY not in logged_in.client.session
    assert AuthgearLogin.objects.count() == 0
    assert ended_reasons == [("sso_ended", False)]
    assert fake_authgear.calls["revoke"] == 0
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Your session has ended. Please sign in again."
    ]
    # the page itself now asks to sign in, with next
    page = logged_in.client.get("/private/?tab=2", **NAVIGATION)
    assert page.status_code == 302
    assert page["Location"] == "/auth/login/?next=/private/%3Ftab%3D2"


def test_a_live_authgear_session_keeps_the_login_and_stores_no_token(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    before = AuthgearLogin.objects.get()
    token_calls = fake_authgear.calls["token"]
    response = logged_in.client.get(fake_authgear.silent_authorize(authorize_url))
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert fake_authgear.calls["token"] == token_calls + 1  # the code was exchanged
    after = AuthgearLogin.objects.get()
    assert after.pk == before.pk
    for field in ("encrypted_access_token", "encrypted_refresh_token", "encrypted_id_token"):
        assert getattr(after, field) == getattr(before, field)
    assert after.access_token_expires_at == before.access_token_expires_at
    [*_, check_grant] = fake_authgear.grants.values()
    assert check_grant.scope == "openid"  # no offline_access: no refresh token was issued
    assert signed_in(logged_in) and ended_reasons == []
    assert SESSION_ATTEMPTS_KEY not in logged_in.client.session  # the attempt was used up
    page = logged_in.client.get("/private/?tab=2", **NAVIGATION)
    assert page.status_code == 200 and page.content.startswith(b"private for")


def test_another_user_at_authgear_signs_out(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    fake_authgear.browser_user = FakeUser(email="mallory@example.com")
    response = logged_in.client.get(fake_authgear.silent_authorize(authorize_url))
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert not signed_in(logged_in)
    assert AuthgearLogin.objects.count() == 0
    assert ended_reasons == [("sso_ended", False)]
    # and the other Authgear user was not signed in here either
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 302


@pytest.mark.parametrize(
    "failure",
    ["token_refused", "token_unreachable", "access_denied", "server_error", "bad_signature"],
)
def test_an_inconclusive_answer_keeps_the_user_signed_in(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
    failure: str,
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    if failure in ("access_denied", "server_error"):
        callback = fake_authgear.deny(authorize_url, error=failure)
    else:
        if failure == "token_refused":
            fake_authgear.fail("token", status=500)
        elif failure == "token_unreachable":
            fake_authgear.fail("token", exception=CONNECTION_REFUSED)
        else:
            fake_authgear.id_token_rewrite = lambda token: token[:-4] + "AAAA"
        callback = fake_authgear.silent_authorize(authorize_url)
    response = logged_in.client.get(callback)
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert signed_in(logged_in) and ended_reasons == []
    assert AuthgearLogin.objects.count() == 1
    fake_authgear.heal()
    fake_authgear.id_token_rewrite = None
    assert logged_in.client.get("/private/?tab=2", **NAVIGATION).status_code == 200


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


def test_a_replayed_sso_reply_does_nothing(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    callback = fake_authgear.silent_authorize(navigate_due(logged_in, clock))
    assert logged_in.client.get(callback)["Location"] == "/private/?tab=2"
    token_calls = fake_authgear.calls["token"]
    replay = logged_in.client.get(callback)
    assert replay.status_code == 302 and replay["Location"] == "/private/"
    assert fake_authgear.calls["token"] == token_calls
    assert signed_in(logged_in)


def test_an_sso_reply_never_signs_anyone_in(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Signed out here meanwhile (e.g. in another tab): Authgear's code for the SSO check is
    not a login, even when the attempt is still in the session."""
    callback = fake_authgear.silent_authorize(navigate_due(logged_in, clock))
    session = logged_in.client.session
    session.pop("_auth_user_id")
    session.pop(SESSION_LOGIN_KEY)
    session.save()
    response = logged_in.client.get(callback)
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert not signed_in(logged_in)
    assert AuthgearLogin.objects.count() == 1  # no new login was made


def test_an_sso_state_of_another_browser_is_refused_like_any_unknown_state(
    sso_on: None, client: Any, fake_authgear: FakeAuthgear
) -> None:
    response = client.get("/auth/callback/?code=abc&state=" + SSO_STATE_PREFIX + "forged")
    assert response.status_code == 302 and response["Location"] == "/private/"
    assert "_auth_user_id" not in client.session
    assert fake_authgear.calls["token"] == 0


def test_the_callback_refuses_max_age_with_prompt_none_like_authgear(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    """The fake's rule (Authgear's): ``prompt=none`` with ``max_age`` is ``invalid_request``."""
    fake_authgear.browser_user = authgear_user
    url = (
        "https://authgear.test/oauth2/authorize?client_id=a1b2c3d4e5f60718&response_type=code"
        "&scope=openid&prompt=none&max_age=0&state=s&code_challenge_method=S256"
        "&redirect_uri=" + CALLBACK
    )
    assert query_of(fake_authgear.silent_authorize(url))["error"] == ["invalid_request"]


async def async_whoami(request: HttpRequest) -> HttpResponse:
    """An async view that loads the user with ``await request.auser()`` (no thread)."""
    user = await request.auser()
    return HttpResponse(f"async page for {user.get_username()}")


urlpatterns = [*test_urlpatterns, path("async/whoami/", async_whoami)]


@pytest.mark.urls("tests.test_sso_check")
def test_an_async_view_awaiting_the_user_gets_the_check_too(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Through Django's async handler, where the view awaits ``request.auser()``."""
    browser = AsyncClient()
    browser.cookies = logged_in.client.cookies
    headers = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    clock.shift(INTERVAL - 1)
    response = async_to_sync(browser.get)("/async/whoami/?tab=1", headers=headers)
    assert response.status_code == 200 and response.content == b"async page for jane"
    clock.shift(1)
    response = async_to_sync(browser.get)("/async/whoami/?tab=1", headers=headers)
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

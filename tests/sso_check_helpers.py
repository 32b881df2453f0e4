"""What the ``test_sso_check*`` modules share: a signed-in browser whose page loads are
navigations, and the way to the SSO check's redirect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from authgear_django.signals import login_revoked
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeUser

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

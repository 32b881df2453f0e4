"""``get_access_token`` / ``refresh_access_token`` raise ``NoAccessToken`` when there is no
usable token, and the Bearer auth keeps the token off a redirect whose target it cannot tell."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.http import HttpRequest
from django.test import Client, RequestFactory

from authgear_django.api import (
    NoAccessToken,
    authgear_session,
    get_access_token,
    refresh_access_token,
)
from authgear_django.models import AuthgearLogin
from authgear_django.refresh import Outcome
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def django_request(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> HttpRequest:
    assert login_flow.login(authgear_user).status_code == 302
    request = RequestFactory().get("/")
    request.session = login_flow.client.session
    return request


def anonymous_request() -> HttpRequest:
    request = RequestFactory().get("/")
    request.session = Client().session
    return request


def test_no_login_in_the_session_means_no_access_token() -> None:
    with pytest.raises(NoAccessToken) as raised:
        get_access_token(anonymous_request())
    assert raised.value.outcome is Outcome.ENDED


def test_a_forced_refresh_without_a_login_raises_and_calls_nobody(
    fake_authgear: FakeAuthgear,
) -> None:
    with pytest.raises(NoAccessToken):
        refresh_access_token(anonymous_request(), rejected_access_token="old")
    assert fake_authgear.calls["refresh"] == 0


def test_a_due_refresh_that_ends_the_login_raises(
    django_request: HttpRequest, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    clock.shift(1800)
    fake_authgear.fail(
        "refresh", status=400, body='{"error":"invalid_grant"}', content_type="application/json"
    )
    with pytest.raises(NoAccessToken) as raised:
        get_access_token(django_request)
    assert raised.value.outcome is Outcome.ENDED
    assert not AuthgearLogin.objects.exists()


def test_a_forced_refresh_authgear_refuses_raises(
    django_request: HttpRequest, fake_authgear: FakeAuthgear
) -> None:
    fake_authgear.fail(
        "refresh", status=400, body='{"error":"invalid_grant"}', content_type="application/json"
    )
    current = AuthgearLogin.objects.get().access_token
    with pytest.raises(NoAccessToken):
        refresh_access_token(django_request, rejected_access_token=current)


@pytest.mark.parametrize("stored", ["not-a-ciphertext", ""])
def test_an_unreadable_or_missing_stored_access_token_is_no_access_token(
    django_request: HttpRequest, stored: str
) -> None:
    AuthgearLogin.objects.update(encrypted_access_token=stored)
    with pytest.raises(NoAccessToken) as raised:
        get_access_token(django_request)
    assert raised.value.outcome is Outcome.ENDED


@pytest.mark.parametrize(
    "location",
    [
        "https://api.test:99999/x",  # a port out of range: urlsplit raises on .port
        "ftp://api.test/x",  # a scheme without a known port
    ],
)
def test_a_redirect_to_an_origin_that_cannot_be_told_drops_the_token(
    django_request: HttpRequest, fake_authgear: FakeAuthgear, location: str
) -> None:
    assert fake_authgear.mock is not None
    asked = "https://api.test/data"
    fake_authgear.mock.add(responses.GET, asked, status=302, headers={"Location": location})
    response = authgear_session(django_request).get(asked, allow_redirects=False)
    assert response.request.headers["Authorization"].startswith("Bearer ")  # really sent
    assert "Authorization" not in response.request.headers.copy()  # the next hop's headers

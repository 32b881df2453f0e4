"""The API helper (``authgear_session`` / ``AuthgearBearerAuth``) never hands the user's access
token to an origin the caller did not ask for: not through a redirect, not through the
refresh-and-retry after a 401, not through a reused session.

The APIs are faked at the HTTP boundary with ``responses`` (on the fake Authgear's mock, so any
request to an unregistered URL fails the test); what each one received is read back from
``mock.calls``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.http import HttpRequest
from django.test import RequestFactory

from authgear_django.api import AuthgearBearerAuth, authgear_session, refresh_access_token
from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db

API = "https://api.test"
OTHER = "https://evil.test"


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    return login_flow


@pytest.fixture
def django_request(logged_in: LoginFlow) -> HttpRequest:
    """A request of the logged-in browser, as a view calling an API would have it."""
    request = RequestFactory().get("/")
    request.session = logged_in.client.session
    return request


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}[parts.scheme]
    return parts.scheme, parts.hostname or "", parts.port or default_port


@dataclass
class Sent:
    url: str
    authorization: str | None


class FakeApis:
    """APIs at several origins: redirects, plain answers, and one that checks the token."""

    def __init__(self, fake_authgear: FakeAuthgear) -> None:
        assert fake_authgear.mock is not None
        self.mock: responses.RequestsMock = fake_authgear.mock
        self.authgear = fake_authgear.endpoint

    def redirect(self, url: str, location: str, status: int = 302) -> None:
        self.mock.add(responses.GET, url, status=status, headers={"Location": location})

    def answer(self, url: str, status: int, body: str = "") -> None:
        self.mock.add(responses.GET, url, status=status, body=body)

    def protected(self, url: str) -> None:
        """200 for the login's current access token, 401 for anything else (or none)."""

        def check(request: Any) -> Any:
            current = AuthgearLogin.objects.get().access_token
            if request.headers.get("Authorization") == f"Bearer {current}":
                return (200, {}, "data")
            return (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "")

        self.mock.add_callback(responses.GET, url, callback=check)

    def sent(self) -> list[Sent]:
        """Every request that reached an API (Authgear's own endpoints left out), in order."""
        return [
            Sent(call.request.url or "", call.request.headers.get("Authorization"))
            for call in self.mock.calls
            if not (call.request.url or "").startswith(self.authgear)
        ]

    def carrying_a_token_outside(self, asked_url: str) -> list[Sent]:
        """The requests that carried an Authorization header to an origin other than asked."""
        return [
            sent
            for sent in self.sent()
            if sent.authorization is not None and origin(sent.url) != origin(asked_url)
        ]


@pytest.fixture
def apis(fake_authgear: FakeAuthgear) -> FakeApis:
    return FakeApis(fake_authgear)


def current_token() -> str:
    return AuthgearLogin.objects.get().access_token


# --- the reported exploit -------------------------------------------------------------------


def test_cross_host_redirect_then_401_never_sends_the_token_to_the_other_host(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    apis.redirect(f"{API}/data", f"{OTHER}/steal")
    apis.answer(f"{OTHER}/steal", 401)

    response = authgear_session(django_request).get(f"{API}/data")

    assert response.status_code == 401  # the other host's answer, passed on untouched
    calls = apis.mock.calls
    api_calls = [c for c in calls if (c.request.url or "").startswith(API)]
    other_calls = [c for c in calls if (c.request.url or "").startswith(OTHER)]
    assert api_calls[0].request.headers["Authorization"] == f"Bearer {current_token()}"
    assert len(other_calls) == 1  # no retry towards an origin the caller did not ask for
    assert "Authorization" not in other_calls[0].request.headers
    assert fake_authgear.calls["refresh"] == 0


# --- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "target"),
    [
        (f"{API}/data", f"{OTHER}/x"),  # another host
        (f"{API}/data", "http://api.test/x"),  # https -> http on the same host
        (f"{API}/data", "https://api.test:8443/x"),  # another port on the same host
        ("http://api.test/data", "https://api.test/x"),  # http -> https: requests keeps auth
        (f"{API}/data", "//evil.test/x"),  # scheme-relative Location
    ],
)
@pytest.mark.parametrize("target_status", [200, 401])
def test_a_redirect_to_another_origin_never_carries_the_token(
    django_request: HttpRequest,
    apis: FakeApis,
    fake_authgear: FakeAuthgear,
    asked: str,
    target: str,
    target_status: int,
) -> None:
    absolute_target = "https:" + target if target.startswith("//") else target
    apis.redirect(asked, target)
    apis.answer(absolute_target, target_status)

    response = authgear_session(django_request).get(asked)

    assert response.status_code == target_status
    assert [s.url for s in apis.sent()] == [asked, absolute_target]
    assert apis.sent()[0].authorization == f"Bearer {current_token()}"
    assert apis.carrying_a_token_outside(asked) == []
    assert fake_authgear.calls["refresh"] == 0


@pytest.mark.parametrize("location", [f"{API}/moved", "/moved", "https://API.test:443/moved"])
def test_a_same_origin_redirect_keeps_the_token(
    django_request: HttpRequest, apis: FakeApis, location: str
) -> None:
    apis.redirect(f"{API}/data", location)
    apis.protected(location if location.startswith("https:") else f"{API}/moved")

    response = authgear_session(django_request).get(f"{API}/data")

    assert response.status_code == 200 and response.text == "data"
    assert [s.authorization for s in apis.sent()] == [f"Bearer {current_token()}"] * 2


def test_a_same_origin_redirect_then_401_refreshes_and_retries_there(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    old = current_token()
    apis.redirect(f"{API}/data", f"{API}/moved")
    apis.answer(f"{API}/moved", 401)  # the API considers the old token revoked
    apis.protected(f"{API}/moved")

    response = authgear_session(django_request).get(f"{API}/data")

    assert response.status_code == 200
    assert fake_authgear.calls["refresh"] == 1
    assert [(s.url, s.authorization) for s in apis.sent()] == [
        (f"{API}/data", f"Bearer {old}"),
        (f"{API}/moved", f"Bearer {old}"),
        (f"{API}/moved", f"Bearer {current_token()}"),
    ]
    assert current_token() != old


def test_a_retry_answered_by_a_redirect_elsewhere_does_not_carry_any_token_there(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    """requests builds the next hop from the request that got the 401 (the old token) and
    keeps Authorization on an http -> https upgrade: neither token may reach the new origin."""
    asked = "http://api.test/data"
    apis.answer(asked, 401)
    apis.redirect(asked, "https://api.test/elsewhere")
    apis.answer("https://api.test/elsewhere", 200, "elsewhere")

    response = authgear_session(django_request).get(asked)

    assert response.status_code == 200 and response.text == "elsewhere"
    assert fake_authgear.calls["refresh"] == 1
    assert [s.url for s in apis.sent()] == [asked, asked, "https://api.test/elsewhere"]
    assert apis.carrying_a_token_outside(asked) == []


def test_a_retry_answered_by_a_same_origin_redirect_carries_the_fresh_token(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    apis.answer(f"{API}/data", 401)
    apis.redirect(f"{API}/data", f"{API}/moved")
    apis.protected(f"{API}/moved")

    response = authgear_session(django_request).get(f"{API}/data")

    assert response.status_code == 200 and response.text == "data"
    assert fake_authgear.calls["refresh"] == 1
    assert apis.sent()[-1].authorization == f"Bearer {current_token()}"


# --- 401 retries ----------------------------------------------------------------------------


def test_a_401_from_the_asked_origin_refreshes_once_and_retries_once(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    old = current_token()
    apis.answer(f"{API}/data", 401)
    apis.protected(f"{API}/data")

    response = requests.get(f"{API}/data", auth=AuthgearBearerAuth(django_request), timeout=5)

    assert response.status_code == 200
    assert [s.authorization for s in apis.sent()] == [f"Bearer {old}", f"Bearer {current_token()}"]
    assert fake_authgear.calls["refresh"] == 1


def test_a_second_401_is_passed_on_without_another_refresh(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    apis.answer(f"{API}/data", 401)
    apis.redirect(f"{API}/data", f"{API}/moved")
    apis.answer(f"{API}/moved", 401)

    response = authgear_session(django_request).get(f"{API}/data")

    assert response.status_code == 401
    assert fake_authgear.calls["refresh"] == 1
    assert len(apis.sent()) == 3


def test_a_401_after_a_round_trip_through_another_origin_retries_only_at_the_asked_origin(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    """A -> B -> A: B never sees a token; A's 401 came to a request without one, so there is
    no rejected token to refresh against: the current token is attached, nothing refreshed."""
    apis.redirect(f"{API}/data", f"{OTHER}/bounce")
    apis.redirect(f"{OTHER}/bounce", f"{API}/back")
    apis.protected(f"{API}/back")

    response = authgear_session(django_request).get(f"{API}/data")

    assert response.status_code == 200
    assert [s.url for s in apis.sent()] == [
        f"{API}/data",
        f"{OTHER}/bounce",
        f"{API}/back",
        f"{API}/back",
    ]
    assert apis.carrying_a_token_outside(f"{API}/data") == []
    assert apis.sent()[-1].authorization == f"Bearer {current_token()}"
    assert fake_authgear.calls["refresh"] == 0


def test_an_empty_rejected_token_is_nothing_to_compare_so_the_forced_refresh_happens(
    django_request: HttpRequest, fake_authgear: FakeAuthgear
) -> None:
    old = current_token()

    new = refresh_access_token(django_request, rejected_access_token="")

    assert fake_authgear.calls["refresh"] == 1
    assert new != old and new == current_token()


# --- the invariant, over every path ---------------------------------------------------------


def test_the_token_never_reaches_a_second_origin_whatever_the_path(
    django_request: HttpRequest, apis: FakeApis, fake_authgear: FakeAuthgear
) -> None:
    """One session, reused: each call's token stays with the origin that call asked for."""
    api = authgear_session(django_request)
    # a redirect chain across three origins, each answering 401
    apis.redirect(f"{API}/chain", "https://hop.test/1")
    apis.redirect("https://hop.test/1", f"{OTHER}/2")
    apis.answer(f"{OTHER}/2", 401)
    assert api.get(f"{API}/chain").status_code == 401
    assert apis.carrying_a_token_outside(f"{API}/chain") == []

    # the same session, asked for another URL of another origin that bounces to api.test
    apis.mock.calls.reset()
    apis.redirect(f"{OTHER}/start", f"{API}/target")
    apis.answer(f"{API}/target", 401)
    assert api.get(f"{OTHER}/start").status_code == 401
    assert apis.sent()[0].authorization is not None  # the caller asked for evil.test this time
    assert apis.carrying_a_token_outside(f"{OTHER}/start") == []

    # and back at api.test, a plain 401 is still refreshed and retried once
    apis.mock.calls.reset()
    apis.answer(f"{API}/plain", 401)
    apis.protected(f"{API}/plain")
    assert api.get(f"{API}/plain").status_code == 200
    assert apis.carrying_a_token_outside(f"{API}/plain") == []
    assert fake_authgear.calls["refresh"] == 1


def test_a_redirect_not_followed_offers_a_next_request_without_the_token(
    django_request: HttpRequest, apis: FakeApis
) -> None:
    asked = "http://api.test/data"
    apis.redirect(asked, "https://api.test/x")  # an upgrade: requests itself keeps the header
    apis.answer("https://api.test/x", 200)
    api = authgear_session(django_request)

    response = api.get(asked, allow_redirects=False)
    assert response.next is not None
    assert "Authorization" not in response.next.headers
    api.send(response.next, timeout=5)

    assert [s.url for s in apis.sent()] == [asked, "https://api.test/x"]
    assert apis.carrying_a_token_outside(asked) == []
    assert apis.sent()[0].authorization == f"Bearer {current_token()}"  # what was really sent

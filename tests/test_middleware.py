"""``TokenRefreshMiddleware`` works lazily: only a request that reads the user pays for the check.

The check is hooked into Django's lazy ``request.user`` (and ``request.auser``): a view that
never reads the user loads no session and makes no query; one that does is refreshed, logged
out or refused exactly as before, whether the user is read by the view, by a middleware after
ours, on the sync or on the async path. The views live here (``pytest.mark.urls``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import django
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path

from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_middleware")]

VIEW_RAN: list[str] = []  # what views did past their first read of the user


def never_reads_the_user(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no user needed")


def reads_the_user(request: HttpRequest) -> HttpResponse:
    name = request.user.get_username() if request.user.is_authenticated else "anonymous"
    VIEW_RAN.append(name)
    return HttpResponse(f"hello {name}")


async def async_never_reads_the_user(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no user needed")


async def async_reads_the_user(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    name = user.get_username() if user.is_authenticated else "anonymous"
    VIEW_RAN.append(name)
    return HttpResponse(f"hello {name}")


async def async_reads_the_user_in_a_thread(request: HttpRequest) -> HttpResponse:
    name = await sync_to_async(lambda: request.user.get_username())()
    VIEW_RAN.append(name)
    return HttpResponse(f"hello {name}")


urlpatterns = [
    path("public/", never_reads_the_user),
    path("private/", reads_the_user),
    path("async-public/", async_never_reads_the_user),
    path("async-private/", async_reads_the_user),
    path("async-thread/", async_reads_the_user_in_a_thread),
    path("auth/", include("authgear_django.urls")),
]

LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"
NEEDS_LOGIN_REQUIRED_MIDDLEWARE = pytest.mark.skipif(
    django.VERSION < (5, 1), reason="LoginRequiredMiddleware is new in Django 5.1"
)
NEEDS_AUSER = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="request.auser is new in Django 5.0"
)
ASYNC_VIEWS = [
    pytest.param("/async-private/", id="auser", marks=NEEDS_AUSER),
    pytest.param("/async-thread/", id="user"),
]


@pytest.fixture(autouse=True)
def _forget_views() -> Iterator[None]:
    VIEW_RAN.clear()
    yield
    VIEW_RAN.clear()


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    return login_flow


def async_get(flow: LoginFlow, url: str, **extra: Any) -> Any:
    """One request through Django's async handler with the flow's session cookie."""
    client = AsyncClient()
    client.cookies = flow.client.cookies

    async def fetch() -> Any:
        try:
            return await client.get(url, **extra)
        finally:  # the request's database connection lives in asgiref's worker thread
            await sync_to_async(connections.close_all)()

    return asyncio.run(fetch())


# --- a view that never reads the user --------------------------------------------------------


def test_a_view_that_never_reads_the_user_makes_no_query(
    logged_in: LoginFlow, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        assert logged_in.client.get("/public/").status_code == 200


def test_a_due_refresh_waits_for_a_view_that_reads_the_user(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, django_assert_num_queries: Any
) -> None:
    clock.shift(1800)  # expired: the refresh is due
    with django_assert_num_queries(0):
        assert logged_in.client.get("/public/").status_code == 200
    assert fake_authgear.calls["refresh"] == 0
    assert logged_in.client.get("/private/").content == b"hello jane"
    assert fake_authgear.calls["refresh"] == 1


# --- the sync path: a view that reads the user -----------------------------------------------


def test_a_fresh_login_reads_the_user_with_plain_djangos_two_queries(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(2):  # the session row and the user row
        assert logged_in.client.get("/private/").content == b"hello jane"
    assert fake_authgear.calls["refresh"] == 0


def test_a_dead_login_is_logged_out_before_the_view_goes_on(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    for grant in fake_authgear.grants.values():
        grant.revoked = True
    clock.shift(1800)
    response = logged_in.client.get("/private/?tab=2")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Fprivate%2F%3Ftab%3D2"
    assert VIEW_RAN == []  # stopped where it read the user, as anonymous neither
    assert AuthgearLogin.objects.count() == 0
    assert "_auth_user_id" not in logged_in.client.session


def test_a_dead_login_answers_json_401_to_api_callers(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.fail(
        "refresh", status=400, body='{"error":"invalid_grant"}', content_type="application/json"
    )
    clock.shift(1800)
    response = logged_in.client.get("/private/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "login_expired"
    assert VIEW_RAN == []


def test_authgear_down_past_expiry_answers_503_and_keeps_the_login(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, settings: Any
) -> None:
    settings.AUTHGEAR_EAGER_REFRESH = True  # lazy: tests/test_refresh_lazy.py
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(1800 + 31)  # past expiry and AUTHGEAR_REFRESH_GRACE
    response = logged_in.client.get("/private/")
    assert response.status_code == 503 and response["Retry-After"]
    assert VIEW_RAN == []
    assert AuthgearLogin.objects.count() == 1


@NEEDS_LOGIN_REQUIRED_MIDDLEWARE
def test_a_middleware_after_ours_reading_the_user_gets_the_logout_not_a_500(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """``LoginRequiredMiddleware`` reads the user in ``process_view``, outside the view."""
    for grant in fake_authgear.grants.values():
        grant.revoked = True
    clock.shift(1800)
    middleware = [*settings.MIDDLEWARE, LOGIN_REQUIRED]
    client = Client(raise_request_exception=True)
    client.cookies = logged_in.client.cookies
    with override_settings(MIDDLEWARE=middleware):
        response = client.get("/private/")
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login/?next=")
    assert VIEW_RAN == []
    assert AuthgearLogin.objects.count() == 0


@NEEDS_LOGIN_REQUIRED_MIDDLEWARE
def test_a_middleware_after_ours_reading_the_user_gets_the_refresh(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    clock.shift(1800)
    client = Client()
    client.cookies = logged_in.client.cookies
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, LOGIN_REQUIRED]):
        assert client.get("/private/").content == b"hello jane"
    assert fake_authgear.calls["refresh"] == 1


# --- the async path ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_async_a_view_that_never_reads_the_user_makes_no_query(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, django_assert_num_queries: Any
) -> None:
    clock.shift(1800)  # even with a refresh due
    with django_assert_num_queries(0):
        assert async_get(logged_in, "/async-public/").status_code == 200
    assert fake_authgear.calls["refresh"] == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ASYNC_VIEWS)
def test_async_a_due_refresh_happens_when_the_view_reads_the_user(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, url: str
) -> None:
    assert async_get(logged_in, url).content == b"hello jane"
    assert fake_authgear.calls["refresh"] == 0
    clock.shift(1800)
    assert async_get(logged_in, url).content == b"hello jane"
    assert fake_authgear.calls["refresh"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ASYNC_VIEWS)
def test_async_a_dead_login_is_logged_out_before_the_view_goes_on(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, url: str
) -> None:
    for grant in fake_authgear.grants.values():
        grant.revoked = True
    clock.shift(1800)
    response = async_get(logged_in, url, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "login_expired"
    assert VIEW_RAN == []
    assert AuthgearLogin.objects.count() == 0


# --- the liveness check (AUTHGEAR_SESSION_CHECK_INTERVAL) ---------------------------------------

CHECK_INTERVAL = 300  # the default


def test_inside_the_check_interval_a_request_adds_no_query_and_no_call(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, django_assert_num_queries: Any
) -> None:
    calls = sum(fake_authgear.calls.values())
    for _ in range(3):
        clock.shift((CHECK_INTERVAL - 1) // 3)
        with django_assert_num_queries(2):  # the session row and the user row, as plain Django
            assert logged_in.client.get("/private/").content == b"hello jane"
    assert sum(fake_authgear.calls.values()) == calls


def test_a_due_check_waits_for_a_view_that_reads_the_user(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, django_assert_num_queries: Any
) -> None:
    clock.shift(CHECK_INTERVAL)
    with django_assert_num_queries(0):
        assert logged_in.client.get("/public/").status_code == 200
    assert fake_authgear.calls["userinfo"] == 1  # the login's only
    assert logged_in.client.get("/private/").content == b"hello jane"
    assert fake_authgear.calls["userinfo"] == 2
    with django_assert_num_queries(2):  # confirmed: back on the hot path
        assert logged_in.client.get("/private/").content == b"hello jane"
    assert fake_authgear.calls["userinfo"] == 2


def test_an_ended_session_is_stopped_before_the_view_goes_on(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    fake_authgear.end_sessions_of(authgear_user)
    clock.shift(CHECK_INTERVAL)
    response = logged_in.client.get("/private/")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Fprivate%2F"
    assert VIEW_RAN == []
    assert AuthgearLogin.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@NEEDS_AUSER
def test_async_inside_the_check_interval_no_call_and_outside_one_check(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, django_assert_num_queries: Any
) -> None:
    clock.shift(CHECK_INTERVAL - 1)
    assert async_get(logged_in, "/async-private/").content == b"hello jane"
    assert fake_authgear.calls["userinfo"] == 1
    clock.shift(1)
    with django_assert_num_queries(0):
        assert async_get(logged_in, "/async-public/").status_code == 200
    assert fake_authgear.calls["userinfo"] == 1
    assert async_get(logged_in, "/async-private/").content == b"hello jane"
    assert fake_authgear.calls["userinfo"] == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ASYNC_VIEWS)
def test_async_an_ended_session_is_logged_out_before_the_view_goes_on(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any, url: str
) -> None:
    fake_authgear.end_sessions_of(authgear_user)
    clock.shift(CHECK_INTERVAL)
    response = async_get(logged_in, url, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "login_expired"
    assert VIEW_RAN == []
    assert AuthgearLogin.objects.count() == 0
    assert fake_authgear.calls["userinfo"] == 2 and fake_authgear.calls["refresh"] == 0

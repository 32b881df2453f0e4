"""``bearer_token_required`` and ``reauthentication_required`` on sync and ``async def`` views.

Each behaviour runs twice: the sync view through Django's ``Client`` and its ``async def`` twin
(``tests/urls.py``) through ``AsyncClient``, i.e. Django's async handler, as under ASGI. The
async requests run under ``async_to_sync``, so the decorators' thread-sensitive work happens in
the test's thread and sees its database transaction.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.contrib.auth import get_user_model
from django.http.cookie import SimpleCookie
from django.test import AsyncClient, Client

from authgear_django.models import AuthgearLogin
from tests import urls
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
FLAVOURS = ["sync", "async"]


@pytest.fixture(autouse=True)
def _fresh_validator() -> None:
    from authgear_django import bearer

    bearer._validators.clear()  # per-process key and token caches: start each test cold


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def view_path(flavour: str, path: str) -> str:
    """The sync view's path, or its async twin's (``/async`` in front)."""
    return path if flavour == "sync" else f"/async{path}"


def get(flavour: str, path: str, cookies: SimpleCookie | None = None, **extra: Any) -> Any:
    """GET through the sync handler (``Client``) or the async one (``AsyncClient``)."""
    if flavour == "sync":
        client = Client()
        if cookies is not None:
            client.cookies = cookies
        return client.get(path, **extra)
    async_client = AsyncClient()
    if cookies is not None:
        async_client.cookies = cookies

    async def fetch() -> Any:  # an async def: asgiref warns about Django 4.2's sync .get
        return await async_client.get(path, **extra)

    return async_to_sync(fetch)()


def bearer(token: str) -> dict[str, str]:
    """``headers=`` works for both clients (``AsyncClient`` puts ``HTTP_*`` keywords in the
    ASGI scope, not among the headers)."""
    return {"Authorization": f"Bearer {token}"}


def params_of(url: str) -> dict[str, str]:
    return {key: value[0] for key, value in parse_qs(urlsplit(url).query).items()}


# --- the wrapper keeps the view's flavour ----------------------------------------------------


@pytest.mark.parametrize(
    ("sync_view", "async_view"),
    [
        (urls.api_me, urls.async_api_me),
        (urls.api_orders, urls.async_api_orders),
        (urls.sensitive, urls.async_sensitive),
    ],
    ids=["bearer", "bearer-scopes", "reauthentication"],
)
def test_the_wrapper_is_async_exactly_when_the_view_is(sync_view: Any, async_view: Any) -> None:
    """Regression: an async view got a sync wrapper, so Django got back an unawaited coroutine
    (a 500 at best). A sync view must stay sync: Django would otherwise switch threads."""
    assert iscoroutinefunction(async_view)
    assert not iscoroutinefunction(sync_view)


def test_bearer_views_are_csrf_exempt_in_both_flavours() -> None:
    assert getattr(urls.api_me, "csrf_exempt", False) is True
    assert getattr(urls.async_api_me, "csrf_exempt", False) is True


# --- bearer_token_required ---------------------------------------------------------------------


@pytest.fixture
def person(fake_authgear: FakeAuthgear) -> FakeUser:
    person = FakeUser()
    LoginFlow(Client(), fake_authgear).login(person)  # links the Django user to the sub
    return person


def test_a_valid_token_reaches_the_view_as_its_user(
    fake_authgear: FakeAuthgear, person: FakeUser, flavour: str
) -> None:
    """The async twin reads the user with ``await request.auser()``: the token's user, not the
    (anonymous) session user Django's ``auser`` would load."""
    token = fake_authgear.jwt_access_token(person, scope="openid orders:read")
    response = get(flavour, view_path(flavour, "/api/me/"), headers=bearer(token))
    assert response.status_code == 200, response.content
    assert json.loads(response.content) == {
        "sub": person.sub,
        "username": "jane",
        "scopes": ["openid", "orders:read"],
    }
    orders = get(flavour, view_path(flavour, "/api/orders/"), headers=bearer(token))
    assert orders.status_code == 200
    assert json.loads(orders.content) == {"orders": []}


def test_no_token_is_401_with_a_bearer_challenge(fake_authgear: FakeAuthgear, flavour: str) -> None:
    response = get(flavour, view_path(flavour, "/api/me/"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert json.loads(response.content)["error"] == "invalid_request"


def test_a_forged_token_is_401_invalid_token(
    fake_authgear: FakeAuthgear, person: FakeUser, flavour: str
) -> None:
    from tests.fake_authgear import break_signature

    token = break_signature(fake_authgear.jwt_access_token(person))
    response = get(flavour, view_path(flavour, "/api/me/"), headers=bearer(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_a_token_without_the_scope_is_403_insufficient_scope(
    fake_authgear: FakeAuthgear, person: FakeUser, flavour: str
) -> None:
    token = fake_authgear.jwt_access_token(person, scope="openid")
    response = get(flavour, view_path(flavour, "/api/orders/"), headers=bearer(token))
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="orders:read"'
    )
    assert json.loads(response.content)["error"] == "insufficient_scope"


def test_authgear_keys_down_is_503_with_retry_after(
    fake_authgear: FakeAuthgear, person: FakeUser, flavour: str
) -> None:
    fake_authgear.rotate_signing_key()  # a kid we have not seen: the keys must be fetched
    token = fake_authgear.jwt_access_token(person)
    fake_authgear.fail("jwks", status=503)
    response = get(flavour, view_path(flavour, "/api/me/"), headers=bearer(token))
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "WWW-Authenticate" not in response
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


# --- reauthentication_required -----------------------------------------------------------------


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    login_flow.login(authgear_user)
    return login_flow


def test_anonymous_users_go_to_the_login_page(flavour: str) -> None:
    path = view_path(flavour, "/sensitive/")
    response = get(flavour, path)
    assert response.status_code == 302
    assert response["Location"] == f"/auth/login/?next={path}"


def test_a_recent_sign_in_gets_in(logged_in: LoginFlow, clock: Any, flavour: str) -> None:
    clock.shift(299)
    response = get(flavour, view_path(flavour, "/sensitive/"), logged_in.client.cookies)
    assert response.status_code == 200
    assert response.content == b"sensitive for jane"


def test_an_old_sign_in_goes_through_authgear_reauthentication_and_back(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
    flavour: str,
) -> None:
    old_id_token = AuthgearLogin.objects.get().id_token
    path = view_path(flavour, "/sensitive/") + "?tab=1"
    clock.shift(301)
    response = get(flavour, path, logged_in.client.cookies)
    assert response.status_code == 302
    params = params_of(response["Location"])
    assert params["prompt"] == "login" and params["max_age"] == "300"
    assert params["id_token_hint"] == old_id_token
    callback = fake_authgear.authorize(response["Location"], authgear_user)
    assert logged_in.client.get(callback)["Location"] == path
    response = get(flavour, path, logged_in.client.cookies)
    assert response.status_code == 200
    assert response.content == b"sensitive for jane"


def test_a_password_user_gets_the_403_page(fake_authgear: FakeAuthgear, flavour: str) -> None:
    get_user_model().objects.create_user("admin", password="pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = get(flavour, view_path(flavour, "/sensitive/"), client.cookies)
    assert response.status_code == 403
    assert b"only for users who sign in with Authgear" in response.content


def test_a_dead_login_is_logged_out_before_the_view_runs(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, flavour: str
) -> None:
    """The refresh middleware's stop, raised where the decorator reads the user (in a thread
    for the async view), still becomes its redirect to the login page."""
    for grant in fake_authgear.grants.values():
        grant.revoked = True
    clock.shift(1800)
    path = view_path(flavour, "/sensitive/")
    response = get(flavour, path, logged_in.client.cookies)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/auth/login/"
    assert params_of(response["Location"]) == {"next": path}
    assert AuthgearLogin.objects.count() == 0

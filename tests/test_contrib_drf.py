"""``authgear_django.contrib.drf``: how Authgear access tokens map to DRF's answers.

Tokens are really signed by the fake Authgear; the views are real DRF views. This module is
also the URLconf of its tests: one view that accepts a Django session as well as a bearer
token, to show that the scope permission needs an Authgear token whatever else logged in.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import include, path
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from authgear_django.contrib.drf import AuthgearAccessTokenAuthentication, HasAuthgearScopes
from authgear_django.models import AuthgearAccount
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

User = get_user_model()


class SessionOrToken(APIView):  # type: ignore[misc]
    """Session first, then bearer token; the scope permission decides (DRF is untyped)."""

    authentication_classes = [SessionAuthentication, AuthgearAccessTokenAuthentication]
    permission_classes = [HasAuthgearScopes]
    required_scopes = ["orders:read"]

    def get(self, request: Any) -> Response:
        return Response({"user": request.user.get_username()})


urlpatterns = [path("mixed/", SessionOrToken.as_view()), path("", include("tests.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_contrib_drf")]


@pytest.fixture(autouse=True)
def _fresh_validator() -> None:
    from authgear_django import bearer

    bearer._validators.clear()  # per-process key caches: each test starts cold


@pytest.fixture
def person(fake_authgear: FakeAuthgear) -> FakeUser:
    person = FakeUser()
    assert LoginFlow(Client(), fake_authgear).login(person).status_code == 302
    return person


def call(path: str, token: str | None = None, client: Client | None = None) -> Any:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return (client or Client()).get(path, **headers)


def test_a_valid_token_of_an_unlinked_user_is_403_permission_denied(
    fake_authgear: FakeAuthgear,
) -> None:
    stranger = FakeUser()  # never logged in here: no Django user is linked to the sub
    response = call("/drf/me/", fake_authgear.jwt_access_token(stranger))
    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": "no user here is linked to this token"}


def test_a_valid_token_of_an_inactive_user_is_403_permission_denied(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    User.objects.filter(pk=AuthgearAccount.objects.get(sub=person.sub).user_id).update(
        is_active=False
    )
    response = call("/drf/me/", fake_authgear.jwt_access_token(person))
    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": "the user is inactive"}


def test_a_request_without_a_bearer_token_is_not_authenticated_by_us(
    fake_authgear: FakeAuthgear,
) -> None:
    """No token: ``authenticate`` steps aside, and DRF answers 401 with our challenge."""
    response = Client().get("/drf/orders/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert sum(fake_authgear.calls.values()) == 0  # nothing was validated


def test_a_session_login_does_not_satisfy_the_scope_permission(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    """Logged in through the browser, but no access token: no scopes, so refused."""
    browser = LoginFlow(Client(), fake_authgear)
    assert browser.login(person).status_code == 302
    response = call("/mixed/", client=browser.client)
    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": HasAuthgearScopes.message}


def test_a_bearer_token_with_the_scope_passes_where_a_session_cannot(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    token = fake_authgear.jwt_access_token(person, scope="openid orders:read")
    response = call("/mixed/", token)
    assert response.status_code == 200
    assert json.loads(response.content) == {"user": "jane"}
    lacking = fake_authgear.jwt_access_token(person, scope="openid")
    assert call("/mixed/", lacking).status_code == 403


def test_authgear_keys_unavailable_is_503_not_a_failed_authentication(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    """The token cannot be judged now: a client must retry, not treat itself as logged out."""
    fake_authgear.rotate_signing_key()  # a kid we have not seen: the keys must be fetched
    token = fake_authgear.jwt_access_token(person)
    fake_authgear.fail("jwks", status=503)
    response = call("/drf/me/", token)
    assert response.status_code == 503
    detail = json.loads(response.content)["detail"]
    assert detail and token not in detail
    assert "WWW-Authenticate" not in response

"""API views protected by Authgear access tokens: plain Django decorator and DRF."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.bearer import get_validator
from authgear_django.models import AuthgearAccount
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser, rsa_key

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def _fresh_validator() -> None:
    from authgear_django import bearer

    bearer._validators.clear()  # per-process key and token caches: start each test cold


@pytest.fixture
def person(fake_authgear: FakeAuthgear) -> FakeUser:
    person = FakeUser()
    LoginFlow(Client(), fake_authgear).login(person)  # links the Django user to the sub
    return person


def call(path: str, token: str | None, **headers: Any) -> Any:
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Client().get(path, **headers)


def test_valid_jwt_access_token_gets_the_linked_user(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    token = fake_authgear.jwt_access_token(person, scope="openid offline_access orders:read")
    response = call("/api/me/", token)
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "sub": person.sub,
        "username": "jane",
        "scopes": ["offline_access", "openid", "orders:read"],
    }
    assert call("/api/orders/", token).status_code == 200


def test_scheme_is_case_insensitive(fake_authgear: FakeAuthgear, person: FakeUser) -> None:
    token = fake_authgear.jwt_access_token(person)
    assert Client().get("/api/me/", HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 2400}, "expired"),
        ({"aud": ["https://other.authgear.test"]}, "aud"),
        ({"aud": ["a1b2c3d4e5f60718"]}, "aud"),  # an ID token's audience, not the API's
        ({"iss": "https://evil.example"}, "iss"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"header_typ": "JWT"}, "typ"),
        ({"header_typ": None}, "typ"),
        ({"header_crit": ["exp"], "header_exp": 1}, "crit"),
        ({"header_kid": "unknown-key"}, "unknown key"),
        ({"sub": None}, "subject"),
    ],
    ids=[
        "expired",
        "wrong-aud",
        "id-token-aud",
        "wrong-iss",
        "nbf",
        "id-token-typ",
        "no-typ",
        "crit",
        "unknown-kid",
        "no-sub",
    ],
)
def test_invalid_tokens_get_401_with_www_authenticate(
    fake_authgear: FakeAuthgear, person: FakeUser, change: dict[str, Any], reason: str
) -> None:
    response = call("/api/me/", fake_authgear.jwt_access_token(person, **change))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    body = json.loads(response.content)
    assert body["error"] == "invalid_token" and reason in body["error_description"]


@pytest.mark.parametrize(
    "attack",
    [
        "alg-none",
        "hs256-client-secret",
        "other-key",
        "tampered",
        "garbage",
        "junk-in-signature",
        "not-jwt",
    ],
)
def test_forged_tokens_get_401(fake_authgear: FakeAuthgear, person: FakeUser, attack: str) -> None:
    good = fake_authgear.jwt_access_token(person)
    claims = jwt.decode(good, options={"verify_signature": False})
    header = {"kid": fake_authgear.kid, "typ": "at+jwt"}
    forged = {
        "alg-none": lambda: jwt.encode(claims, None, algorithm="none", headers=header),
        "hs256-client-secret": lambda: jwt.encode(
            claims, fake_authgear.client_secret, algorithm="HS256", headers=header
        ),
        "other-key": lambda: fake_authgear.sign(claims, header=header, key=rsa_key("attacker")),
        "tampered": lambda: (
            good.split(".")[0]
            + "."
            + jwt.utils.base64url_encode(
                json.dumps({**claims, "sub": "someone-else"}).encode()
            ).decode()
            + "."
            + good.split(".")[2]
        ),
        "garbage": lambda: "a.b.c",
        "junk-in-signature": lambda: good[:-10] + "!" + good[-10:],
        "not-jwt": lambda: "q8ZkT1vN4mR7xW2bY5cH9jL3pF6sD0gA",
    }[attack]()
    response = call("/api/me/", forged)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_missing_token_gets_401_with_a_bearer_challenge(fake_authgear: FakeAuthgear) -> None:
    response = call("/api/me/", None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert call("/api/me/", None, HTTP_AUTHORIZATION="Basic dXNlcjpwdw==").status_code == 401


def test_missing_scope_gets_403(fake_authgear: FakeAuthgear, person: FakeUser) -> None:
    response = call("/api/orders/", fake_authgear.jwt_access_token(person, scope="openid"))
    assert response.status_code == 403
    assert 'error="insufficient_scope", scope="orders:read"' in response["WWW-Authenticate"]


def test_unknown_user_is_403_unless_creation_is_allowed(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    stranger = FakeUser(email="new@example.com")
    token = fake_authgear.jwt_access_token(stranger)
    assert call("/api/me/", token).status_code == 403
    assert not AuthgearAccount.objects.exists()
    settings.AUTHGEAR_API_CREATE_USERS = True
    response = call("/api/me/", token)
    assert response.status_code == 200
    assert AuthgearAccount.objects.get().sub == stranger.sub
    assert User.objects.get().email == "new@example.com"


def test_inactive_user_is_403(fake_authgear: FakeAuthgear, person: FakeUser) -> None:
    User.objects.update(is_active=False)
    assert call("/api/me/", fake_authgear.jwt_access_token(person)).status_code == 403


def test_keys_are_fetched_once_and_rotation_needs_one_refetch(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    for _ in range(3):
        assert call("/api/me/", fake_authgear.jwt_access_token(person)).status_code == 200
    jwks_calls = fake_authgear.calls["jwks"]
    fake_authgear.rotate_signing_key()
    assert call("/api/me/", fake_authgear.jwt_access_token(person)).status_code == 200
    assert fake_authgear.calls["jwks"] == jwks_calls + 1
    calls = sum(fake_authgear.calls.values())
    for _ in range(5):
        assert call("/api/me/", fake_authgear.jwt_access_token(person)).status_code == 200
    assert sum(fake_authgear.calls.values()) == calls  # no network once keys are known


def test_keys_unavailable_is_503_not_500(fake_authgear: FakeAuthgear, person: FakeUser) -> None:
    from django.core.cache import cache

    cache.clear()  # the login cached the JWKS; start with none, and Authgear down
    fake_authgear.fail("jwks", exception=CONNECTION_REFUSED)
    response = call("/api/me/", fake_authgear.jwt_access_token(person))
    assert response.status_code == 503
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


def test_a_validated_token_is_cached_only_until_it_expires(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    import time_machine

    with time_machine.travel(time.time(), tick=False) as clock:
        token = fake_authgear.jwt_access_token(person, lifetime=120)
        assert call("/api/me/", token).status_code == 200
        assert token in get_validator()._validated
        clock.shift(170)  # within the 60 s leeway
        assert call("/api/me/", token).status_code == 200
        clock.shift(20)
        assert call("/api/me/", token).status_code == 401


def test_opaque_tokens_use_userinfo_with_a_short_cache(
    fake_authgear: FakeAuthgear, person: FakeUser, settings: Any
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(person)
    from authgear_django.models import AuthgearLogin

    opaque = AuthgearLogin.objects.order_by("-created_at").first().access_token
    assert call("/api/me/", opaque).status_code == 401  # off by default
    settings.AUTHGEAR_API_OPAQUE_TOKENS = True
    before = fake_authgear.calls["userinfo"]
    for _ in range(3):
        response = call("/api/me/", opaque)
        assert response.status_code == 200
        assert json.loads(response.content)["sub"] == person.sub
    assert fake_authgear.calls["userinfo"] == before + 1
    assert call("/api/me/", "not-a-valid-opaque-token").status_code == 401
    assert call("/api/orders/", opaque).status_code == 403  # scopes need JWT access tokens


def test_drf_authentication_and_scope_permission(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    good = fake_authgear.jwt_access_token(person, scope="orders:read")
    response = call("/drf/me/", good)
    assert response.status_code == 200
    assert json.loads(response.content) == {"sub": person.sub, "username": "jane"}
    assert call("/drf/orders/", good).status_code == 200
    assert (
        call("/drf/orders/", fake_authgear.jwt_access_token(person, scope="openid")).status_code
        == 403
    )
    expired = fake_authgear.jwt_access_token(person, exp=int(time.time()) - 3600)
    response = call("/drf/me/", expired)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert call("/drf/me/", None).status_code in (401, 403)  # DRF: no credentials

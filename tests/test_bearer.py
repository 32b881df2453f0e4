"""Bearer-protected views under malformed tokens, and the ``AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS``
allow-list, end to end through the decorator and DRF."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from authgear_django.conf import conf
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
OTHER_CLIENT = "0000111122223333"


@pytest.fixture(autouse=True)
def _fresh_validator() -> None:
    from authgear_django import bearer

    bearer._validators.clear()  # per-process key and token caches: start each test cold


@pytest.fixture
def person(fake_authgear: FakeAuthgear) -> FakeUser:
    person = FakeUser()
    LoginFlow(Client(), fake_authgear).login(person)  # links the Django user to the sub
    return person


def call(path: str, authorization: str) -> Any:
    return Client().get(path, HTTP_AUTHORIZATION=authorization)


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("path", ["/api/me/", "/drf/me/"])
def test_a_deeply_nested_header_is_401_not_500(fake_authgear: FakeAuthgear, path: str) -> None:
    """Regression: ``json.loads`` raised RecursionError on the unverified header → HTTP 500."""
    token = f"{b64url(b'[' * 12_000)}.e30.{b64url(bytes(256))}"
    assert_invalid_token(call(path, f"Bearer {token}"))
    assert fake_authgear.calls["jwks"] == 0  # refused before any key is looked up


@pytest.mark.parametrize(
    "token",
    ["a\nb", "a€b", "a\x00b", "ab cd", "é", "a" * 20_000, "=abc", "a.b\r.c"],
    ids=["newline", "non-latin-1", "nul", "space", "latin-1", "huge", "leading-equals", "cr"],
)
def test_tokens_outside_the_rfc6750_syntax_never_reach_authgear(
    fake_authgear: FakeAuthgear, settings: Any, token: str
) -> None:
    """With opaque tokens on, such a token went to userinfo (a newline even gave a 503)."""
    settings.AUTHGEAR_API_OPAQUE_TOKENS = True
    response = call("/api/me/", f"Bearer {token}")
    assert_invalid_token(response)
    assert json.loads(response.content)["error_description"] == "the token is malformed"
    assert fake_authgear.calls["userinfo"] == 0


def test_any_client_of_the_project_by_default(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    assert conf.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS is None
    token = fake_authgear.jwt_access_token(person, client_id=OTHER_CLIENT)
    assert call("/api/me/", f"Bearer {token}").status_code == 200


def test_client_allow_list_refuses_other_clients(
    fake_authgear: FakeAuthgear, person: FakeUser, settings: Any
) -> None:
    other = fake_authgear.jwt_access_token(person, client_id=OTHER_CLIENT)
    ours = fake_authgear.jwt_access_token(person)
    assert call("/api/me/", f"Bearer {other}").status_code == 200  # validated and cached

    settings.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS = [fake_authgear.client_id]
    response = call("/api/me/", f"Bearer {other}")  # the cached answer must not leak through
    assert_invalid_token(response)
    assert "(client_id)" in json.loads(response.content)["error_description"]
    assert call("/drf/me/", f"Bearer {other}").status_code == 401
    assert call("/api/me/", f"Bearer {ours}").status_code == 200
    assert call("/drf/me/", f"Bearer {ours}").status_code == 200

    settings.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS = fake_authgear.client_id  # one ID as a string
    assert call("/api/me/", f"Bearer {ours}").status_code == 200
    assert call("/api/me/", f"Bearer {other}").status_code == 401


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("a1b2c3d4e5f60718", frozenset({"a1b2c3d4e5f60718"})),
        (["a1b2c3d4e5f60718", " 0000111122223333 "], frozenset({"a1b2c3d4e5f60718", OTHER_CLIENT})),
        (("a1b2c3d4e5f60718",), frozenset({"a1b2c3d4e5f60718"})),
    ],
)
def test_client_ids_setting_values(settings: Any, value: Any, expected: Any) -> None:
    settings.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS = value
    client_ids = conf.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS
    assert client_ids == expected


@pytest.mark.parametrize("value", [[], "", [""], [1], {"a1b2c3d4e5f60718": True}, 17])
def test_client_ids_setting_refuses_nonsense(settings: Any, value: Any) -> None:
    settings.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS = value
    with pytest.raises(ImproperlyConfigured, match="AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS"):
        _ = conf.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS


def test_an_access_token_without_typ_is_refused_at_the_view(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    token = fake_authgear.jwt_access_token(person, header_typ=None)
    response = call("/api/me/", f"Bearer {token}")
    assert_invalid_token(response)
    assert "(typ)" in json.loads(response.content)["error_description"]


def test_a_respelled_signature_is_refused_at_the_view(
    fake_authgear: FakeAuthgear, person: FakeUser
) -> None:
    token = fake_authgear.jwt_access_token(person)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    respelled = token[:-1] + alphabet[last ^ 1]  # a spare bit: the same signature bytes
    assert call("/api/me/", f"Bearer {token}").status_code == 200
    assert_invalid_token(call("/api/me/", f"Bearer {respelled}"))

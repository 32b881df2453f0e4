"""A callback with an invalid or forged ID token, or userinfo about someone else, is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.models import AuthgearAccount
from tests.callback_failure_helpers import assert_error_page, assert_nobody_logged_in, tamper
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser, rsa_key

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.mark.parametrize(
    "tampering",
    [
        tamper(iss="https://evil.example"),
        tamper(iss="https://authgear.test/"),
        tamper(aud=["someone-else"]),
        tamper(aud=["a1b2c3d4e5f60718", "other"]),  # several audiences and no azp
        tamper(azp="someone-else"),
        tamper(nonce="another-nonce"),
        tamper(nonce=None),
        tamper(sub=None),
        tamper(exp=int(time.time()) - 600, iat=int(time.time()) - 900),
        tamper(iat=int(time.time()) + 3600, exp=int(time.time()) + 4000),
        tamper(header_kid="unknown-kid"),
    ],
    ids=[
        "iss",
        "iss-slash",
        "aud",
        "multi-aud",
        "azp",
        "nonce",
        "no-nonce",
        "no-sub",
        "expired",
        "future-iat",
        "unknown-kid",
    ],
)
def test_invalid_id_tokens_are_refused(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    tampering: Callable[[dict[str, Any], dict[str, Any]], None],
) -> None:
    fake_authgear.id_token_tamper = tampering
    response = login_flow.login(authgear_user)
    assert_error_page(response, 400, b"could not verify your sign-in")
    assert User.objects.count() == 0 and AuthgearAccount.objects.count() == 0
    assert_nobody_logged_in(client)


def _swap_id_token(fake: FakeAuthgear, make: Callable[[dict[str, Any]], str]) -> None:
    """Replace the ID token of the next token response, keeping everything else genuine."""
    original = fake._issue

    def issue(grant: Any, *, nonce: str | None, with_refresh: bool) -> dict[str, Any]:
        body = original(grant, nonce=nonce, with_refresh=with_refresh)
        import jwt as pyjwt

        claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
        body["id_token"] = make(claims)
        return body

    fake._issue = issue  # type: ignore[method-assign]


@pytest.mark.parametrize("attack", ["alg-none", "hs256-with-client-secret", "other-key", "garbage"])
def test_forged_id_tokens_are_refused(
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    attack: str,
) -> None:
    import jwt as pyjwt

    def forge(claims: dict[str, Any]) -> str:
        if attack == "alg-none":
            return pyjwt.encode(claims, None, algorithm="none", headers={"kid": fake_authgear.kid})
        if attack == "hs256-with-client-secret":
            return pyjwt.encode(
                claims,
                fake_authgear.client_secret,
                algorithm="HS256",
                headers={"kid": fake_authgear.kid},
            )
        if attack == "other-key":
            return fake_authgear.sign(claims, key=rsa_key("attacker"))
        return "not.a.jwt"

    _swap_id_token(fake_authgear, forge)
    response = login_flow.login(authgear_user)
    assert_error_page(response, 400, b"could not verify your sign-in")
    assert_nobody_logged_in(client)


def test_userinfo_about_another_user_is_refused(
    login_flow: LoginFlow, client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    fake_authgear.userinfo_tamper = lambda claims: claims.update(sub="someone-else")
    assert_error_page(login_flow.login(authgear_user), 400, b"could not verify")
    assert_nobody_logged_in(client)

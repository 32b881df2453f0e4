"""A rotated refresh token is never lost, whatever happens to the ID token that came with it.

With rotation on, Authgear kills the old refresh token the moment it issues a new one. When the
refreshed ID token cannot be verified right now (a new ``kid`` while the JWKS cannot be
fetched), the new tokens are still stored and the ID token waits, marked on its row
(``id_token_unverified_since``, read under the row lock), for a verification retried after the
JWKS cooldown. Only a definite answer ends the login: a bad
signature with a known key, or another ``sub``, ``iss`` or ``aud`` (the OpenID RP conformance
refresh cases), and then the new refresh token is revoked at Authgear.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow, assert_session_entry
from tests.fake_authgear import (
    CONNECTION_REFUSED,
    READ_TIMEOUT,
    FakeAuthgear,
    FakeUser,
    public_jwk,
    rsa_key,
)

pytestmark = pytest.mark.django_db

JWKS_DOWN = {
    "500": {"status": 500},
    "timeout": {"exception": READ_TIMEOUT},
    "refused": {"exception": CONNECTION_REFUSED},
}


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser, settings: Any) -> Client:
    """A logged-in browser, Authgear rotating refresh tokens, roles mapped to groups (so that
    a verified ID token shows: its roles reach the user's groups, an unverified one's do not)."""
    settings.AUTHGEAR_ROLE_GROUPS = {"admin": ["Administrators"]}
    assert login_flow.login(authgear_user).status_code == 302
    login_flow.fake.rotation = True
    return login_flow.client


def sent_refresh_tokens(fake: FakeAuthgear) -> list[str]:
    """The ``refresh_token`` of every refresh grant, as the request bodies reached ``responses``."""
    tokens = []
    for call in fake.mock.calls:
        if call.request.url != fake.url("/oauth2/token"):
            continue
        form = parse_qs(call.request.body)
        if form.get("grant_type") == ["refresh_token"]:
            tokens.extend(form["refresh_token"])
    return tokens


def revoked_tokens(fake: FakeAuthgear) -> list[str]:
    return [
        token
        for call in fake.mock.calls
        if call.request.url == fake.url("/oauth2/revoke")
        for token in parse_qs(call.request.body)["token"]
    ]


def newest_refresh_token(fake: FakeAuthgear) -> str:
    """The refresh token Authgear issued last (live unless revoked)."""
    (grant,) = fake.grants.values()
    return f"{grant.grant_id}.{grant.refresh_secret}"


def groups_of_the_user() -> list[str]:
    user = get_user_model().objects.get()
    return sorted(user.groups.values_list("name", flat=True))


def unverified_kid(token: str | None) -> str:
    assert token is not None
    return str(jwt.get_unverified_header(token)["kid"])


@pytest.mark.parametrize("fault", JWKS_DOWN.values(), ids=JWKS_DOWN.keys())
def test_new_tokens_are_kept_when_the_new_key_cannot_be_fetched(
    logged_in: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
    fault: dict[str, Any],
) -> None:
    first_refresh_token = AuthgearLogin.objects.get().refresh_token
    fake_authgear.rotate_signing_key()  # the refreshed ID token has a kid we have never seen
    fake_authgear.fail("jwks", **fault)
    authgear_user.roles = ["admin"]
    clock.shift(1800)

    assert logged_in.get("/private/").status_code == 200  # still logged in
    login = AuthgearLogin.objects.get()
    assert login.refresh_token != first_refresh_token
    assert login.refresh_token == newest_refresh_token(fake_authgear)  # decrypted: the new one
    assert fake_authgear.live_refresh_tokens() == [login.refresh_token]
    assert login.access_token in fake_authgear.access_tokens
    assert unverified_kid(login.id_token) == fake_authgear.kid  # the new ID token, kept
    assert login.id_token_unverified_since is not None  # unverified
    assert groups_of_the_user() == []  # its claims are not trusted yet

    # JWKS still down at the next refresh: it goes out with the NEW refresh token.
    clock.shift(1800)
    assert logged_in.get("/private/").status_code == 200
    assert sent_refresh_tokens(fake_authgear) == [first_refresh_token, login.refresh_token]
    login = AuthgearLogin.objects.get()
    assert login.refresh_token == newest_refresh_token(fake_authgear)
    assert login.refresh_count == 2
    assert revoked_tokens(fake_authgear) == []


def test_the_pending_id_token_is_verified_once_the_keys_can_be_fetched(
    logged_in: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", status=503)
    authgear_user.roles = ["admin"]
    clock.shift(1800)
    assert logged_in.get("/private/").status_code == 200
    jwks_calls = fake_authgear.calls["jwks"]
    pending_id_token = AuthgearLogin.objects.get().id_token

    clock.shift(5)  # within the JWKS cooldown: no new attempt, no call to Authgear
    assert logged_in.get("/private/").status_code == 200
    assert fake_authgear.calls["jwks"] == jwks_calls

    fake_authgear.heal("jwks")
    clock.shift(6 * 60)  # after the cooldown, and after the ID token's own 5-minute exp
    assert logged_in.get("/private/").status_code == 200
    assert fake_authgear.calls["jwks"] == jwks_calls + 1
    assert fake_authgear.calls["refresh"] == 1  # verified as received: no refresh needed
    login = AuthgearLogin.objects.get()
    assert login.id_token == pending_id_token
    assert login.id_token_unverified_since is None
    assert groups_of_the_user() == ["Administrators"]  # its roles now apply
    assert_session_entry(logged_in.session, login)

    clock.shift(1800)  # and life goes on: the next refresh uses the newest refresh token
    assert logged_in.get("/private/").status_code == 200
    assert sent_refresh_tokens(fake_authgear)[-1] == login.refresh_token
    assert AuthgearLogin.objects.get().refresh_token == newest_refresh_token(fake_authgear)


def test_a_pending_id_token_is_tolerated_only_within_the_grace_rules(
    logged_in: Client, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Unverifiable for longer than the first unverified token's expiry + AUTHGEAR_REFRESH_GRACE
    (30 s): 503 as when Authgear is down, nothing deleted, and back as soon as the keys are."""
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", exception=READ_TIMEOUT)
    clock.shift(1800)
    assert logged_in.get("/private/").status_code == 200  # new token valid for 1800 s

    clock.shift(1800 - 60)  # refreshed again meanwhile, still unverifiable: no extra time
    assert logged_in.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 2
    clock.shift(60 + 30 - 1)
    assert logged_in.get("/private/").status_code == 200
    clock.shift(2)
    response = logged_in.get("/private/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"]
    assert logged_in.get("/private/").status_code == 503  # every request, not only retries
    assert AuthgearLogin.objects.get().refresh_token == newest_refresh_token(fake_authgear)
    assert fake_authgear.live_refresh_tokens() == [newest_refresh_token(fake_authgear)]

    fake_authgear.heal()
    clock.shift(10)
    assert logged_in.get("/private/").status_code == 200
    assert AuthgearLogin.objects.get().id_token_unverified_since is None
    assert revoked_tokens(fake_authgear) == []


# --- definite answers end the login and revoke the newest refresh token --------------------------


def assert_ended_and_revoked(client: Client, fake: FakeAuthgear, issued: str) -> None:
    assert AuthgearLogin.objects.count() == 0
    assert "_auth_user_id" not in client.session
    assert revoked_tokens(fake) == [issued]
    assert fake.live_refresh_tokens() == []
    assert client.get("/private/").status_code == 302


@pytest.mark.parametrize(
    "claim",
    [
        {"sub": "someone-else"},
        {"iss": "https://other-project.authgear.test"},
        {"aud": ["another-client"]},
    ],
    ids=["sub", "iss", "aud"],
)
def test_a_refreshed_id_token_with_another_claim_ends_the_login(
    logged_in: Client, fake_authgear: FakeAuthgear, clock: Any, claim: dict[str, Any]
) -> None:
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(claim)
    clock.shift(1800)
    response = logged_in.get("/private/")
    assert response.status_code == 302 and response["Location"].startswith("/auth/login/")
    assert_ended_and_revoked(logged_in, fake_authgear, newest_refresh_token(fake_authgear))


@pytest.mark.parametrize(
    "claim",
    [{"sub": "someone-else"}, {"iss": "https://other-project.authgear.test"}],
    ids=["sub", "iss"],
)
def test_another_user_or_issuer_ends_the_login_even_while_the_keys_are_unreachable(
    logged_in: Client, fake_authgear: FakeAuthgear, clock: Any, claim: dict[str, Any]
) -> None:
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", status=500)
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(claim)
    clock.shift(1800)
    assert logged_in.get("/private/").status_code == 302
    assert_ended_and_revoked(logged_in, fake_authgear, newest_refresh_token(fake_authgear))


def test_a_pending_id_token_with_a_bad_signature_ends_the_login_once_the_key_is_known(
    logged_in: Client, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.rotate_signing_key()
    # Authgear publishes, under the new kid, a key that did not sign the token.
    fake_authgear.published_keys[0] = public_jwk(rsa_key("impostor"), fake_authgear.kid)
    fake_authgear.fail("jwks", status=502)
    clock.shift(1800)
    assert logged_in.get("/private/").status_code == 200  # cannot tell yet
    assert AuthgearLogin.objects.count() == 1

    fake_authgear.heal("jwks")
    clock.shift(10)
    assert logged_in.get("/private/").status_code == 302
    assert_ended_and_revoked(logged_in, fake_authgear, newest_refresh_token(fake_authgear))


def test_a_kid_unknown_during_the_refetch_cooldown_is_not_a_verdict(
    clock: Any, fake_authgear: FakeAuthgear, settings: Any
) -> None:
    """Login A's refetch of the keys failed; login B refreshes within the JWKS refetch cooldown,
    so its lookup sees only the old keys. That says nothing about B's ID token."""
    settings.AUTHGEAR_ROLE_GROUPS = {"admin": ["Administrators"]}
    first, second = LoginFlow(Client(), fake_authgear), LoginFlow(Client(), fake_authgear)
    first.login(FakeUser())
    second.login(FakeUser(email="joe@example.com"))
    fake_authgear.rotation = True
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", status=500)
    clock.shift(1800)
    assert first.client.get("/private/").status_code == 200
    fake_authgear.heal("jwks")  # back, but the cooldown forbids another refetch for 10 s
    clock.shift(3)
    jwks_calls = fake_authgear.calls["jwks"]
    assert second.client.get("/private/").status_code == 200
    assert fake_authgear.calls["jwks"] == jwks_calls
    assert AuthgearLogin.objects.count() == 2
    assert sorted(login.refresh_token for login in AuthgearLogin.objects.all()) == sorted(
        fake_authgear.live_refresh_tokens()
    )

    clock.shift(10)
    for flow in (first, second):
        assert flow.client.get("/private/").status_code == 200
    assert [login.id_token_unverified_since for login in AuthgearLogin.objects.all()] == [None] * 2
    assert fake_authgear.calls["refresh"] == 2


# --- the mark is on the row: an overlapping request cannot erase it -----------------------------


def stale_copy_of_the_session(client: Client) -> SessionBase:
    """The session as a concurrent request loaded it, before this one changed it."""
    stale = SessionStore(session_key=client.session.session_key)
    stale["_unrelated"] = 1  # loads the session now and marks it modified (saved in full)
    return stale


def test_an_overlapping_session_save_does_not_lose_the_pending_verification(
    logged_in: Client, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """A request that loaded the session before the refresh and saves it afterwards writes back
    the old session. The pending verification survives it: its ID token, signed by a key that
    is not the published one, still ends the login once the keys can be fetched."""
    fake_authgear.rotate_signing_key()
    fake_authgear.published_keys[0] = public_jwk(rsa_key("impostor"), fake_authgear.kid)
    fake_authgear.fail("jwks", status=502)
    clock.shift(1800)
    overlapping = stale_copy_of_the_session(logged_in)
    assert logged_in.get("/private/").status_code == 200  # refreshed; the ID token waits
    overlapping.save()  # the overlapping request finishes last

    fake_authgear.heal("jwks")
    clock.shift(10)
    assert logged_in.get("/private/").status_code == 302
    assert_ended_and_revoked(logged_in, fake_authgear, newest_refresh_token(fake_authgear))


def test_an_overlapping_session_save_does_not_lift_the_deadline(
    logged_in: Client, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Past the first unverified token's expiry + grace, the login is unusable until verified,
    even when an overlapping request wrote back a session from before the refresh."""
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", exception=READ_TIMEOUT)
    clock.shift(1800)
    overlapping = stale_copy_of_the_session(logged_in)
    assert logged_in.get("/private/").status_code == 200
    overlapping.save()

    # Past the first refresh + access token lifetime + AUTHGEAR_REFRESH_GRACE; the refresh due
    # now works, but its ID token cannot be verified either: no new deadline for it.
    clock.shift(1800 + 30 + 1)
    assert logged_in.get("/private/").status_code == 503
    assert fake_authgear.calls["refresh"] == 2
    assert AuthgearLogin.objects.get().refresh_token == newest_refresh_token(fake_authgear)

"""The browser SSO check's answers from Authgear (``prompt=none``) and what the callback
makes of them. See ``test_sso_check.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages

from authgear_django.models import AuthgearLogin
from authgear_django.sso_check import SSO_STATE_PREFIX
from authgear_django.store import SESSION_ATTEMPTS_KEY, SESSION_LOGIN_KEY
from tests import sso_check_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.sso_check_helpers import (
    CALLBACK,
    NAVIGATION,
    navigate_due,
    query_of,
    signed_in,
)

pytestmark = pytest.mark.django_db

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
sso_on = sso_check_helpers.sso_on
logged_in = sso_check_helpers.logged_in
ended_reasons = sso_check_helpers.ended_reasons


# --- Authgear's answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["login_required", "interaction_required", "consent_required"])
def test_no_authgear_browser_session_signs_out_and_lands_on_the_page(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
    error: str,
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    if error == "login_required":
        fake_authgear.browser_user = None  # signed out at Authgear; this site's grant lives on
        callback = fake_authgear.silent_authorize(authorize_url)
    else:
        callback = fake_authgear.deny(authorize_url, error=error)
    assert query_of(callback)["error"] == [error]
    response = logged_in.client.get(callback)
    assert response.status_code == 302
    assert response["Location"] == "/private/?tab=2"
    assert not signed_in(logged_in)
    assert SESSION_LOGIN_KEY not in logged_in.client.session
    assert AuthgearLogin.objects.count() == 0
    assert ended_reasons == [("sso_ended", False)]
    assert fake_authgear.calls["revoke"] == 0
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Your session has ended. Please sign in again."
    ]
    # the page itself now asks to sign in, with next
    page = logged_in.client.get("/private/?tab=2", **NAVIGATION)
    assert page.status_code == 302
    assert page["Location"] == "/auth/login/?next=/private/%3Ftab%3D2"


def test_a_live_authgear_session_keeps_the_login_and_stores_no_token(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    before = AuthgearLogin.objects.get()
    token_calls = fake_authgear.calls["token"]
    response = logged_in.client.get(fake_authgear.silent_authorize(authorize_url))
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert fake_authgear.calls["token"] == token_calls + 1  # the code was exchanged
    after = AuthgearLogin.objects.get()
    assert after.pk == before.pk
    for field in ("encrypted_access_token", "encrypted_refresh_token", "encrypted_id_token"):
        assert getattr(after, field) == getattr(before, field)
    assert after.access_token_expires_at == before.access_token_expires_at
    [*_, check_grant] = fake_authgear.grants.values()
    assert check_grant.scope == "openid"  # no offline_access: no refresh token was issued
    assert signed_in(logged_in) and ended_reasons == []
    assert SESSION_ATTEMPTS_KEY not in logged_in.client.session  # the attempt was used up
    page = logged_in.client.get("/private/?tab=2", **NAVIGATION)
    assert page.status_code == 200 and page.content.startswith(b"private for")


def test_another_user_at_authgear_signs_out(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    fake_authgear.browser_user = FakeUser(email="mallory@example.com")
    response = logged_in.client.get(fake_authgear.silent_authorize(authorize_url))
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert not signed_in(logged_in)
    assert AuthgearLogin.objects.count() == 0
    assert ended_reasons == [("sso_ended", False)]
    # and the other Authgear user was not signed in here either
    assert logged_in.client.get("/private/", **NAVIGATION).status_code == 302


@pytest.mark.parametrize(
    "failure",
    ["token_refused", "token_unreachable", "access_denied", "server_error", "bad_signature"],
)
def test_an_inconclusive_answer_keeps_the_user_signed_in(
    sso_on: None,
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    ended_reasons: list[tuple[str, bool]],
    failure: str,
) -> None:
    authorize_url = navigate_due(logged_in, clock)
    if failure in ("access_denied", "server_error"):
        callback = fake_authgear.deny(authorize_url, error=failure)
    else:
        if failure == "token_refused":
            fake_authgear.fail("token", status=500)
        elif failure == "token_unreachable":
            fake_authgear.fail("token", exception=CONNECTION_REFUSED)
        else:
            fake_authgear.id_token_rewrite = lambda token: token[:-4] + "AAAA"
        callback = fake_authgear.silent_authorize(authorize_url)
    response = logged_in.client.get(callback)
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert signed_in(logged_in) and ended_reasons == []
    assert AuthgearLogin.objects.count() == 1
    fake_authgear.heal()
    fake_authgear.id_token_rewrite = None
    assert logged_in.client.get("/private/?tab=2", **NAVIGATION).status_code == 200


# --- replies that are not ours --------------------------------------------------------------------


def test_a_replayed_sso_reply_does_nothing(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    callback = fake_authgear.silent_authorize(navigate_due(logged_in, clock))
    assert logged_in.client.get(callback)["Location"] == "/private/?tab=2"
    token_calls = fake_authgear.calls["token"]
    replay = logged_in.client.get(callback)
    assert replay.status_code == 302 and replay["Location"] == "/private/"
    assert fake_authgear.calls["token"] == token_calls
    assert signed_in(logged_in)


def test_an_sso_reply_never_signs_anyone_in(
    sso_on: None, logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """Signed out here meanwhile (e.g. in another tab): Authgear's code for the SSO check is
    not a login, even when the attempt is still in the session."""
    callback = fake_authgear.silent_authorize(navigate_due(logged_in, clock))
    session = logged_in.client.session
    session.pop("_auth_user_id")
    session.pop(SESSION_LOGIN_KEY)
    session.save()
    response = logged_in.client.get(callback)
    assert response.status_code == 302 and response["Location"] == "/private/?tab=2"
    assert not signed_in(logged_in)
    assert AuthgearLogin.objects.count() == 1  # no new login was made


def test_an_sso_state_of_another_browser_is_refused_like_any_unknown_state(
    sso_on: None, client: Any, fake_authgear: FakeAuthgear
) -> None:
    response = client.get("/auth/callback/?code=abc&state=" + SSO_STATE_PREFIX + "forged")
    assert response.status_code == 302 and response["Location"] == "/private/"
    assert "_auth_user_id" not in client.session
    assert fake_authgear.calls["token"] == 0


def test_the_callback_refuses_max_age_with_prompt_none_like_authgear(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    """The fake's rule (Authgear's): ``prompt=none`` with ``max_age`` is ``invalid_request``."""
    fake_authgear.browser_user = authgear_user
    url = (
        "https://authgear.test/oauth2/authorize?client_id=a1b2c3d4e5f60718&response_type=code"
        "&scope=openid&prompt=none&max_age=0&state=s&code_challenge_method=S256"
        "&redirect_uri=" + CALLBACK
    )
    assert query_of(fake_authgear.silent_authorize(url))["error"] == ["invalid_request"]

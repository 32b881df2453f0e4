"""Every signal the package sends, driven through the real flow, with its documented kwargs.

``authgear_django/signals.py`` documents each signal's keyword arguments and, for
``login_revoked``, every ``reason`` and whether Authgear was asked to revoke. Each test here
makes that happen the way a user, an admin, Authgear or a command would (test client, fake
Authgear at the HTTP boundary, really signed tokens, real webhook signatures) and checks what a
receiver connected for the test got. Django's own ``user_logged_in``, ``user_logged_out`` and
``user_login_failed``, which our views trigger, are covered too.

Login revocations are in ``test_signals_login_revoked.py``, webhooks in
``test_signals_webhooks.py``; what they share is in ``signal_helpers.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.dispatch import Signal
from django.test import Client

from authgear_django import signals
from authgear_django.exceptions import AuthgearError, TokenValidationError
from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests import signal_helpers
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.signal_helpers import (
    OURS,
    Received,
    assert_revoked_rows_were_gone,
    is_logged_in,
)

pytestmark = pytest.mark.django_db

# Shared fixtures: pytest finds a fixture through an attribute of the test module.
received = signal_helpers.received
logged_in = signal_helpers.logged_in


# --- login_linked, user_logged_in, user_login_failed -------------------------------------------


def test_a_first_login_sends_user_logged_in_then_login_linked_with_created_true(
    login_flow: LoginFlow, authgear_user: FakeUser, received: Received
) -> None:
    response = login_flow.login(authgear_user)
    assert response.status_code == 302

    assert received.names() == ["user_logged_in", "login_linked"]
    (logged,) = received.of("user_logged_in")
    (linked,) = received.of("login_linked")
    account = AuthgearAccount.objects.get()
    login = AuthgearLogin.objects.get()
    assert linked.sender is AuthgearAccount
    assert set(linked.kwargs) == {"request", "user", "account", "login", "created", "claims"}
    assert linked.kwargs["request"] is response.wsgi_request
    assert linked.kwargs["user"] == account.user
    assert linked.kwargs["account"] == account and account.sub == authgear_user.sub
    assert linked.kwargs["login"] == login
    assert linked.kwargs["created"] is True
    claims = linked.kwargs["claims"]
    assert claims["sub"] == authgear_user.sub and claims["email"] == authgear_user.email
    # Django's signal: same request, same user, sent by the user's class.
    assert logged.sender is type(account.user)
    assert logged.kwargs["user"] == account.user
    assert logged.kwargs["request"] is response.wsgi_request


def test_a_returning_user_is_linked_with_created_false(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, received: Received
) -> None:
    LoginFlow(Client(), fake_authgear).login(authgear_user)
    received.clear()
    LoginFlow(Client(), fake_authgear).login(authgear_user)
    (linked,) = received.of("login_linked")
    assert linked.kwargs["created"] is False
    assert AuthgearAccount.objects.count() == 1 and AuthgearLogin.objects.count() == 2
    assert linked.kwargs["login"] == AuthgearLogin.objects.order_by("-created_at").first()


def test_a_failed_login_sends_only_user_login_failed_naming_the_failure(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear, received: Received
) -> None:
    response = login_flow.finish(fake_authgear.deny(login_flow.start()))
    assert response.status_code == 403
    assert received.names() == ["user_login_failed"]
    (failed,) = received.of("user_login_failed")
    assert failed.sender == "authgear_django.login_flow"
    assert failed.kwargs["credentials"] == {
        "authgear_error": "access_denied",
        "authgear_failure": "AuthorizationDenied",
    }
    assert failed.kwargs["request"] is response.wsgi_request


# --- tokens_refreshed, refresh_failed ---------------------------------------------------------


@pytest.mark.parametrize("rotation", [False, True], ids=["kept", "rotated"])
def test_a_refresh_sends_tokens_refreshed_with_rotated(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    received: Received,
    rotation: bool,
) -> None:
    fake_authgear.rotation = rotation
    clock.shift(1800)
    assert is_logged_in(logged_in)
    # the liveness check (due every 300 s) runs after the refresh, on the new access token
    assert received.names() == ["tokens_refreshed", "session_checked"]
    (refreshed,) = received.of("tokens_refreshed")
    assert refreshed.sender is AuthgearLogin
    assert set(refreshed.kwargs) == {"login", "rotated"}
    assert refreshed.kwargs["login"] == AuthgearLogin.objects.get()
    assert refreshed.kwargs["login"].refresh_count == 1
    assert refreshed.kwargs["rotated"] is rotation


def test_a_liveness_check_sends_session_checked_with_fresh_claims(
    logged_in: LoginFlow, clock: Any, received: Received
) -> None:
    clock.shift(301)  # the check is due, the token is not
    assert is_logged_in(logged_in)
    assert received.names() == ["session_checked"]
    (checked,) = received.of("session_checked")
    assert checked.sender is AuthgearLogin
    assert set(checked.kwargs) == {"login", "user", "claims"}
    login = AuthgearLogin.objects.get()
    assert checked.kwargs["login"] == login and checked.kwargs["user"] == login.account.user
    assert checked.kwargs["claims"]["sub"] == login.account.sub


def test_authgear_down_sends_a_non_fatal_refresh_failed_and_ends_nothing(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(1800 - 30)  # due, still valid for 30 s
    assert is_logged_in(logged_in)
    assert received.names() == ["refresh_failed"]
    (failed,) = received.of("refresh_failed")
    assert failed.sender is AuthgearLogin
    assert set(failed.kwargs) == {"login", "error", "fatal"}
    assert failed.kwargs["fatal"] is False
    assert isinstance(failed.kwargs["error"], AuthgearError)
    assert failed.kwargs["login"] == AuthgearLogin.objects.get()


def test_a_429_sends_token_endpoint_rate_limited_with_retry_after_and_level(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.fail(
        "refresh",
        status=429,
        body='{"error":"x_rate_limited"}',
        content_type="application/json",
        headers={"Retry-After": "40"},
    )
    clock.shift(1800 - 30)  # the check is due and so is the refresh: it is refused
    assert is_logged_in(logged_in)  # still valid for 30 s: not a logout
    assert received.names() == ["token_endpoint_rate_limited", "refresh_failed"]
    (limited,) = received.of("token_endpoint_rate_limited")
    assert set(limited.kwargs) == {"retry_after", "level"}
    assert limited.kwargs == {"retry_after": 40, "level": 1}  # Authgear's Retry-After obeyed
    (failed,) = received.of("refresh_failed")
    assert failed.kwargs["fatal"] is False


def test_invalid_grant_sends_login_revoked_refresh_failed_then_a_fatal_refresh_failed(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    login_pk = AuthgearLogin.objects.get().pk
    for grant in fake_authgear.grants.values():
        grant.revoked = True  # e.g. revoked in Authgear's portal
    revocations_before = fake_authgear.calls["revoke"]
    clock.shift(1800)
    assert not is_logged_in(logged_in)

    assert received.names()[:2] == ["login_revoked", "refresh_failed"]
    assert received.reasons() == [("refresh_failed", False)]
    assert fake_authgear.calls["revoke"] == revocations_before  # not asked: already dead
    (failed,) = received.of("refresh_failed")
    assert failed.kwargs["fatal"] is True
    assert failed.kwargs["error"].error == "invalid_grant"
    assert failed.kwargs["login"].pk == received.of("login_revoked")[0].kwargs["login"].pk
    assert failed.kwargs["login"].pk == login_pk
    assert_revoked_rows_were_gone(received)


def test_undecryptable_stored_tokens_end_the_login_with_reason_refresh_failed(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received, settings: Any
) -> None:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["a-key-the-rows-were-not-written-with"]
    clock.shift(1800)
    assert not is_logged_in(logged_in)
    assert received.reasons() == [("refresh_failed", False)]
    assert [s.kwargs["fatal"] for s in received.of("refresh_failed")] == [True]
    assert fake_authgear.calls["refresh"] == 0  # nothing usable to send
    assert AuthgearLogin.objects.count() == 0
    assert_revoked_rows_were_gone(received)


def test_a_refreshed_id_token_of_another_user_sends_id_token_invalid_revoked(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.id_token_tamper = lambda claims, header: claims.update(sub="someone-else")
    clock.shift(1800)
    assert not is_logged_in(logged_in)
    assert received.reasons() == [("id_token_invalid", True)]
    (failed,) = received.of("refresh_failed")
    assert failed.kwargs["fatal"] is True
    assert isinstance(failed.kwargs["error"], TokenValidationError)
    assert fake_authgear.live_refresh_tokens() == []
    assert_revoked_rows_were_gone(received)


def test_every_send_in_the_package_is_covered_here() -> None:
    """A new signal, or a new ``.send(`` of one, must get a test in this file
    or a ``test_signals_*`` module beside it."""
    import pathlib
    import re

    import authgear_django

    package = pathlib.Path(authgear_django.__file__).parent
    sent: set[str] = set()
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        sent |= set(re.findall(r"\b(\w+)\.send(?:_robust)?\(\s*sender=", text))
    assert sent == set(OURS) | {"user_login_failed"}
    declared = {name for name, value in vars(signals).items() if isinstance(value, Signal)}
    assert declared == set(OURS)

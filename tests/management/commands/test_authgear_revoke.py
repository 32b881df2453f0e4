"""``manage.py authgear_revoke``.

Authgear is the fake at the HTTP boundary; logins are made through our real views, so the
command acts on real rows, real sessions and refresh tokens the fake really issued.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.sessions.models import Session

from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.signals import login_revoked
from tests.command_helpers import backdate, count, days_ago, fails, log_in, logged_in, login_of, run
from tests.fake_authgear import CONNECTION_REFUSED, READ_TIMEOUT, FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(fake_authgear: FakeAuthgear) -> FakeUser:
    return FakeUser(email="alice@example.com")


@pytest.fixture
def bob(fake_authgear: FakeAuthgear) -> FakeUser:
    return FakeUser(email="bob@example.com")


@pytest.fixture
def revoked_reasons() -> Iterator[list[tuple[str, bool]]]:
    received: list[tuple[str, bool]] = []

    def receiver(**kwargs: Any) -> None:
        received.append((kwargs["reason"], kwargs["revoked"]))

    login_revoked.connect(receiver, weak=False, dispatch_uid="test_commands")
    yield received
    login_revoked.disconnect(dispatch_uid="test_commands")


def test_revoke_needs_a_selector(fake_authgear: FakeAuthgear) -> None:
    assert fails("authgear_revoke") == "give at least one of --user, --sub or --inactive-days"
    assert "--inactive-days" in fails("authgear_revoke", "--inactive-days", "0")


def test_revoke_user_ends_every_login_of_that_user_only(
    fake_authgear: FakeAuthgear,
    alice: FakeUser,
    bob: FakeUser,
    revoked_reasons: list[tuple[str, bool]],
) -> None:
    laptop, phone = log_in(fake_authgear, alice), log_in(fake_authgear, alice)
    other = log_in(fake_authgear, bob)
    alice_tokens = {login_of(laptop).refresh_token, login_of(phone).refresh_token}
    alice_sessions = [login_of(laptop).session_key, login_of(phone).session_key]
    bob_token = login_of(other).refresh_token

    out, err = run("authgear_revoke", "--user", "alice")

    assert count(out, "logins ended") == 2
    assert count(out, "revoked at Authgear") == 2
    assert count(out, "failed to revoke") == 0
    assert err == ""
    live = fake_authgear.live_refresh_tokens()
    assert alice_tokens.isdisjoint(live) and bob_token in live
    assert not AuthgearLogin.objects.filter(account__sub=alice.sub).exists()
    assert not Session.objects.filter(session_key__in=alice_sessions).exists()
    assert not logged_in(laptop) and not logged_in(phone)
    assert logged_in(other)
    assert revoked_reasons == [("admin_revoke", True), ("admin_revoke", True)]


def test_revoke_user_by_primary_key_and_by_sub(
    fake_authgear: FakeAuthgear, alice: FakeUser, bob: FakeUser
) -> None:
    by_pk, by_sub = log_in(fake_authgear, alice), log_in(fake_authgear, bob)
    alice_pk = AuthgearAccount.objects.get(sub=alice.sub).user_id
    run("authgear_revoke", "--user", str(alice_pk))
    assert not logged_in(by_pk) and logged_in(by_sub)
    run("authgear_revoke", "--sub", bob.sub)
    assert not logged_in(by_sub)
    assert fake_authgear.live_refresh_tokens() == []


def test_revoke_refuses_an_unknown_user_or_sub(
    fake_authgear: FakeAuthgear, alice: FakeUser
) -> None:
    flow = log_in(fake_authgear, alice)
    assert fails("authgear_revoke", "--user", "nobody") == (
        "no user with username or primary key 'nobody'"
    )
    assert "no Authgear account with sub 'not-a-sub'" in fails(
        "authgear_revoke", "--sub", alice.sub, "--sub", "not-a-sub"
    )
    assert logged_in(flow)


def test_revoke_inactive_days_uses_last_refresh_else_creation(
    fake_authgear: FakeAuthgear,
) -> None:
    never_refreshed_old = log_in(fake_authgear, FakeUser(email="a@example.com"))
    refreshed_long_ago = log_in(fake_authgear, FakeUser(email="b@example.com"))
    refreshed_recently = log_in(fake_authgear, FakeUser(email="c@example.com"))
    created_recently = log_in(fake_authgear, FakeUser(email="d@example.com"))
    backdate(login_of(never_refreshed_old), created_at=days_ago(40))
    backdate(login_of(refreshed_long_ago), created_at=days_ago(90), last_refreshed_at=days_ago(31))
    backdate(login_of(refreshed_recently), created_at=days_ago(90), last_refreshed_at=days_ago(2))

    out, _ = run("authgear_revoke", "--inactive-days", "30")

    assert count(out, "revoked at Authgear") == 2
    assert not logged_in(never_refreshed_old) and not logged_in(refreshed_long_ago)
    assert logged_in(refreshed_recently) and logged_in(created_recently)
    assert len(fake_authgear.live_refresh_tokens()) == 2


def test_revoke_selectors_must_all_match(
    fake_authgear: FakeAuthgear, alice: FakeUser, bob: FakeUser
) -> None:
    alice_old, alice_new = log_in(fake_authgear, alice), log_in(fake_authgear, alice)
    bob_old = log_in(fake_authgear, bob)
    backdate(login_of(alice_old), created_at=days_ago(10))
    backdate(login_of(bob_old), created_at=days_ago(10))
    run("authgear_revoke", "--user", "alice", "--inactive-days", "7")
    assert [logged_in(f) for f in (alice_old, alice_new, bob_old)] == [False, True, True]


def test_revoke_dry_run_lists_and_changes_nothing(
    fake_authgear: FakeAuthgear, alice: FakeUser
) -> None:
    flow = log_in(fake_authgear, alice)
    login = login_of(flow)
    out, _ = run("authgear_revoke", "--user", "alice", "--dry-run")
    assert f"{login.pk}  user=alice  sub={alice.sub}" in out
    assert "dry run: 1 login(s) would be revoked; nothing changed" in out
    assert fake_authgear.calls["revoke"] == 0
    assert logged_in(flow) and login.refresh_token in fake_authgear.live_refresh_tokens()


def test_revoke_with_authgear_down_still_logs_out_here_and_warns(
    fake_authgear: FakeAuthgear, alice: FakeUser, revoked_reasons: list[tuple[str, bool]]
) -> None:
    flow = log_in(fake_authgear, alice)
    token = login_of(flow).refresh_token
    fake_authgear.fail("revoke", exception=CONNECTION_REFUSED)

    out, err = run("authgear_revoke", "--user", "alice")  # no CommandError: exit status 0

    assert count(out, "revoked at Authgear") == 0
    assert count(out, "failed to revoke at Authgear, removed here") == 1
    assert err.startswith("warning: 1 refresh token(s) could not be revoked at Authgear")
    assert err.count("\n") == 1
    assert AuthgearLogin.objects.count() == 0 and not logged_in(flow)
    assert token in fake_authgear.live_refresh_tokens()  # what the warning is about
    assert revoked_reasons == [("admin_revoke", False)]


def test_revoke_stops_calling_a_dead_authgear_after_a_few_failures(
    fake_authgear: FakeAuthgear, alice: FakeUser
) -> None:
    flows = [log_in(fake_authgear, alice) for _ in range(8)]
    fake_authgear.fail("revoke", exception=READ_TIMEOUT)
    out, _ = run("authgear_revoke", "--user", "alice")
    assert fake_authgear.calls["revoke"] == 5
    assert count(out, "failed to revoke") == 8
    assert not any(logged_in(flow) for flow in flows)


def test_revoke_counts_logins_without_a_refresh_token_apart(
    fake_authgear: FakeAuthgear, alice: FakeUser, settings
) -> None:
    settings.AUTHGEAR_SCOPES = "openid"  # no offline_access: no refresh token
    flow = log_in(fake_authgear, alice)
    out, err = run("authgear_revoke", "--user", "alice", "-v", "2")
    assert count(out, "no refresh token to revoke") == 1
    assert count(out, "failed to revoke") == 0 and err == ""
    assert f"{login_of_pk(out)}: removed (no refresh token to revoke)" in out
    assert fake_authgear.calls["revoke"] == 0 and not logged_in(flow)


def login_of_pk(output: str) -> str:
    match = re.search(r"^  ([0-9a-f-]{36}): ", output, re.M)
    assert match
    return match.group(1)


def test_revoke_never_prints_a_token(fake_authgear: FakeAuthgear, alice: FakeUser) -> None:
    login = login_of(log_in(fake_authgear, alice))
    tokens = [login.refresh_token, login.access_token, login.id_token]
    out, err = run("authgear_revoke", "--user", "alice", "-v", "2")
    dry, _ = run("authgear_revoke", "--inactive-days", "1", "--dry-run")
    for token in tokens:
        assert token and token not in out + err + dry

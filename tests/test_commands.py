"""The management commands: authgear_check, authgear_revoke, authgear_cleanup, authgear_rotate_key.

Authgear is the fake at the HTTP boundary; logins are made through our real views, so the
commands act on real rows, real sessions and refresh tokens the fake really issued.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from authgear_django.crypto import TokenCipher, TokenDecryptionError
from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent
from authgear_django.signals import login_revoked, webhook_received
from tests.conftest import LoginFlow
from tests.fake_authgear import (
    CLIENT_SECRET,
    CONNECTION_REFUSED,
    READ_TIMEOUT,
    FakeAuthgear,
    FakeUser,
    public_jwk,
    rsa_key,
)
from tests.test_webhooks import SECRET as WEBHOOK_SECRET
from tests.test_webhooks import deliver, event

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fails(name: str, *args: str) -> str:
    """The CommandError message of a run that must fail."""
    with pytest.raises(CommandError) as info:
        run(name, *args)
    return str(info.value)


def log_in(fake: FakeAuthgear, user: FakeUser) -> LoginFlow:
    flow = LoginFlow(Client(), fake)
    assert flow.login(user).status_code == 302
    return flow


def login_of(flow: LoginFlow) -> AuthgearLogin:
    return AuthgearLogin.objects.get(session_key=flow.client.session.session_key)


def logged_in(flow: LoginFlow) -> bool:
    return flow.client.get("/private/").status_code == 200


def backdate(login: AuthgearLogin, **fields: Any) -> None:
    AuthgearLogin.objects.filter(pk=login.pk).update(**fields)


def days_ago(days: float) -> Any:
    return timezone.now() - timedelta(days=days)


def count(output: str, label: str) -> int:
    """The number at the end of the output line that starts with ``label``."""
    match = re.search(rf"^\s*{re.escape(label)}.*?: (\d+)$", output, re.M)
    assert match, f"no {label!r} line in:\n{output}"
    return int(match.group(1))


# --- authgear_check ------------------------------------------------------------------------------


def test_check_passes_against_authgear_and_prints_what_to_register(
    fake_authgear: FakeAuthgear,
) -> None:
    out, err = run("authgear_check")
    assert "ok    issuer https://authgear.test equals AUTHGEAR_ENDPOINT" in out
    assert "ok    JWKS has 1 RS256 signing key(s): " + fake_authgear.kid in out
    assert "ok    token endpoint accepts client_secret_post" in out
    assert "ok    scopes openid offline_access https://authgear.com/scopes/full-userinfo" in out
    # no site URL known: the paths, and how to complete them
    assert "Authorized Redirect URI:   <site origin>/auth/callback/" in out
    assert "Post Logout Redirect URI:  <site origin>/" in out
    assert "--site-url" in out
    assert err == ""
    assert CLIENT_SECRET not in out + err


def test_check_builds_absolute_uris_from_site_url(fake_authgear: FakeAuthgear) -> None:
    out, _ = run("authgear_check", "--site-url", "https://shop.example.com/")
    assert "Authorized Redirect URI:   https://shop.example.com/auth/callback/\n" in out
    assert "Post Logout Redirect URI:  https://shop.example.com/\n" in out
    assert "<site origin>" not in out


def test_check_prints_the_configured_redirect_uris(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_REDIRECT_URI = "https://proxy.example.com/sso/callback/"
    settings.AUTHGEAR_POST_LOGOUT_REDIRECT_URI = "https://proxy.example.com/bye/"
    out, _ = run("authgear_check", "--site-url", "https://ignored.example.com")
    assert "Authorized Redirect URI:   https://proxy.example.com/sso/callback/" in out
    assert "Post Logout Redirect URI:  https://proxy.example.com/bye/" in out


def test_check_refuses_a_site_url_that_is_not_an_origin(fake_authgear: FakeAuthgear) -> None:
    assert "--site-url" in fails("authgear_check", "--site-url", "example.com")


def test_check_is_live_not_read_from_the_cache(fake_authgear: FakeAuthgear) -> None:
    from authgear_django.provider import get_client

    get_client().jwks()  # the app's cache now holds a good discovery document and JWKS
    calls = fake_authgear.calls["discovery"]
    fake_authgear.discovery_overrides["issuer"] = "https://elsewhere.test"
    assert "elsewhere" in fails("authgear_check")
    assert fake_authgear.calls["discovery"] == calls + 1  # fetched once per run, not twice


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda fake: fake.fail("discovery", exception=CONNECTION_REFUSED), "cannot reach"),
        (lambda fake: fake.fail("discovery", exception=READ_TIMEOUT), "no answer from"),
        (
            lambda fake: fake.discovery_overrides.update(issuer="https://other.authgear.cloud"),
            "issuer 'https://other.authgear.cloud' does not equal AUTHGEAR_ENDPOINT",
        ),
        (
            lambda fake: fake.fail("discovery", status=200, body="<html>\n<p>Welcome</p>"),
            "response is not JSON",
        ),
        (lambda fake: fake.fail("discovery", status=404), "HTTP 404"),
        (lambda fake: fake.discovery_overrides.update(token_endpoint=None), "lacks token_endpoint"),
        (lambda fake: fake.published_keys.clear(), "has no RS256 signing key"),
        (lambda fake: fake.fail("jwks", status=200, body="{oops"), "jwks: response is not JSON"),
        (lambda fake: fake.fail("jwks", exception=CONNECTION_REFUSED), "jwks: cannot reach"),
        (
            lambda fake: fake.discovery_overrides.update(userinfo_endpoint=None),
            "no userinfo_endpoint",
        ),
        (
            lambda fake: fake.discovery_overrides.update(
                token_endpoint_auth_methods_supported=["none", "client_secret_basic"]
            ),
            "does not accept client_secret_post",
        ),
    ],
    ids=[
        "unreachable",
        "timeout",
        "wrong-issuer",
        "html-instead-of-json",
        "not-found",
        "no-token-endpoint",
        "empty-jwks",
        "jwks-bad-json",
        "jwks-unreachable",
        "no-userinfo",
        "no-client-secret-post",
    ],
)
def test_check_fails_with_one_clear_line(
    fake_authgear: FakeAuthgear, break_it: Any, expected: str
) -> None:
    break_it(fake_authgear)
    message = fails("authgear_check")
    assert expected in message
    assert "\n" not in message
    assert CLIENT_SECRET not in message


def test_check_wants_a_usable_rs256_key(fake_authgear: FakeAuthgear) -> None:
    good = public_jwk(rsa_key(), "k1")
    fake_authgear.published_keys[:] = [
        {**good, "alg": "RS512"},
        {**good, "use": "enc"},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {**good, "n": "AAAA"},  # malformed
        {**good, "n": "not-base64-!!"},  # decodes to a 64-bit modulus
    ]
    assert "no RS256 signing key" in fails("authgear_check")


def test_check_reports_unsupported_scopes(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_SCOPES = "openid offline_access https://authgear.com/scopes/full-access"
    message = fails("authgear_check")
    assert message == (
        "AUTHGEAR_SCOPES has scopes Authgear does not support: "
        "https://authgear.com/scopes/full-access"
    )


def test_check_reports_every_problem_in_one_line(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_SCOPES = "openid bogus"
    fake_authgear.published_keys.clear()
    message = fails("authgear_check")
    assert message.startswith("2 problems: JWKS at https://authgear.test/oauth2/jwks has no RS256")
    assert "does not support: bogus" in message and "\n" not in message


def test_check_skips_what_the_provider_does_not_publish(
    fake_authgear: FakeAuthgear, settings
) -> None:
    for name in ("scopes_supported", "token_endpoint_auth_methods_supported"):
        fake_authgear.discovery_overrides[name] = None
    settings.AUTHGEAR_SCOPES = "openid custom-scope"
    out, _ = run("authgear_check")
    assert "Authgear does not publish scopes_supported" in out
    assert "client_secret_post assumed" in out


def test_check_warns_without_revocation_or_end_session_but_passes(
    fake_authgear: FakeAuthgear,
) -> None:
    fake_authgear.discovery_overrides.update(revocation_endpoint=None, end_session_endpoint=None)
    out, err = run("authgear_check")
    assert "ok    Authgear is configured correctly" in out
    assert "warning: discovery has no revocation_endpoint" in err
    assert "warning: discovery has no end_session_endpoint" in err


def test_check_reports_missing_settings_in_one_line(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_ENDPOINT = ""
    assert fails("authgear_check").startswith("AUTHGEAR_ENDPOINT must be set")
    assert fake_authgear.calls["discovery"] == 0


def test_check_exits_1_with_one_stderr_line_from_the_command_line(
    fake_authgear: FakeAuthgear, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_authgear.fail("discovery", exception=CONNECTION_REFUSED)
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "authgear_check"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "CommandError: Authgear at https://authgear.test: discovery: cannot reach"
    )


def test_check_exits_0_from_the_command_line(
    fake_authgear: FakeAuthgear, capsys: pytest.CaptureFixture[str]
) -> None:
    execute_from_command_line(["manage.py", "authgear_check"])  # no SystemExit: status 0
    assert "ok    Authgear is configured correctly" in capsys.readouterr().out


# --- authgear_revoke -----------------------------------------------------------------------------


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


# --- authgear_cleanup ----------------------------------------------------------------------------


@pytest.fixture
def dead_and_alive(fake_authgear: FakeAuthgear, settings) -> dict[str, LoginFlow]:
    """One login per situation, made through the real login flow."""
    flows = {
        name: log_in(fake_authgear, FakeUser(email=f"{name}@example.com"))
        for name in (
            "alive",
            "session_deleted",
            "session_expired",
            "idle",
        )
    }
    settings.AUTHGEAR_SCOPES = "openid"  # these two get no refresh token
    flows["expired_long_ago"] = log_in(fake_authgear, FakeUser(email="expired@example.com"))
    flows["expired_recently"] = log_in(fake_authgear, FakeUser(email="recent@example.com"))
    settings.AUTHGEAR_SCOPES = "openid offline_access"
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["a-key-that-was-lost"]
    flows["undecryptable"] = log_in(fake_authgear, FakeUser(email="lost@example.com"))
    del settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS

    Session.objects.filter(session_key=login_of(flows["session_deleted"]).session_key).delete()
    Session.objects.filter(session_key=login_of(flows["session_expired"]).session_key).update(
        expire_date=days_ago(1)
    )
    backdate(login_of(flows["idle"]), created_at=days_ago(60), last_refreshed_at=days_ago(45))
    backdate(login_of(flows["expired_long_ago"]), access_token_expires_at=days_ago(2))
    backdate(login_of(flows["expired_recently"]), access_token_expires_at=days_ago(0.5))
    return flows


def remaining(flows: dict[str, LoginFlow]) -> set[str]:
    keys = set(AuthgearLogin.objects.values_list("session_key", flat=True))
    return {name for name, flow in flows.items() if flow.client.session.session_key in keys}


def test_cleanup_deletes_dead_logins_and_counts_each_reason(
    fake_authgear: FakeAuthgear, dead_and_alive: dict[str, LoginFlow]
) -> None:
    live_before = fake_authgear.live_refresh_tokens()

    out, err = run("authgear_cleanup")

    assert count(out, "expired") == 1
    assert count(out, "undecryptable") == 1
    assert count(out, "no_session") == 2
    assert "idle" not in out  # off unless asked for
    assert "checked 7 login(s); deleted 4:" in out
    assert err == ""
    assert remaining(dead_and_alive) == {"alive", "idle", "expired_recently"}
    assert logged_in(dead_and_alive["alive"])
    # no call to Authgear: the refresh tokens of the deleted logins are still live there
    assert fake_authgear.calls["revoke"] == 0
    assert fake_authgear.live_refresh_tokens() == live_before


def test_cleanup_older_than_days_also_deletes_idle_logins(
    fake_authgear: FakeAuthgear, dead_and_alive: dict[str, LoginFlow]
) -> None:
    out, _ = run("authgear_cleanup", "--older-than-days", "30", "--grace-hours", "6")
    assert count(out, "idle") == 1
    assert count(out, "expired") == 2  # 12 hours ago is past a 6-hour grace
    assert remaining(dead_and_alive) == {"alive"}


def test_cleanup_is_idempotent_and_batched(
    fake_authgear: FakeAuthgear, dead_and_alive: dict[str, LoginFlow]
) -> None:
    first, _ = run("authgear_cleanup", "--batch-size", "2")
    assert "checked 7 login(s); deleted 4:" in first
    second, _ = run("authgear_cleanup", "--batch-size", "2")
    assert "checked 3 login(s); deleted 0:" in second
    assert remaining(dead_and_alive) == {"alive", "idle", "expired_recently"}


def test_cleanup_dry_run_counts_and_deletes_nothing(
    fake_authgear: FakeAuthgear, dead_and_alive: dict[str, LoginFlow]
) -> None:
    out, _ = run("authgear_cleanup", "--dry-run", "--revoke", "--older-than-days", "30")
    assert "checked 7 login(s); would delete 5:" in out
    assert count(out, "would revoke at Authgear") == 3  # two sessions gone + idle
    assert AuthgearLogin.objects.count() == 7
    assert fake_authgear.calls["revoke"] == 0


def test_cleanup_revoke_revokes_the_refresh_tokens_it_deletes(
    fake_authgear: FakeAuthgear, dead_and_alive: dict[str, LoginFlow]
) -> None:
    alive_token = login_of(dead_and_alive["alive"]).refresh_token
    gone_token = login_of(dead_and_alive["session_deleted"]).refresh_token
    out, _ = run("authgear_cleanup", "--revoke")
    assert "revoked at Authgear: 2; failed: 0" in out
    live = fake_authgear.live_refresh_tokens()
    assert gone_token not in live and alive_token in live


def test_cleanup_revoke_with_authgear_down_still_deletes(
    fake_authgear: FakeAuthgear, dead_and_alive: dict[str, LoginFlow]
) -> None:
    fake_authgear.fail("revoke", exception=CONNECTION_REFUSED)
    out, err = run("authgear_cleanup", "--revoke")
    assert "revoked at Authgear: 0; failed: 2" in out
    assert "warning: 2 refresh token(s) could not be revoked" in err
    assert remaining(dead_and_alive) == {"alive", "idle", "expired_recently"}


def test_cleanup_asks_a_cache_session_engine(fake_authgear: FakeAuthgear, settings) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    kept, lost = (log_in(fake_authgear, FakeUser(email=f"{n}@example.com")) for n in "kl")
    lost.client.session.delete()  # the cache entry is gone (evicted, expired, flushed)
    out, _ = run("authgear_cleanup")
    assert count(out, "no_session") == 1
    assert logged_in(kept)
    assert AuthgearLogin.objects.get() == login_of(kept)


def test_cleanup_skips_the_session_check_with_cookie_sessions(
    fake_authgear: FakeAuthgear, settings
) -> None:
    log_in(fake_authgear, FakeUser())
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    out, err = run("authgear_cleanup")
    assert count(out, "no_session") == 0 and AuthgearLogin.objects.count() == 1
    assert "skipping the check for logins whose session is gone" in err


def test_cleanup_deletes_webhook_event_records_past_the_retention(clock: Any, settings) -> None:
    """Records of handled events go after 30 days, and a replay of a forgotten event is still
    not applied: by then it is far older than the 7 days past which no event is applied."""
    settings.AUTHGEAR_WEBHOOK_SECRET = WEBHOOK_SECRET
    signalled: list[str] = []

    def receiver(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
        signalled.append(event["id"])

    webhook_received.connect(receiver, weak=False, dispatch_uid="test_commands")
    try:
        old = event("user.created", "sub-old")
        assert deliver(Client(), old).status_code == 200
        clock.shift(timedelta(days=31).total_seconds())
        recent = event("user.created", "sub-recent")
        assert deliver(Client(), recent).status_code == 200
        label = "webhook event records received over 30 days ago"

        out, _ = run("authgear_cleanup", "--dry-run")
        assert count(out, label) == 1
        assert AuthgearWebhookEvent.objects.count() == 2

        out, err = run("authgear_cleanup", "--batch-size", "1")
        assert count(out, label) == 1 and err == ""
        assert list(AuthgearWebhookEvent.objects.values_list("event_id", flat=True)) == [
            recent["id"]
        ]
        out, _ = run("authgear_cleanup")
        assert count(out, label) == 0

        assert deliver(Client(), old).status_code == 200  # a replay of the forgotten event
        assert signalled == [old["id"], recent["id"]]
    finally:
        webhook_received.disconnect(dispatch_uid="test_commands")


def test_cleanup_keeps_webhook_event_records_within_the_retention(clock: Any, settings) -> None:
    settings.AUTHGEAR_WEBHOOK_SECRET = WEBHOOK_SECRET
    assert deliver(Client(), event("user.created", "sub-1")).status_code == 200
    clock.shift(timedelta(days=29).total_seconds())
    out, _ = run("authgear_cleanup")
    assert count(out, "webhook event records received over 30 days ago") == 0
    assert AuthgearWebhookEvent.objects.count() == 1


# --- authgear_rotate_key -------------------------------------------------------------------------

TOKEN_FIELDS = ("encrypted_refresh_token", "encrypted_access_token", "encrypted_id_token")


def ciphertexts() -> dict[Any, tuple[str, ...]]:
    return {row[0]: row[1:] for row in AuthgearLogin.objects.values_list("pk", *TOKEN_FIELDS)}


def plaintexts() -> dict[Any, tuple[str | None, ...]]:
    rows = AuthgearLogin.objects.all()
    return {row.pk: (row.refresh_token, row.access_token, row.id_token) for row in rows}


@pytest.fixture
def old_key_logins(fake_authgear: FakeAuthgear, settings) -> list[LoginFlow]:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["old-key"]
    flows = [log_in(fake_authgear, FakeUser(email=f"u{i}@example.com")) for i in range(5)]
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key", "old-key"]
    return flows


def test_rotate_key_re_encrypts_so_the_old_key_can_go(
    fake_authgear: FakeAuthgear, old_key_logins: list[LoginFlow], settings
) -> None:
    before, readable = ciphertexts(), plaintexts()

    out, err = run("authgear_rotate_key", "--batch-size", "2")

    assert count(out, "re-encrypted under the first key") == 5
    assert count(out, "undecryptable") == 0 and err == ""
    assert "the other keys can be removed" in out
    after = ciphertexts()
    for pk, values in before.items():
        assert all(new != old for new, old in zip(after[pk], values, strict=True))
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key"]
    assert plaintexts() == readable
    assert {tokens[0] for tokens in readable.values()} == set(fake_authgear.live_refresh_tokens())
    assert all(logged_in(flow) for flow in old_key_logins)


def test_rotate_key_again_is_safe_and_writes_nothing(
    fake_authgear: FakeAuthgear, old_key_logins: list[LoginFlow]
) -> None:
    run("authgear_rotate_key")
    rotated = ciphertexts()
    out, _ = run("authgear_rotate_key")
    assert count(out, "re-encrypted") == 0
    assert count(out, "already under the first key") == 5
    assert ciphertexts() == rotated


def test_rotate_key_leaves_undecryptable_rows_untouched_and_counts_them(
    fake_authgear: FakeAuthgear, old_key_logins: list[LoginFlow], settings
) -> None:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["lost-key"]
    log_in(fake_authgear, FakeUser(email="lost@example.com"))
    lost = AuthgearLogin.objects.get(account__email="lost@example.com")
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key", "old-key"]

    out, err = run("authgear_rotate_key")

    assert count(out, "re-encrypted") == 5
    assert count(out, "undecryptable, left untouched") == 1
    assert "authgear_cleanup deletes them" in err
    assert ciphertexts()[lost.pk] == tuple(getattr(lost, f) for f in TOKEN_FIELDS)


def test_rotate_key_rotates_only_the_tokens_still_under_an_old_key(
    fake_authgear: FakeAuthgear, old_key_logins: list[LoginFlow]
) -> None:
    login = AuthgearLogin.objects.order_by("pk").first()
    assert login is not None
    fresh_access = TokenCipher(["new-key"]).encrypt("a-newer-access-token")
    backdate(login, encrypted_access_token=fresh_access)  # as a refresh under the new key does
    run("authgear_rotate_key")
    login.refresh_from_db()
    assert login.encrypted_access_token == fresh_access
    assert TokenCipher(["new-key"]).decrypt(login.encrypted_refresh_token)


def test_rotate_key_resumes_after_a_primary_key(
    fake_authgear: FakeAuthgear, old_key_logins: list[LoginFlow]
) -> None:
    pks = sorted(ciphertexts())
    out, _ = run("authgear_rotate_key", "--after", str(pks[1]))
    assert count(out, "re-encrypted") == 3
    new_only = TokenCipher(["new-key"])
    rows = {login.pk: login for login in AuthgearLogin.objects.all()}
    for pk in pks[:2]:
        with pytest.raises(TokenDecryptionError):
            new_only.decrypt(rows[pk].encrypted_refresh_token)
    for pk in pks[2:]:
        assert new_only.decrypt(rows[pk].encrypted_refresh_token)
    assert "--after" in fails("authgear_rotate_key", "--after", "42")


def test_rotate_key_dry_run_writes_nothing(
    fake_authgear: FakeAuthgear, old_key_logins: list[LoginFlow]
) -> None:
    before = ciphertexts()
    out, _ = run("authgear_rotate_key", "--dry-run")
    assert count(out, "would re-encrypt under the first key") == 5
    assert ciphertexts() == before


# --- row locks (PostgreSQL) ----------------------------------------------------------------------


def hold_row_lock(pk: Any, *, seconds: float, then: Any = None) -> tuple[threading.Thread, Any]:
    """Lock a login's row from another connection, like a refresh in progress does."""
    locked = threading.Event()

    def refresh_elsewhere() -> None:
        try:
            with transaction.atomic():
                row = AuthgearLogin.objects.select_for_update().get(pk=pk)
                locked.set()
                time.sleep(seconds)
                if then is not None:
                    then(row)
        finally:
            connection.close()

    thread = threading.Thread(target=refresh_elsewhere)
    thread.start()
    assert locked.wait(10)
    return thread, locked


@pytest.fixture
def row_locks() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite has no row locks")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rotate_key_waits_for_a_refresh_and_rotates_its_result(
    row_locks: None, fake_authgear: FakeAuthgear, settings
) -> None:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["old-key"]
    log_in(fake_authgear, FakeUser())
    login = AuthgearLogin.objects.get()
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key", "old-key"]

    def store_new_refresh_token(row: AuthgearLogin) -> None:
        # a worker still on the old key list stores a rotated refresh token meanwhile
        row.encrypted_refresh_token = TokenCipher(["old-key"]).encrypt("rotated-by-refresh")
        row.save(update_fields=["encrypted_refresh_token"])

    thread, _ = hold_row_lock(login.pk, seconds=0.5, then=store_new_refresh_token)
    run("authgear_rotate_key")
    thread.join()

    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key"]
    assert AuthgearLogin.objects.get().refresh_token == "rotated-by-refresh"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cleanup_skips_a_row_being_refreshed_without_waiting(
    row_locks: None, fake_authgear: FakeAuthgear
) -> None:
    flow = log_in(fake_authgear, FakeUser())
    login = login_of(flow)
    backdate(login, created_at=days_ago(60))
    thread, _ = hold_row_lock(login.pk, seconds=3)
    started = time.monotonic()
    out, _ = run("authgear_cleanup", "--older-than-days", "30")
    assert time.monotonic() - started < 2
    assert "checked 0 login(s); deleted 0:" in out
    thread.join()
    out, _ = run("authgear_cleanup", "--older-than-days", "30")
    assert count(out, "idle") == 1 and AuthgearLogin.objects.count() == 0

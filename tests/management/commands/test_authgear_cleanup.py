"""``manage.py authgear_cleanup``.

Authgear is the fake at the HTTP boundary; logins are made through our real views, so the
command acts on real rows, real sessions and refresh tokens the fake really issued.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from authgear_django.models import AuthgearLogin, AuthgearWebhookEvent
from authgear_django.signals import webhook_received
from tests.command_helpers import (
    backdate,
    count,
    days_ago,
    hold_row_lock,
    log_in,
    logged_in,
    login_of,
    run,
)
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.webhook_helpers import SECRET as WEBHOOK_SECRET
from tests.webhook_helpers import deliver, event

pytestmark = pytest.mark.django_db


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


# --- row locks (PostgreSQL) -----------------------------------------------------------------------


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

"""``manage.py authgear_cleanup``: the cases test_authgear_cleanup.py leaves out.

Logins are made through the real views against the fake Authgear, so the command deletes real
rows and revokes refresh tokens the fake really issued.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client

from authgear_django.management import MAX_CONSECUTIVE_REVOKE_FAILURES
from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


def log_in(fake: FakeAuthgear, name: str) -> LoginFlow:
    flow = LoginFlow(Client(), fake)
    assert flow.login(FakeUser(email=f"{name}@example.com")).status_code == 302
    return flow


def cleanup(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("authgear_cleanup", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_revoke_stops_calling_a_dead_authgear_after_repeated_failures_but_deletes_all(
    fake_authgear: FakeAuthgear,
) -> None:
    """A dead Authgear must not make the command wait out one timeout per login."""
    dead = MAX_CONSECUTIVE_REVOKE_FAILURES + 3
    for number in range(dead):
        log_in(fake_authgear, f"user{number}")
    Session.objects.all().delete()  # every login's session is gone
    fake_authgear.fail("revoke", exception=CONNECTION_REFUSED)

    out, err = cleanup("--revoke")

    assert fake_authgear.calls["revoke"] == MAX_CONSECUTIVE_REVOKE_FAILURES
    assert f"revoked at Authgear: 0; failed: {dead}" in out
    assert f"warning: {dead} refresh token(s) could not be revoked" in err
    assert AuthgearLogin.objects.count() == 0  # deleted here anyway


def test_a_success_resets_the_failure_streak(fake_authgear: FakeAuthgear) -> None:
    """Only consecutive failures stop the calls: one success starts the count again."""
    for number in range(MAX_CONSECUTIVE_REVOKE_FAILURES + 2):
        log_in(fake_authgear, f"user{number}")
    Session.objects.all().delete()
    answers = iter([CONNECTION_REFUSED] * (MAX_CONSECUTIVE_REVOKE_FAILURES - 1) + [None] * 10)
    fake_authgear.failures["revoke"] = lambda: next(answers) or (200, {}, "")

    out, _ = cleanup("--revoke")

    assert fake_authgear.calls["revoke"] == MAX_CONSECUTIVE_REVOKE_FAILURES + 2  # none skipped
    assert f"revoked at Authgear: 3; failed: {MAX_CONSECUTIVE_REVOKE_FAILURES - 1}" in out


def test_a_login_with_no_stored_token_is_not_counted_undecryptable(
    fake_authgear: FakeAuthgear,
) -> None:
    """Nothing to decrypt is not "undecryptable": the row lives or dies by its session."""
    alive, gone = log_in(fake_authgear, "alive"), log_in(fake_authgear, "gone")
    AuthgearLogin.objects.update(
        encrypted_refresh_token="", encrypted_access_token="", access_token_expires_at=None
    )
    gone_key = gone.client.session.session_key
    Session.objects.filter(session_key=gone_key).delete()

    out, _ = cleanup()

    assert "undecryptable (tokens no configured key can decrypt): 0" in out
    assert "no_session (Django session gone or expired): 1" in out
    assert list(AuthgearLogin.objects.values_list("session_key", flat=True)) == [
        alive.client.session.session_key
    ]

"""The liveness check: a login ends here at most ``AUTHGEAR_SESSION_CHECK_INTERVAL`` after its
Authgear session ended there (Authgear has no back-channel logout; its userinfo answers 401).

Time is controlled with time-machine (our code and the fake Authgear read the same clock).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from authgear_django.conf import SettingError, conf
from authgear_django.models import AuthgearLogin
from authgear_django.session_entry import decode
from authgear_django.signals import (
    login_revoked,
    refresh_failed,
    session_checked,
    tokens_refreshed,
)
from authgear_django.store import SESSION_LOGIN_KEY
from tests.conftest import CLOCK_START, LoginFlow
from tests.fake_authgear import (
    CONNECTION_REFUSED,
    READ_TIMEOUT,
    FakeAuthgear,
    FakeUser,
)

pytestmark = pytest.mark.django_db
INTERVAL = 300  # the default

OUTAGES: dict[str, dict[str, Any]] = {
    "refused": {"exception": CONNECTION_REFUSED},
    "timeout": {"exception": READ_TIMEOUT},
    "500": {"status": 500},
    "503": {"status": 503},
    "429": {"status": 429, "headers": {"Retry-After": "3"}},
}


@pytest.fixture
def logged_in(clock: Any, login_flow: LoginFlow, authgear_user: FakeUser) -> LoginFlow:
    assert login_flow.login(authgear_user).status_code == 302
    return login_flow


class Received:
    """Signals received during a test, as (name, kwargs)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.items]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for item, kwargs in self.items if item == name]


SIGNALS = {
    "session_checked": session_checked,
    "login_revoked": login_revoked,
    "refresh_failed": refresh_failed,
    "tokens_refreshed": tokens_refreshed,
}


@pytest.fixture
def received() -> Iterator[Received]:
    record = Received()
    receivers = {}
    for name, signal in SIGNALS.items():

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            record.items.append((_name, kwargs))

        receivers[name] = receiver
        signal.connect(receiver, weak=False)
    yield record
    for name, signal in SIGNALS.items():
        signal.disconnect(receivers[name])


def entry_of(flow: LoginFlow) -> Any:
    return decode(flow.client.session[SESSION_LOGIN_KEY])


def groups_of_the_user() -> list[str]:
    user = get_user_model().objects.get()
    return sorted(user.groups.values_list("name", flat=True))


# --- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -5, "soon", True, 1.0j, [300]])
def test_a_bad_check_interval_is_refused(settings: Any, value: Any) -> None:
    settings.AUTHGEAR_SESSION_CHECK_INTERVAL = value
    with pytest.raises(SettingError, match="AUTHGEAR_SESSION_CHECK_INTERVAL"):
        conf.AUTHGEAR_SESSION_CHECK_INTERVAL  # noqa: B018 - the property raises
    assert any("AUTHGEAR_SESSION_CHECK_INTERVAL" in str(problem) for problem in conf.problems())


def test_the_check_interval_defaults_to_five_minutes_and_can_be_turned_off(
    settings: Any,
) -> None:
    assert conf.AUTHGEAR_SESSION_CHECK_INTERVAL == 300
    settings.AUTHGEAR_SESSION_CHECK_INTERVAL = None
    assert conf.AUTHGEAR_SESSION_CHECK_INTERVAL is None
    settings.AUTHGEAR_SESSION_CHECK_INTERVAL = "60"
    assert conf.AUTHGEAR_SESSION_CHECK_INTERVAL == 60


# --- Authgear ended the session ---------------------------------------------------------------


def test_an_ended_authgear_session_signs_out_a_page_request_with_next(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
    received: Received,
) -> None:
    login = AuthgearLogin.objects.get()
    assert login.last_checked_at is not None  # the login's own userinfo call confirmed it
    assert fake_authgear.end_sessions_of(authgear_user) == 1
    clock.shift(INTERVAL)
    response = logged_in.client.get("/private/?tab=2")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Fprivate%2F%3Ftab%3D2"
    assert AuthgearLogin.objects.count() == 0
    assert "_auth_user_id" not in logged_in.client.session
    assert SESSION_LOGIN_KEY not in logged_in.client.session
    assert fake_authgear.calls["userinfo"] == 2  # the login's, then the check's
    assert fake_authgear.calls["refresh"] == 0  # the access token was still fresh
    assert fake_authgear.calls["revoke"] == 0  # Authgear ended the grant already
    [ended] = received.of("login_revoked")
    assert ended["reason"] == "session_ended" and ended["revoked"] is False
    assert ended["login"].pk == login.pk
    assert received.of("refresh_failed") == []  # no refresh failed
    assert received.of("session_checked") == []


def test_an_ended_authgear_session_answers_json_401_to_api_callers(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    fake_authgear.end_sessions_of(authgear_user)
    clock.shift(INTERVAL)
    response = logged_in.client.get("/private/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    body = json.loads(response.content)
    assert body["error"] == "login_expired"
    assert body["login_url"] == "/auth/login/?next=%2Fprivate%2F"
    assert AuthgearLogin.objects.count() == 0


@pytest.mark.parametrize("ended_after", [1, 150, 299], ids=lambda s: f"ended-at-{s}s")
def test_an_ended_session_is_signed_out_within_one_interval_of_its_end(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
    ended_after: int,
) -> None:
    """Requests every second; Authgear ends the session ``ended_after`` s after the last
    confirmation (the login). Signed out at the first request after the check is due, never
    before the check ran, and never later than the interval (+1 s of rounding) after the end."""
    userinfo_calls = fake_authgear.calls["userinfo"]
    ended_at = None
    signed_out_at = None
    for second in range(1, 2 * INTERVAL):
        clock.shift(1)
        if second == ended_after:
            fake_authgear.end_sessions_of(authgear_user)
            ended_at = second
        response = logged_in.client.get("/private/")
        if response.status_code == 302:
            signed_out_at = second
            break
        assert response.status_code == 200
        assert fake_authgear.calls["userinfo"] == userinfo_calls  # no check yet, no call
    assert ended_at is not None and signed_out_at is not None
    assert fake_authgear.calls["userinfo"] == userinfo_calls + 1  # the check signed it out
    assert signed_out_at == INTERVAL  # exactly when the check fell due
    assert signed_out_at - ended_at <= INTERVAL + 1
    assert AuthgearLogin.objects.count() == 0


def test_a_due_refresh_comes_first_and_the_check_uses_the_new_access_token(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    clock.shift(1800)  # the access token expired and the check is due: one visit, both done
    assert logged_in.client.get("/private/").status_code == 200
    assert received.names() == ["tokens_refreshed", "session_checked"]
    assert fake_authgear.calls["refresh"] == 1
    assert fake_authgear.calls["userinfo"] == 2
    login = AuthgearLogin.objects.get()
    [*_, (name, headers)] = fake_authgear.request_headers
    assert name == "userinfo"
    assert headers["Authorization"] == f"Bearer {login.access_token}"  # the refreshed one
    assert login.last_checked_at is not None
    assert login.last_checked_at.timestamp() == CLOCK_START + 1800


def test_a_session_ended_with_the_access_token_expired_ends_at_the_refresh(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
    received: Received,
) -> None:
    """The refresh (due first) already answers ``invalid_grant``: no userinfo call."""
    fake_authgear.end_sessions_of(authgear_user)
    clock.shift(1800)
    assert logged_in.client.get("/private/").status_code == 302
    assert fake_authgear.calls["userinfo"] == 1  # the login's only
    assert [item["reason"] for item in received.of("login_revoked")] == ["refresh_failed"]


def test_a_userinfo_about_another_user_ends_the_login_and_revokes_it(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any, received: Received
) -> None:
    fake_authgear.userinfo_tamper = lambda claims: claims.update(sub="someone-else")
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/").status_code == 302
    assert AuthgearLogin.objects.count() == 0
    [ended] = received.of("login_revoked")
    assert ended["reason"] == "userinfo_invalid" and ended["revoked"] is True
    assert fake_authgear.live_refresh_tokens() == []
    assert get_user_model().objects.get().email == "jane@example.com"  # no claims applied


# --- Authgear unavailable ---------------------------------------------------------------------


@pytest.mark.parametrize("outage", OUTAGES.values(), ids=OUTAGES.keys())
def test_authgear_unavailable_keeps_the_user_and_retries_after_the_retry_interval(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    clock: Any,
    received: Received,
    outage: dict[str, Any],
) -> None:
    checked = AuthgearLogin.objects.get().last_checked_at
    fake_authgear.fail("userinfo", **outage)
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/").content == b"private for jane"
    assert fake_authgear.calls["userinfo"] == 2
    assert AuthgearLogin.objects.get().last_checked_at == checked  # not confirmed
    retry_at = entry_of(logged_in).check_at
    assert retry_at == CLOCK_START + INTERVAL + 10  # AUTHGEAR_REFRESH_RETRY_INTERVAL

    clock.shift(9)  # within the retry interval: no call, no query beyond plain Django's
    assert logged_in.client.get("/private/").status_code == 200
    assert fake_authgear.calls["userinfo"] == 2

    clock.shift(1)  # due again: retried, still down, still signed in
    assert logged_in.client.get("/private/").status_code == 200
    assert fake_authgear.calls["userinfo"] == 3

    fake_authgear.heal("userinfo")
    clock.shift(10)
    assert logged_in.client.get("/private/").status_code == 200
    assert fake_authgear.calls["userinfo"] == 4
    login = AuthgearLogin.objects.get()
    assert login.last_checked_at is not None
    assert login.last_checked_at.timestamp() == CLOCK_START + INTERVAL + 20
    assert entry_of(logged_in).check_at == CLOCK_START + 2 * INTERVAL + 20
    assert len(received.of("session_checked")) == 1
    assert received.of("login_revoked") == []


def test_a_rate_limited_check_waits_as_long_as_authgear_asks(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    fake_authgear.fail("userinfo", status=429, headers={"Retry-After": "45"})
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/").status_code == 200
    assert entry_of(logged_in).check_at == CLOCK_START + INTERVAL + 45


def test_a_401_without_an_oauth_body_is_not_taken_as_an_ended_session(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """A proxy's bare 401 says nothing about the Authgear session: retried, user kept."""
    fake_authgear.fail("userinfo", status=401, body="Unauthorized", content_type="text/plain")
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/").status_code == 200
    assert AuthgearLogin.objects.count() == 1


# --- fresh claims -----------------------------------------------------------------------------


def test_the_check_applies_fresh_claims_to_profile_and_groups(
    logged_in: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    clock: Any,
    settings: Any,
    received: Received,
) -> None:
    settings.AUTHGEAR_ROLE_GROUPS = {"admin": ["Administrators"]}
    authgear_user.roles = ["admin"]
    authgear_user.email = "jane.doe@example.com"
    authgear_user.given_name = "Janet"

    clock.shift(INTERVAL - 1)  # inside the interval: nothing changes here yet
    assert logged_in.client.get("/private/").status_code == 200
    assert groups_of_the_user() == []

    clock.shift(1)
    assert logged_in.client.get("/private/").status_code == 200
    user = get_user_model().objects.get()
    assert (user.email, user.first_name) == ("jane.doe@example.com", "Janet")
    assert groups_of_the_user() == ["Administrators"]
    assert user.authgear_account.email == "jane.doe@example.com"
    assert user.authgear_account.claims["given_name"] == "Janet"
    [checked] = received.of("session_checked")
    assert checked["user"] == user and checked["login"] == AuthgearLogin.objects.get()
    assert checked["claims"]["sub"] == authgear_user.sub

    authgear_user.roles = []  # the role removed at Authgear: the group goes at the next check
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/").status_code == 200
    assert groups_of_the_user() == []


def test_the_checks_claims_reach_a_projects_backend_subclass(
    settings: Any, clock: Any, login_flow: LoginFlow, authgear_user: FakeUser
) -> None:
    """The ``update_user`` of the backend the user logged in with runs, as at a login."""
    from django.contrib.auth.models import Group

    settings.AUTHENTICATION_BACKENDS = [
        "tests.custom_backend.GroupsFromClaimsBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    Group.objects.create(name="Editors")
    assert login_flow.login(authgear_user).status_code == 302
    assert groups_of_the_user() == []
    authgear_user.extra = {"groups": ["Editors"]}
    clock.shift(INTERVAL)
    assert login_flow.client.get("/private/").status_code == 200
    assert groups_of_the_user() == ["Editors"]


# --- when there is no check -------------------------------------------------------------------


def test_interval_none_makes_no_userinfo_call(
    settings: Any, clock: Any, login_flow: LoginFlow, authgear_user: FakeUser
) -> None:
    settings.AUTHGEAR_SESSION_CHECK_INTERVAL = None
    fake_authgear = login_flow.fake
    assert login_flow.login(authgear_user).status_code == 302
    fake_authgear.end_sessions_of(authgear_user)
    for _ in range(5):
        clock.shift(INTERVAL)
        assert login_flow.client.get("/private/").status_code == 200  # until the refresh
    assert fake_authgear.calls["userinfo"] == 1  # the login's only
    assert len(login_flow.client.session[SESSION_LOGIN_KEY]) == 3  # the old format


def test_a_login_without_a_refresh_token_is_never_checked(
    settings: Any, clock: Any, login_flow: LoginFlow, authgear_user: FakeUser
) -> None:
    settings.AUTHGEAR_SCOPES = "openid"
    assert login_flow.login(authgear_user).status_code == 302
    clock.shift(3 * INTERVAL)
    assert login_flow.client.get("/private/").status_code == 200
    assert login_flow.fake.calls["userinfo"] == 1
    assert login_flow.client.session[SESSION_LOGIN_KEY][1:] == [None, None]


def test_a_session_written_before_the_check_existed_is_checked_at_its_next_refresh_visit(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    session = logged_in.client.session
    login_id, _, expires_at = session[SESSION_LOGIN_KEY][:3]
    session[SESSION_LOGIN_KEY] = [login_id, expires_at - 60, expires_at]  # the old format
    session.save()
    fake_authgear.end_sessions_of(authgear_user)
    clock.shift(INTERVAL)
    assert logged_in.client.get("/private/").status_code == 200  # its refresh is not due yet
    assert fake_authgear.calls["userinfo"] == 1
    clock.shift(1800 - 60 - INTERVAL)  # the refresh visit: the refresh says invalid_grant
    assert logged_in.client.get("/private/").status_code == 302


def test_a_legacy_entry_gets_its_check_time_at_the_next_visit(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, clock: Any
) -> None:
    session = logged_in.client.session
    login_id, _, expires_at = session[SESSION_LOGIN_KEY][:3]
    session[SESSION_LOGIN_KEY] = [login_id, CLOCK_START + 10, expires_at]  # an early visit
    session.save()
    clock.shift(10)
    assert logged_in.client.get("/private/").status_code == 200
    assert fake_authgear.calls["userinfo"] == 1  # the row says: confirmed 10 s ago
    assert entry_of(logged_in).check_at == CLOCK_START + INTERVAL


def test_a_request_that_does_not_read_the_user_makes_no_check(
    logged_in: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser, clock: Any
) -> None:
    fake_authgear.end_sessions_of(authgear_user)
    clock.shift(INTERVAL)
    assert Client().get("/").status_code == 200  # anonymous: nothing to check
    assert logged_in.client.get("/auth/login/").status_code == 302  # our views: never held up
    assert fake_authgear.calls["userinfo"] == 1

"""The local provider's session ending: ``end_sessions``, the admin action, the operator login.

The provider is its own Django project, so each test runs a scenario in a fresh Python process
under the provider's own settings (its admin at ``/admin/`` included), on a fresh SQLite
database: migrate, ``seed_demo``, then real sign-ins through ``/login``, ``/oauth2/authorize``
and ``/oauth2/token`` with Django's test client. The scenario prints what it saw as JSON and
the test asserts on it here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# The local provider is part of the demo extra (django-oauth-toolkit); the release and
# lowest/newest-version runs install only the test extra.
pytest.importorskip("oauth2_provider", reason="the local provider needs the demo extra")

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_TIMEOUT = 120  # seconds for one scenario process (migrate included)
REDIRECT_URI = "http://127.0.0.1:8000/auth/callback/"  # seed_demo's default
DEMO_EMAIL = "demo@example.com"
OPERATOR_EMAIL = "operator@example.com"
PASSWORD = "authgear-demo"
VERIFIER = "v" * 64  # PKCE verifier of every sign-in here

# The provider's own settings and URLs (its admin included), on a fresh SQLite database.
SETTINGS_MODULE = """
from example_project.local_provider.settings import *  # noqa: F403
"""


@pytest.fixture
def run_scenario(tmp_path: Path) -> Callable[[str], dict[str, Any]]:
    """Run ``scenario_<name>`` of this module in a provider process; return what it printed."""
    (tmp_path / "op_admin_settings.py").write_text(SETTINGS_MODULE)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LOCAL_OP_", "DJANGO_", "AUTHGEAR_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "op_admin_settings",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
            "LOCAL_OP_DB": str(tmp_path / "op.sqlite3"),
            "LOCAL_OP_KEY_FILE": str(tmp_path / "op_rsa_key.pem"),
            "LOCAL_OP_FAST_HASHES": "1",
        }
    )

    def run(name: str) -> dict[str, Any]:
        code = f"import tests.test_local_provider_admin as t; t.run_in_provider({name!r})"
        result = subprocess.run(  # noqa: S603 - our interpreter, our code
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return answer

    return run


# --- in the provider's process ------------------------------------------------------------------


def run_in_provider(name: str) -> None:
    """Set the provider project up (migrate, seed_demo) and print ``scenario_<name>()`` as JSON."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, "testserver", is allowed
    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    scenario = globals()[f"scenario_{name}"]
    print(json.dumps(scenario()))


def _command(*args: str) -> str:
    """Run a provider management command; its output, or ``error: <message>``."""
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as error:
        return f"error: {error}"
    return out.getvalue()


def _sign_in(email: str) -> tuple[Any, dict[str, Any]]:
    """A browser (test client) signed in at the provider, and the tokens of a new grant."""
    from django.test import Client

    browser = Client()
    response = browser.post("/login", {"username": email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return browser, _authorize(browser)


def _authorize(browser: Any) -> dict[str, Any]:
    """One authorization-code flow in an existing provider session: a new grant's tokens."""
    from django.test import Client

    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    response = browser.get(
        "/oauth2/authorize",
        {
            "response_type": "code",
            "client_id": "demo-client",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid offline_access",
            "state": "s",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
    )
    location = response.headers.get("Location", "")
    if not location.startswith(REDIRECT_URI):
        return {"authorize": response.status_code, "location": location}
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens: dict[str, Any] = (
        Client()
        .post(
            "/oauth2/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": "demo-client",
                "client_secret": "demo-secret",
                "code_verifier": VERIFIER,
            },
        )
        .json()
    )
    return tokens


def _userinfo(access_token: str) -> dict[str, Any]:
    from django.test import Client

    response = Client().get("/oauth2/userinfo", HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return {
        "status": response.status_code,
        "www_authenticate": response.headers.get("WWW-Authenticate", ""),
    }


def _refresh(refresh_token: str) -> dict[str, Any]:
    from django.test import Client

    response = Client().post(
        "/oauth2/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "demo-client",
            "client_secret": "demo-secret",
        },
    )
    return {"status": response.status_code, "error": response.json().get("error")}


def _grant(tokens: dict[str, Any]) -> str:
    """The grant id: the uuid before the dot of the refresh token (as ``--list`` prints it)."""
    grant_id: str = tokens["refresh_token"].split(".")[0]
    return grant_id


def scenario_end_all() -> dict[str, Any]:
    browser_1, first = _sign_in(DEMO_EMAIL)
    _, second = _sign_in(DEMO_EMAIL)
    _, operator = _sign_in(OPERATOR_EMAIL)
    listed = _command("end_sessions", DEMO_EMAIL, "--list")
    before = _userinfo(first["access_token"])
    output = _command("end_sessions", "DEMO@example.com")
    return {
        "grants": [_grant(first), _grant(second)],
        "listed": listed,
        "before": before,
        "output": output,
        "userinfo_after": [_userinfo(first["access_token"]), _userinfo(second["access_token"])],
        "refresh_after": _refresh(first["refresh_token"]),
        "listed_after": _command("end_sessions", DEMO_EMAIL, "--list"),
        "operator_userinfo": _userinfo(operator["access_token"]),
        "reauthorize": _authorize(browser_1),  # the provider login ended too
    }


def scenario_end_one_grant() -> dict[str, Any]:
    browser_1, first = _sign_in(DEMO_EMAIL)
    _, second = _sign_in(DEMO_EMAIL)
    output = _command("end_sessions", DEMO_EMAIL, "--grant", _grant(first))
    return {
        "output": output,
        "first_userinfo": _userinfo(first["access_token"]),
        "first_refresh": _refresh(first["refresh_token"]),
        "second_userinfo": _userinfo(second["access_token"]),
        "second_refresh": _refresh(second["refresh_token"]),
        "listed_after": _command("end_sessions", DEMO_EMAIL, "--list"),
        "reauthorize_has_tokens": "access_token" in _authorize(browser_1),
        "again": _command("end_sessions", DEMO_EMAIL, "--grant", _grant(first)),
        "not_a_uuid": _command("end_sessions", DEMO_EMAIL, "--grant", "nope"),
        "unknown_user": _command("end_sessions", "nobody@example.com"),
    }


def scenario_admin_action() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.messages import get_messages
    from django.test import Client

    _, demo = _sign_in(DEMO_EMAIL)
    _, operator_tokens = _sign_in(OPERATOR_EMAIL)
    operator = get_user_model().objects.get(username=OPERATOR_EMAIL)
    demo_user = get_user_model().objects.get(username=DEMO_EMAIL)
    admin = Client()
    login = admin.post(
        "/admin/login/",
        {"username": OPERATOR_EMAIL, "password": PASSWORD, "next": "/admin/"},
    )
    changelist = admin.get("/admin/auth/user/")
    action = admin.post(
        "/admin/auth/user/",
        {"action": "end_user_sessions", "_selected_action": [str(demo_user.pk)], "index": "0"},
    )
    demo_admin = Client()
    demo_login = demo_admin.post(
        "/admin/login/", {"username": DEMO_EMAIL, "password": PASSWORD, "next": "/admin/"}
    )
    return {
        "operator": {
            "is_staff": operator.is_staff,
            "is_superuser": operator.is_superuser,
            "password_ok": operator.check_password(PASSWORD),
        },
        "login": [login.status_code, login.headers.get("Location")],
        "changelist": changelist.status_code,
        "offers_action": "End sessions (revoke grants)" in changelist.content.decode(),
        "action": action.status_code,
        "messages": [str(message) for message in get_messages(action.wsgi_request)],
        "demo_userinfo": _userinfo(demo["access_token"]),
        "demo_refresh": _refresh(demo["refresh_token"]),
        "operator_userinfo": _userinfo(operator_tokens["access_token"]),
        "demo_admin_login": demo_login.status_code,  # not staff: the form again, no redirect
        "seed_again": _command("seed_demo"),
    }


# --- the tests ----------------------------------------------------------------------------------


def test_end_sessions_revokes_every_grant_of_the_user_and_its_provider_login(
    run_scenario: Callable[[str], dict[str, Any]],
) -> None:
    seen = run_scenario("end_all")
    grants = seen["grants"]
    listed = seen["listed"].splitlines()
    assert [line.split()[1] for line in listed] == grants  # oldest first
    assert all(" client demo-client started " in line for line in listed)
    assert seen["before"]["status"] == 200
    assert seen["output"] == (
        f"{DEMO_EMAIL}: revoked 2 grant(s), 2 access token(s); ended 2 provider login(s)\n"
    )
    for after in seen["userinfo_after"]:
        assert after["status"] == 401
        assert 'error="invalid_token"' in after["www_authenticate"]
    assert seen["refresh_after"] == {"status": 400, "error": "invalid_grant"}
    assert seen["listed_after"] == ""
    assert seen["operator_userinfo"]["status"] == 200  # another user: untouched
    # the browser's provider login ended: authorize sends it to the login page
    assert seen["reauthorize"]["authorize"] == 302
    assert seen["reauthorize"]["location"].startswith("/login?")


def test_end_sessions_with_grant_revokes_only_that_grant(
    run_scenario: Callable[[str], dict[str, Any]],
) -> None:
    seen = run_scenario("end_one_grant")
    assert seen["output"] == (
        f"{DEMO_EMAIL}: revoked 1 grant(s), 1 access token(s); ended 0 provider login(s)\n"
    )
    assert seen["first_userinfo"]["status"] == 401
    assert seen["first_refresh"] == {"status": 400, "error": "invalid_grant"}
    assert seen["second_userinfo"]["status"] == 200
    assert seen["second_refresh"]["status"] == 200
    assert len(seen["listed_after"].splitlines()) == 1
    assert seen["reauthorize_has_tokens"]  # the provider login stays: no password needed
    assert seen["again"].startswith(f"error: not a live grant of {DEMO_EMAIL}: ")
    assert seen["not_a_uuid"] == "error: --grant 'nope' is not a grant id (a UUID)"
    assert seen["unknown_user"] == "error: no user 'nobody@example.com'"


def test_admin_action_ends_the_selected_users_sessions(
    run_scenario: Callable[[str], dict[str, Any]],
) -> None:
    seen = run_scenario("admin_action")
    assert seen["operator"] == {"is_staff": True, "is_superuser": True, "password_ok": True}
    assert seen["login"] == [302, "/admin/"]
    assert seen["changelist"] == 200 and seen["offers_action"]
    assert seen["action"] == 302
    assert seen["messages"] == [
        "Ended the sessions of 1 user: 1 grant(s) and 1 access token(s) revoked."
    ]
    assert seen["demo_userinfo"]["status"] == 401
    assert seen["demo_refresh"] == {"status": 400, "error": "invalid_grant"}
    assert seen["operator_userinfo"]["status"] == 200  # not selected: untouched
    assert seen["demo_admin_login"] == 200  # the demo user is no operator
    assert f"updated provider admin {OPERATOR_EMAIL}" in seen["seed_again"]  # idempotent

"""The example site: it passes Django's checks and shows the guide's pages."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

ROOT = Path(__file__).resolve().parent.parent


PUBLISHED_KEY = "example-only-insecure-secret-key-change-me-0123456789"
# Prints what the example site's settings came to, in a process of its own.
SHOW_SETTINGS = (
    "import json; from django.conf import settings; print(json.dumps({"
    "'DEBUG': settings.DEBUG, 'SECRET_KEY': settings.SECRET_KEY, "
    "'ALLOWED_HOSTS': settings.ALLOWED_HOSTS}))"
)


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` of the example site, with only the variables given (plus the
    required Authgear ones). Empty values also win over a developer's ``.env`` file, since
    python-dotenv does not override what is set."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "AUTHGEAR_", "EXAMPLE_"))
    }
    env.update(
        {
            "AUTHGEAR_ENDPOINT": "https://myapp.authgear.cloud",
            "AUTHGEAR_CLIENT_ID": "a1b2c3d4e5f60718",
            "AUTHGEAR_CLIENT_SECRET": "secret",
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "",
            "DJANGO_SECRET_KEY": "",
            "DATABASE_URL": "",
            "REDIS_URL": "",
            **variables,
        }
    )
    return subprocess.run(  # noqa: S603  (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def example_settings(**variables: str) -> dict[str, Any]:
    result = manage("shell", "-c", SHOW_SETTINGS, **variables)
    assert result.returncode == 0, result.stdout + result.stderr
    settings: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return settings


def test_example_settings_pass_django_checks_in_development(tmp_path: Path) -> None:
    result = manage(
        "check",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="true",
        EXAMPLE_SECRET_KEY_FILE=str(tmp_path / "key"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_refuses_to_start_with_debug_off_and_no_secret_key() -> None:
    result = manage("check")  # neither DJANGO_DEBUG nor DJANGO_SECRET_KEY
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set." in result.stderr
    assert "DJANGO_DEBUG=true" in result.stderr  # the way out, for a developer


def test_example_debug_is_off_unless_asked_for() -> None:
    key = "a-secret-from-the-environment-" + "x" * 40
    shown = example_settings(DJANGO_SECRET_KEY=key)
    assert shown["DEBUG"] is False
    assert shown["SECRET_KEY"] == key
    assert shown["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert example_settings(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="true")["DEBUG"] is True


@pytest.mark.parametrize("debug", ["", "true"])
def test_example_refuses_the_key_it_once_published(debug: str) -> None:
    result = manage("check", DJANGO_SECRET_KEY=PUBLISHED_KEY, DJANGO_DEBUG=debug)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is a key published in this repository" in result.stderr


def test_example_debug_key_is_random_private_and_kept_across_restarts(tmp_path: Path) -> None:
    """Kept: it encrypts the stored refresh tokens, so a new key per start would strand them."""
    key_file = tmp_path / "secret_key"
    first = example_settings(DJANGO_DEBUG="true", EXAMPLE_SECRET_KEY_FILE=str(key_file))
    again = example_settings(DJANGO_DEBUG="true", EXAMPLE_SECRET_KEY_FILE=str(key_file))
    assert first["SECRET_KEY"] == again["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first["SECRET_KEY"]) >= 50 and first["SECRET_KEY"] != PUBLISHED_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]  # no temporary left

    other_file = tmp_path / "elsewhere"
    other = example_settings(DJANGO_DEBUG="true", EXAMPLE_SECRET_KEY_FILE=str(other_file))
    assert other["SECRET_KEY"] != first["SECRET_KEY"]  # random, not a constant


def test_the_default_development_key_file_is_ignored_by_git() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and the repository")
    result = subprocess.run(  # noqa: S603  (git itself, fixed arguments)
        [git, "check-ignore", "--quiet", "example_project/.secret_key"], cwd=ROOT, check=False
    )
    assert result.returncode == 0


example = override_settings(
    ROOT_URLCONF="example_project.urls",
    INSTALLED_APPS=[*settings.INSTALLED_APPS, "django.contrib.staticfiles", "example_project.site"],
    LOGIN_REDIRECT_URL="welcome",
    LOGOUT_REDIRECT_URL="home",
)


@pytest.mark.django_db
@example
def test_guide_flow_landing_login_welcome_private_logout(fake_authgear: FakeAuthgear) -> None:
    client = Client()
    landing = client.get("/")
    assert b"Log in" in landing.content
    flow = LoginFlow(client, fake_authgear)
    response = flow.login(FakeUser(email="jane@example.com"), "next=/welcome/")
    assert response["Location"] == "/welcome/"
    welcome = client.get("/welcome/")
    assert welcome.status_code == 200
    assert b"Welcome jane@example.com" in welcome.content
    assert b"&quot;email_verified&quot;: true" in welcome.content
    assert client.get("/private/").status_code == 200
    logout = client.post("/auth/logout/")
    assert logout["Location"].startswith("https://authgear.test/oauth2/end_session?")
    assert "post_logout_redirect_uri=http%3A%2F%2Ftestserver%2F" in logout["Location"]
    assert client.get("/private/").status_code == 302


# --- LoginRequiredMiddleware and the demo user's admin role -----------------------------------

LOGIN_REQUIRED_MIDDLEWARE = "django.contrib.auth.middleware.LoginRequiredMiddleware"
# What the example's settings say about logins and roles, in a process of its own.
SHOW_LOGIN_SETTINGS = (
    "import json; from django.conf import settings; print(json.dumps({"
    "'MIDDLEWARE': settings.MIDDLEWARE, 'LOGIN_URL': settings.LOGIN_URL, "
    "'AUTHENTICATION_BACKENDS': settings.AUTHENTICATION_BACKENDS, "
    "'AUTHGEAR_STAFF_ROLES': settings.AUTHGEAR_STAFF_ROLES, "
    "'AUTHGEAR_SUPERUSER_ROLES': settings.AUTHGEAR_SUPERUSER_ROLES}))"
)


@pytest.fixture(scope="module")
def example_login_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key_file = tmp_path_factory.mktemp("example") / "key"
    result = manage(
        "shell",
        "-c",
        SHOW_LOGIN_SETTINGS,
        DJANGO_DEBUG="true",
        EXAMPLE_SECRET_KEY_FILE=str(key_file),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shown: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return shown


def test_example_maps_the_admin_role_to_staff_and_superuser(
    example_login_settings: dict[str, Any],
) -> None:
    """The local provider's demo user has the Authgear role "admin": the admin opens for them."""
    assert example_login_settings["AUTHGEAR_STAFF_ROLES"] == ["admin"]
    assert example_login_settings["AUTHGEAR_SUPERUSER_ROLES"] == ["admin"]


def test_example_requires_a_login_everywhere_on_django_5_1(
    example_login_settings: dict[str, Any],
) -> None:
    middleware = example_login_settings["MIDDLEWARE"]
    if django.VERSION < (5, 1):
        assert LOGIN_REQUIRED_MIDDLEWARE not in middleware
        return
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert middleware.index(LOGIN_REQUIRED_MIDDLEWARE) > auth


@pytest.mark.skipif(django.VERSION < (5, 1), reason="LoginRequiredMiddleware is new in Django 5.1")
@pytest.mark.django_db
@example
def test_example_public_pages_and_the_admin_role_with_login_required_middleware(
    fake_authgear: FakeAuthgear, example_login_settings: dict[str, Any]
) -> None:
    """The example's own middleware and role settings: anonymous visitors reach the landing
    page, the sign-in and the bearer API; everything else sends them to Authgear; the demo
    user's "admin" role makes them staff and superuser, so the admin lists Authgear accounts."""
    with override_settings(**example_login_settings, STATIC_URL="static/"):  # admin pages
        client = Client()
        assert client.get("/").status_code == 200
        api = client.get("/api/me/")
        assert api.status_code == 401  # the bearer decorator answers, not the login redirect
        for page in ("/welcome/", "/private/", "/call-api/", "/sensitive/"):
            response = client.get(page)
            assert response.status_code == 302, page
            assert response["Location"] == f"/auth/login/?next={page}"
        # The admin names its own login page (the password login, for ModelBackend users).
        assert client.get("/admin/")["Location"] == "/admin/login/?next=/admin/"

        flow = LoginFlow(client, fake_authgear)
        landed = flow.login(FakeUser(email="demo@example.com", roles=["admin"]), "next=/admin/")
        assert landed["Location"] == "/admin/"
        admin_index = client.get("/admin/")
        assert admin_index.status_code == 200
        assert b"Authgear accounts" in admin_index.content
        user = admin_index.wsgi_request.user
        assert user.is_staff and user.is_superuser
        accounts = client.get("/admin/authgear_django/authgearaccount/")
        assert accounts.status_code == 200
        assert b"demo@example.com" in accounts.content

"""The example site: it passes Django's checks and shows the guide's pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

ROOT = Path(__file__).resolve().parent.parent


def test_example_settings_pass_django_checks() -> None:
    env = {
        **os.environ,
        "AUTHGEAR_ENDPOINT": "https://myapp.authgear.cloud",
        "AUTHGEAR_CLIENT_ID": "a1b2c3d4e5f60718",
        "AUTHGEAR_CLIENT_SECRET": "secret",
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


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

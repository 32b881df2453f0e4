"""decorators.py: HTTP glue over the login flow, and no import of the views."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

SCRIPT = """
import sys, django
django.setup()
import importlib
importlib.import_module(sys.argv[1])
print("authgear_django.views" in sys.modules)
"""


@pytest.mark.parametrize(
    "module",
    ["authgear_django.decorators", "authgear_django.responses", "authgear_django.login_flow"],
)
def test_module_does_not_import_the_views(module: str) -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT, module],
        capture_output=True,
        text=True,
        check=False,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": "."},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


@pytest.mark.django_db
def test_a_password_user_on_a_reauthentication_page_gets_a_403_page(fake_authgear: Any) -> None:
    get_user_model().objects.create_user("admin", password="pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = client.get("/sensitive/")
    assert response.status_code == 403
    assert b"Sign-in with Authgear needed" in response.content


def test_a_negative_max_age_is_refused() -> None:
    from authgear_django.decorators import reauthentication_required

    with pytest.raises(ValueError, match="max_age"):
        reauthentication_required(max_age=-1)

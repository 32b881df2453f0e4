"""What the management command tests share: running a command, making and ageing logins."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser


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

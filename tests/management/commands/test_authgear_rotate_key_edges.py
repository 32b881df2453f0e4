"""``manage.py authgear_rotate_key``: the cases test_authgear_rotate_key.py leaves out.

Logins are made through the real views under an old key, then the key list gets a new first
key, as the documented rotation does.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from authgear_django.crypto import TokenCipher, TokenDecryptionError
from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("authgear_rotate_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_login_without_a_refresh_token_is_rotated_and_keeps_none(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    """Without ``offline_access`` Authgear issues no refresh token: the empty column stays
    empty (not an encrypted empty string) and the other tokens move to the new key."""
    settings.AUTHGEAR_SCOPES = "openid"
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["old-key"]
    flow = LoginFlow(Client(), fake_authgear)
    assert flow.login(FakeUser()).status_code == 302
    before = AuthgearLogin.objects.get()
    assert before.encrypted_refresh_token == ""
    access, id_token = before.access_token, before.id_token
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key", "old-key"]

    out = rotate("-v", "2")

    assert "re-encrypted under the first key: 1" in out
    assert "undecryptable, left untouched: 0" in out
    assert "batch done up to" in out  # verbosity 2 reports each batch
    row = AuthgearLogin.objects.get()
    assert row.encrypted_refresh_token == ""
    new_only = TokenCipher(["new-key"])
    assert new_only.decrypt(row.encrypted_access_token) == access
    assert new_only.decrypt(row.encrypted_id_token) == id_token
    with pytest.raises(TokenDecryptionError):
        TokenCipher(["old-key"]).decrypt(row.encrypted_access_token)
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key"]
    assert flow.client.get("/private/").status_code == 200  # the old key can go


def test_an_interrupted_run_says_where_to_resume_and_resuming_finishes_the_job(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    """Ctrl-C between batches: the finished batches are committed and the message gives the
    exact ``--after`` to resume with; resuming rotates exactly the rest."""
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["old-key"]
    for number in range(5):
        LoginFlow(Client(), fake_authgear).login(FakeUser(email=f"u{number}@example.com"))
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["new-key", "old-key"]
    pks = sorted(AuthgearLogin.objects.values_list("pk", flat=True))
    batch_queries = 0

    def interrupt_on_the_second_batch(execute: Any, sql: str, *args: Any) -> Any:
        nonlocal batch_queries
        if sql.lstrip().upper().startswith("SELECT") and "authgear_django_authgearlogin" in sql:
            batch_queries += 1
            if batch_queries == 2:
                raise KeyboardInterrupt  # the operator pressed Ctrl-C
        return execute(sql, *args)

    with (
        connection.execute_wrapper(interrupt_on_the_second_batch),
        pytest.raises(CommandError) as stopped,
    ):
        rotate("--batch-size", "2")

    message = str(stopped.value)
    assert f"resume with: manage.py authgear_rotate_key --after {pks[1]}" in message
    new_only = TokenCipher(["new-key"])
    rows = {row.pk: row for row in AuthgearLogin.objects.all()}
    assert all(new_only.decrypt(rows[pk].encrypted_refresh_token) for pk in pks[:2])
    for pk in pks[2:]:
        with pytest.raises(TokenDecryptionError):
            new_only.decrypt(rows[pk].encrypted_refresh_token)

    out = rotate("--after", str(pks[1]))
    assert "re-encrypted under the first key: 3" in out
    assert all(new_only.decrypt(row.encrypted_refresh_token) for row in AuthgearLogin.objects.all())

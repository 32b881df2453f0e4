"""``manage.py authgear_rotate_key``.

Authgear is the fake at the HTTP boundary; logins are made through our real views, so the
command acts on real rows, real sessions and refresh tokens the fake really issued.
"""

from __future__ import annotations

from typing import Any

import pytest

from authgear_django.crypto import TokenCipher, TokenDecryptionError
from authgear_django.models import AuthgearLogin
from tests.command_helpers import backdate, count, fails, hold_row_lock, log_in, logged_in, run
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db


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


# --- row locks (PostgreSQL) -----------------------------------------------------------------------


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

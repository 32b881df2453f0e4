"""Tokens at rest: encrypted in every table, readable after a key rotation, never in the session."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import jwt
import pytest
from django.db import connection
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from authgear_django.crypto import TokenCipher, TokenDecryptionError
from authgear_django.models import AuthgearLogin
from authgear_django.session_entry import SessionEntry, decode, encode, refresh_due
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db(transaction=True)


def all_database_text() -> str:
    """Every value of every table, read with raw SQL (no model decryption involved)."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names come from introspection
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_no_table_holds_a_token_in_plaintext(fake_authgear: FakeAuthgear) -> None:
    for _ in range(2):
        LoginFlow(Client(), fake_authgear).login(FakeUser())
    login = AuthgearLogin.objects.first()
    assert login is not None
    dump = all_database_text()
    tokens = [*fake_authgear.live_refresh_tokens(), *fake_authgear.access_tokens]
    tokens += [row.id_token for row in AuthgearLogin.objects.all()]
    assert len(tokens) == 6
    for token in tokens:
        assert token not in dump
        for part in token.split("."):  # nor any piece: the grant id, the JWT payload, ...
            assert part[:20] not in dump


def test_id_token_payload_is_not_stored_readably(fake_authgear: FakeAuthgear) -> None:
    LoginFlow(Client(), fake_authgear).login(FakeUser())
    id_token = AuthgearLogin.objects.get().id_token
    assert id_token is not None
    assert id_token.split(".")[1] not in all_database_text()


def test_tokens_survive_a_secret_key_rotation(fake_authgear: FakeAuthgear, settings) -> None:
    LoginFlow(Client(), fake_authgear).login(FakeUser())
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-brand-new-secret-key-0123456789-abcdefghij"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert AuthgearLogin.objects.get().refresh_token in fake_authgear.live_refresh_tokens()


def test_explicit_encryption_keys_take_over_and_rotate(
    fake_authgear: FakeAuthgear, settings
) -> None:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["key-one"]
    LoginFlow(Client(), fake_authgear).login(FakeUser())
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["key-two", "key-one"]
    login = AuthgearLogin.objects.get()
    assert login.refresh_token in fake_authgear.live_refresh_tokens()
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["key-two"]
    with pytest.raises(TokenDecryptionError):
        _ = AuthgearLogin.objects.get().refresh_token


def test_logout_works_when_the_stored_tokens_cannot_be_decrypted(
    login_flow: LoginFlow, authgear_user: FakeUser, settings
) -> None:
    login_flow.login(authgear_user)
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["a-key-that-never-encrypted-anything"]
    response = login_flow.client.post("/auth/logout/")
    assert response.status_code == 302
    assert AuthgearLogin.objects.count() == 0
    assert login_flow.client.get("/private/").status_code == 302


def test_cipher_round_trip_and_tamper_detection() -> None:
    cipher = TokenCipher(["secret"])
    ciphertext = cipher.encrypt("token-value")
    assert "token-value" not in ciphertext
    assert cipher.decrypt(ciphertext) == "token-value"
    assert TokenCipher(["new", "secret"]).rotate(ciphertext) != ciphertext
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(ciphertext[:-4] + "AAAA")


def test_tokens_kept_with_an_unverified_id_token_are_encrypted_too(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    """A refresh whose ID token waits for its key stores all three tokens at once, encrypted;
    the row records only that its ID token awaits verification."""
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    fake_authgear.rotation = True
    fake_authgear.rotate_signing_key()
    fake_authgear.fail("jwks", status=500)
    clock.shift(1800)
    assert flow.client.get("/private/").status_code == 200
    login = AuthgearLogin.objects.get()
    tokens = [login.refresh_token, login.access_token, login.id_token]
    assert login.refresh_token in fake_authgear.live_refresh_tokens()
    assert jwt.get_unverified_header(login.id_token or "")["kid"] == fake_authgear.kid
    dump = all_database_text()  # the session table included
    assert login.id_token_unverified_since is not None
    for token in tokens:
        assert token
        for part in token.split("."):
            assert part[:20] not in dump


# --- the session entry codec (authgear_django.session_entry) ------------------------------------

LOGIN_HEX = uuid.uuid4().hex


def test_session_entry_round_trips_and_stays_three_items_in_the_usual_case() -> None:
    usual = SessionEntry(LOGIN_HEX, refresh_at=1_900_001_740, expires_at=1_900_001_800)
    assert encode(usual) == [LOGIN_HEX, 1_900_001_740, 1_900_001_800]
    assert decode(encode(usual)) == usual
    waiting = SessionEntry(
        LOGIN_HEX, refresh_at=10, expires_at=20, retry_at=None, verify_at=30.5, deadline=40
    )
    assert encode(waiting) == [LOGIN_HEX, 10, 20, None, 30.5, 40]
    assert decode(encode(waiting)) == waiting
    assert decode(json.loads(json.dumps(encode(waiting)))) == waiting  # the JSON serializer
    assert decode(encode(usual.with_retry_at(15.0))) == usual.with_retry_at(15.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # written before the optional items existed: read unchanged
        ([LOGIN_HEX, 100, 200], SessionEntry(LOGIN_HEX, 100.0, 200.0)),
        ([LOGIN_HEX, None, None], SessionEntry(LOGIN_HEX)),  # no refresh token: never due
        # the dashed form of the id (a hand-made session), and a tuple (pickling serializer)
        ([str(uuid.UUID(LOGIN_HEX)), 100, 200], SessionEntry(LOGIN_HEX, 100.0, 200.0)),
        ((LOGIN_HEX, 100, 200), SessionEntry(LOGIN_HEX, 100.0, 200.0)),
        ([LOGIN_HEX], SessionEntry(LOGIN_HEX)),
        # a malformed time reads as absent, the entry stays
        ([LOGIN_HEX, "100", True, float("nan"), float("inf"), {}], SessionEntry(LOGIN_HEX)),
    ],
)
def test_session_entry_reads_legacy_and_odd_entries(raw: Any, expected: SessionEntry) -> None:
    assert decode(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        LOGIN_HEX,  # a bare id, not a list
        [],
        [None, 1, 2],
        ["not-a-uuid", 1, 2],
        [12345, 1, 2],
        ["x" * 10_000, 1, 2],
        [LOGIN_HEX, 1, 2, 3, 4, 5, 6],  # longer than any format
        {"login": LOGIN_HEX},
    ],
)
def test_a_malformed_session_entry_is_no_login(raw: Any) -> None:
    """(The hot path's :func:`refresh_due` reads only the time: a malformed entry that looks
    due is sent to the refresh path, which finds no login and logs the session out.)"""
    assert decode(raw) is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
        lambda children: st.lists(children, max_size=8) | st.tuples(children, children),
        max_leaves=20,
    ),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_decoding_and_refresh_due_never_raise(raw: Any, now: float) -> None:
    entry = decode(raw)
    assert entry is None or isinstance(entry, SessionEntry)
    due = refresh_due(raw, now)
    assert isinstance(due, bool)
    if entry is not None:
        assert refresh_due(entry, now) is (entry.refresh_at is not None and now >= entry.refresh_at)


def test_refresh_due_is_one_rule_for_the_stored_list_and_the_decoded_entry() -> None:
    stored = [LOGIN_HEX, 1_000, 1_060]
    for now in (999.9, 1_000, 1_000.1):
        assert refresh_due(stored, now) is refresh_due(decode(stored), now) is (now >= 1_000)
    assert refresh_due([LOGIN_HEX, None, None], now=10**12) is False


def test_the_session_entry_module_imports_no_django() -> None:
    from tests.test_core_is_django_free import BLOCK_DJANGO

    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", BLOCK_DJANGO, "authgear_django.session_entry"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr

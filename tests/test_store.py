"""Tokens at rest: encrypted in every table, readable after a key rotation, never in the session."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import timezone

from authgear_django import store
from authgear_django.crypto import TokenCipher, TokenDecryptionError
from authgear_django.models import AuthgearLogin
from authgear_django.session_entry import SessionEntry
from tests.conftest import CLOCK_START, LoginFlow
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


def test_the_refresh_leeway_is_never_more_than_half_the_token_lifetime(settings) -> None:
    settings.AUTHGEAR_REFRESH_LEEWAY = 60
    assert store.refresh_leeway(None) == 60  # lifetime unknown: the setting as is
    assert store.refresh_leeway(3600) == 60
    assert store.refresh_leeway(10) == 5


def test_a_session_pointing_at_a_malformed_or_deleted_login_has_no_login(
    fake_authgear: FakeAuthgear,
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    request = RequestFactory().get("/")
    request.session = flow.client.session
    login = store.current_login(request)
    assert login is not None
    due = [t for t in (store.login_refresh_at(login), store.login_check_at(login)) if t is not None]
    assert store.session_refresh_at(request.session) == min(due)
    AuthgearLogin.objects.all().delete()
    assert store.current_login(request) is None
    store.write_entry(request.session, SessionEntry(login_id="not-a-uuid", refresh_at=None))
    assert store.current_login(request) is None
    store.forget_login(request.session)
    assert store.session_refresh_at(request.session) is None


def test_ending_a_login_without_refresh_token_or_session_calls_nobody(
    fake_authgear: FakeAuthgear,
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    AuthgearLogin.objects.update(encrypted_refresh_token="", session_key="")
    result = store.end_logins(
        AuthgearLogin.objects.all(), reason="test", revoke=True, end_sessions=True
    )
    assert result == store.EndResult(ended=1, revoked=0)
    assert fake_authgear.calls["revoke"] == 0


def test_end_login_keeps_the_session_and_reports_the_revocation(
    fake_authgear: FakeAuthgear,
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    session_key = flow.client.session.session_key
    assert store.end_login(AuthgearLogin.objects.get(), reason="test") is True
    assert fake_authgear.live_refresh_tokens() == []
    assert Session.objects.filter(session_key=session_key).exists()


def test_end_all_logins_ends_every_device_and_its_session(fake_authgear: FakeAuthgear) -> None:
    person = FakeUser()
    laptop, phone = LoginFlow(Client(), fake_authgear), LoginFlow(Client(), fake_authgear)
    laptop.login(person)
    phone.login(person)
    user_id = AuthgearLogin.objects.first().account.user_id  # type: ignore[union-attr]
    assert store.end_all_logins(user_id, reason="test") == 2
    assert fake_authgear.live_refresh_tokens() == []
    assert not Session.objects.exists()


def test_rebinding_an_unverified_login_keeps_the_planned_verification_time(
    fake_authgear: FakeAuthgear, clock: Any
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    flow.login(FakeUser())
    AuthgearLogin.objects.update(id_token_unverified_since=timezone.now())
    login = AuthgearLogin.objects.get()
    session = flow.client.session
    store.bind_session(session, login)  # no plan yet: verify now
    assert store.read_entry(session).verify_at == CLOCK_START  # type: ignore[union-attr]
    store.bind_session(session, login, verify_at=CLOCK_START + 30)
    store.bind_session(session, login)  # the plan already made is kept
    assert store.read_entry(session).verify_at == CLOCK_START + 30  # type: ignore[union-attr]


def test_the_refresh_time_is_never_early_for_a_fractional_expiry() -> None:
    """Rounded up from the exact expiry: a 10 s token expiring at .7 is due at -4.3 → -4."""
    from datetime import datetime, timezone

    from authgear_django.models import AuthgearLogin
    from authgear_django.store import login_refresh_at

    login = AuthgearLogin(
        encrypted_refresh_token="x",
        access_token_expires_at=datetime.fromtimestamp(1_800_000_000.7, tz=timezone.utc),
        access_token_lifetime=10,
    )
    assert login_refresh_at(login) == 1_799_999_996

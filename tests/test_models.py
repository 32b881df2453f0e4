"""The models: token storage on ``AuthgearLogin`` and the webhook-deactivation bookkeeping."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from authgear_django.client import TokenSet
from authgear_django.crypto import TokenCipher
from authgear_django.models import AuthgearAccount, AuthgearLogin, AuthgearWebhookEvent

pytestmark = pytest.mark.django_db
User = get_user_model()
NOW = datetime(2030, 3, 1, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def account() -> AuthgearAccount:
    user = User.objects.create_user("jane")
    account: AuthgearAccount = AuthgearAccount.objects.create(
        user=user, sub="sub-jane", email="jane@example.com"
    )
    return account


@pytest.fixture
def login(account: AuthgearAccount) -> AuthgearLogin:
    """A login that already holds a refresh and an ID token from its code exchange."""
    login = AuthgearLogin(account=account)
    login.store_tokens(
        TokenSet(
            access_token="access-1",
            expires_in=1800,
            refresh_token="refresh-1",
            id_token="id-1",
            scope="openid offline_access",
        ),
        id_token_claims={"sid": "session-1", "auth_time": 1_900_000_000},
        now=NOW,
    )
    login.save()
    return login


def test_tokens_are_stored_encrypted_and_read_back(login: AuthgearLogin) -> None:
    row = AuthgearLogin.objects.get(pk=login.pk)
    assert (row.access_token, row.refresh_token, row.id_token) == ("access-1", "refresh-1", "id-1")
    for column in ("encrypted_access_token", "encrypted_refresh_token", "encrypted_id_token"):
        stored = getattr(row, column)
        # the plaintexts ("access-1", ...) are not in the column; a bare "-1" could be, by
        # chance, in any base64url ciphertext (it made this test flaky)
        assert stored and not any(t in stored for t in ("access-1", "refresh-1", "id-1"))
    assert row.scope == "openid offline_access"
    assert row.access_token_lifetime == 1800
    assert row.access_token_expires_at == NOW + timedelta(seconds=1800)
    assert row.sid == "session-1"
    assert row.auth_time == datetime.fromtimestamp(1_900_000_000, tz=dt_timezone.utc)


def test_a_refresh_without_refresh_or_id_token_or_scope_keeps_the_stored_ones(
    login: AuthgearLogin,
) -> None:
    """Authgear sends a new refresh token only with rotation; the old one stays valid and must
    not be erased (nor the ID token kept for logout's id_token_hint)."""
    later = NOW + timedelta(minutes=30)
    login.store_tokens(
        TokenSet(access_token="access-2", expires_in=600), id_token_claims=None, now=later
    )
    login.save()
    row = AuthgearLogin.objects.get(pk=login.pk)
    assert (row.access_token, row.refresh_token, row.id_token) == ("access-2", "refresh-1", "id-1")
    assert row.scope == "openid offline_access"
    assert row.access_token_expires_at == later + timedelta(seconds=600)
    assert row.sid == "session-1"  # no claims: sid and auth_time untouched


def test_a_token_without_expiry_has_no_expiry_date(login: AuthgearLogin) -> None:
    login.store_tokens(
        TokenSet(access_token="access-2", expires_in=None), id_token_claims={}, now=NOW
    )
    assert login.access_token_expires_at is None and login.access_token_lifetime is None


@pytest.mark.parametrize(
    "claims",
    [{"sid": 42, "auth_time": True}, {"sid": None, "auth_time": "1900000000"}, {"sid": ["x"]}],
    ids=["int-sid-bool-time", "none-sid-text-time", "list-sid"],
)
def test_malformed_sid_and_auth_time_are_ignored_not_stored(
    login: AuthgearLogin, claims: dict[str, Any]
) -> None:
    login.store_tokens(TokenSet(access_token="a", expires_in=60), id_token_claims=claims, now=NOW)
    assert login.sid == "session-1"
    assert login.auth_time == datetime.fromtimestamp(1_900_000_000, tz=dt_timezone.utc)


def test_overlong_sid_and_scope_are_cut_to_their_columns(login: AuthgearLogin) -> None:
    login.store_tokens(
        TokenSet(access_token="a", expires_in=60, scope="s" * 1500),
        id_token_claims={"sid": "x" * 400, "auth_time": 1_900_000_000.5},
        now=NOW,
    )
    login.save()
    row = AuthgearLogin.objects.get(pk=login.pk)
    assert row.sid == "x" * 255 and row.scope == "s" * 1000
    assert row.auth_time == datetime.fromtimestamp(1_900_000_000.5, tz=dt_timezone.utc)


def test_empty_columns_read_as_none(account: AuthgearAccount) -> None:
    login = AuthgearLogin.objects.create(account=account)
    assert (login.access_token, login.refresh_token, login.id_token) == (None, None, None)


def test_tokens_are_encrypted_with_the_configured_first_key(
    account: AuthgearAccount, settings: Any
) -> None:
    settings.AUTHGEAR_TOKEN_ENCRYPTION_KEYS = ["key-a", "key-b"]
    login = AuthgearLogin(account=account)
    login.store_tokens(
        TokenSet(access_token="secret", expires_in=60), id_token_claims=None, now=NOW
    )
    assert TokenCipher(["key-a"]).decrypt(login.encrypted_access_token) == "secret"


def test_string_forms_name_the_link_without_any_token(login: AuthgearLogin) -> None:
    assert str(login.account) == "jane ↔ sub-jane"
    text = str(login)
    assert text.startswith("login of jane at ") and "access-1" not in text
    event = AuthgearWebhookEvent.objects.create(event_id="EV-1", event_type="user.disabled")
    assert str(event) == "user.disabled EV-1"


# --- forgetting the webhook's deactivation when the user is reactivated here --------------------


@pytest.fixture
def deactivated_by_webhook(account: AuthgearAccount) -> Any:
    user = account.user
    User.objects.filter(pk=user.pk).update(is_active=False)
    AuthgearAccount.objects.filter(pk=account.pk).update(deactivated_by_webhook=True)
    user.refresh_from_db()
    return user


def flag(user: Any) -> bool:
    return bool(AuthgearAccount.objects.get(user=user).deactivated_by_webhook)


def test_reactivating_the_user_here_forgets_the_webhook_mark(deactivated_by_webhook: Any) -> None:
    user = deactivated_by_webhook
    user.is_active = True
    user.save()
    assert flag(user) is False


def test_saving_is_active_by_name_forgets_the_mark_too(deactivated_by_webhook: Any) -> None:
    user = deactivated_by_webhook
    user.is_active = True
    user.save(update_fields=["is_active"])
    assert flag(user) is False


def test_saving_other_fields_of_an_active_user_keeps_the_mark(deactivated_by_webhook: Any) -> None:
    """``update_last_login`` and the like save only their field: not a decision on is_active."""
    user = deactivated_by_webhook
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.refresh_from_db()
    user.first_name = "Janet"
    user.save(update_fields=["first_name"])
    assert flag(user) is True


def test_saving_an_inactive_user_keeps_the_mark(deactivated_by_webhook: Any) -> None:
    user = deactivated_by_webhook
    user.first_name = "Janet"
    user.save()
    assert flag(user) is True


def test_creating_a_user_touches_no_account() -> None:
    other = User.objects.create_user("bob")
    assert other.is_active and AuthgearAccount.objects.count() == 0

"""Every Authgear client type: ``client_secret_post``, ``client_secret_basic`` and ``none``.

The token exchange, the refresh and the revocation must each authenticate the client exactly as
``AUTHGEAR_CLIENT_AUTH_METHOD`` says (RFC 6749 §2.3.1 for Basic: both parts form-urlencoded
before Base64; Authgear reads Basic only when the body has neither ``client_id`` nor
``client_secret``). Authgear is the fake at the HTTP boundary; what it received is read from
``responses``' record of the real requests.

The requests the client sends, and the secret kept out of logs; through the site, the
setting and the checks are in the ``test_client_auth_methods_*`` modules beside this one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from authgear_django.client import AuthgearClient, TokenSet
from authgear_django.exceptions import OAuthError, ProviderError
from tests.client_auth_helpers import (
    METHODS,
    ODD_BASIC,
    ODD_CLIENT_ID,
    ODD_SECRET,
    ODD_SECRET_ENCODED,
    configure_fake,
    expected_client_fields,
    seen,
)
from tests.fake_authgear import ENDPOINT, READ_TIMEOUT, FakeAuthgear, FakeUser

REDIRECT_URI = "https://app.example.com/auth/callback/"
VERIFIER = "v" * 43
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


class DictCache:
    """The two cache calls the Django-free client makes."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        self.values[key] = value


def expected_authorization(method: str) -> str | None:
    return ODD_BASIC if method == "client_secret_basic" else None


def direct_client(method: str, secret: str) -> AuthgearClient:
    return AuthgearClient(
        endpoint=ENDPOINT,
        client_id=ODD_CLIENT_ID,
        client_secret=secret,
        timeout=5,
        cache=DictCache(),
        client_auth_method=method,
    )


def authorization_code(fake: FakeAuthgear, client: AuthgearClient, user: FakeUser) -> str:
    """What a browser brings back from Authgear's authorize endpoint."""
    url = client.authorization_url(
        {
            "client_id": client.client_id,
            "response_type": "code",
            "scope": "openid offline_access",
            "redirect_uri": REDIRECT_URI,
            "state": "state-0123456789",
            "nonce": "nonce-0123456789",
            "code_challenge": CHALLENGE.decode(),
            "code_challenge_method": "S256",
        }
    )
    callback = fake.authorize(url, user)
    return parse_qs(urlsplit(callback).query)["code"][0]


# --- the exact requests: exchange, refresh, revoke --------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_exchange_refresh_and_revoke_authenticate_exactly_as_configured(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser, method: str
) -> None:
    secret = "" if method == "none" else ODD_SECRET
    configure_fake(fake_authgear, method, client_id=ODD_CLIENT_ID, secret=secret)
    client = direct_client(method, secret)

    code = authorization_code(fake_authgear, client, authgear_user)
    tokens = client.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=VERIFIER)
    assert isinstance(tokens, TokenSet) and tokens.refresh_token
    refreshed = client.refresh(tokens.refresh_token)
    assert refreshed.access_token != tokens.access_token
    client.revoke(tokens.refresh_token)
    assert fake_authgear.live_refresh_tokens() == []

    client_fields = expected_client_fields(method, ODD_CLIENT_ID, secret)
    (exchange, refresh) = seen(fake_authgear, "/oauth2/token")
    assert exchange == (
        {
            "grant_type": ["authorization_code"],
            "code": [code],
            "redirect_uri": [REDIRECT_URI],
            "code_verifier": [VERIFIER],
            **client_fields,
        },
        expected_authorization(method),
    )
    assert refresh == (
        {
            "grant_type": ["refresh_token"],
            "refresh_token": [tokens.refresh_token],
            **client_fields,
        },
        expected_authorization(method),
    )
    assert seen(fake_authgear, "/oauth2/revoke") == [
        ({"token": [tokens.refresh_token], **client_fields}, expected_authorization(method))
    ]


def test_none_never_sends_a_secret_even_if_one_is_configured(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    configure_fake(fake_authgear, "none", client_id=ODD_CLIENT_ID, secret="")
    client = direct_client("none", ODD_SECRET)  # a leftover secret in the settings
    code = authorization_code(fake_authgear, client, authgear_user)
    tokens = client.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=VERIFIER)
    assert tokens.refresh_token
    client.refresh(tokens.refresh_token)
    client.revoke(tokens.refresh_token)
    for call in fake_authgear.mock.calls:  # type: ignore[union-attr]
        sent = f"{call.request.url} {call.request.body!r} {dict(call.request.headers)!r}"
        assert "client_secret" not in sent
        assert ODD_SECRET_ENCODED not in sent and "Authorization" not in sent


def test_basic_credentials_survive_a_netrc_entry_for_authgear(
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``requests`` replaces a plain Authorization header with ``.netrc`` credentials."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine authgear.test login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    configure_fake(fake_authgear, "client_secret_basic", client_id=ODD_CLIENT_ID, secret=ODD_SECRET)
    client = direct_client("client_secret_basic", ODD_SECRET)
    code = authorization_code(fake_authgear, client, authgear_user)
    client.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=VERIFIER)
    [(_, authorization)] = seen(fake_authgear, "/oauth2/token")
    assert authorization == ODD_BASIC


def test_an_unknown_method_is_refused_by_the_client() -> None:
    with pytest.raises(ValueError, match="client_secret_post, client_secret_basic, none"):
        direct_client("private_key_jwt", ODD_SECRET)


# --- the secret never reaches a log record ----------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_the_secret_is_in_no_log_record_or_error_on_success_or_failure(
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    caplog: pytest.LogCaptureFixture,
    method: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    configure_fake(fake_authgear, method, client_id=ODD_CLIENT_ID, secret=ODD_SECRET)
    client = direct_client(method, ODD_SECRET)
    code = authorization_code(fake_authgear, client, authgear_user)
    tokens = client.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=VERIFIER)
    assert tokens.refresh_token
    client.refresh(tokens.refresh_token)

    errors: list[str] = []
    wrong = direct_client(method, ODD_SECRET + "-wrong")
    with pytest.raises(OAuthError) as rejected:
        wrong.exchange_code(
            code=authorization_code(fake_authgear, wrong, authgear_user),
            redirect_uri=REDIRECT_URI,
            code_verifier=VERIFIER,
        )
    errors.append(repr(rejected.value) + str(rejected.value))
    for fault in ({"status": 500}, {"exception": READ_TIMEOUT}):
        fake_authgear.fail("refresh", **fault)
        with pytest.raises(ProviderError) as failed:
            client.refresh(tokens.refresh_token)
        errors.append(repr(failed.value) + str(failed.value))
        fake_authgear.fail("revoke", **fault)
        with pytest.raises(ProviderError) as failed:
            client.revoke(tokens.refresh_token)
        errors.append(repr(failed.value) + str(failed.value))
    errors.append(repr(client))

    assert caplog.records  # the client did log (the calls, the failures)
    texts = [record.getMessage() + repr(record.args) for record in caplog.records] + errors
    for fragment in (ODD_SECRET, ODD_SECRET_ENCODED, ODD_BASIC.split()[1]):
        assert not [text for text in texts if fragment in text], fragment

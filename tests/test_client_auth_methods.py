"""Every Authgear client type: ``client_secret_post``, ``client_secret_basic`` and ``none``.

The token exchange, the refresh and the revocation must each authenticate the client exactly as
``AUTHGEAR_CLIENT_AUTH_METHOD`` says (RFC 6749 §2.3.1 for Basic: both parts form-urlencoded
before Base64; Authgear reads Basic only when the body has neither ``client_id`` nor
``client_secret``). Authgear is the fake at the HTTP boundary; what it received is read from
``responses``' record of the real requests.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from authgear_django.checks import check_settings
from authgear_django.client import AuthgearClient, TokenSet
from authgear_django.conf import conf
from authgear_django.exceptions import OAuthError, ProviderError
from authgear_django.models import AuthgearLogin
from authgear_django.provider import get_client
from tests import leak_guard
from tests.conftest import LoginFlow
from tests.fake_authgear import CLIENT_SECRET, ENDPOINT, READ_TIMEOUT, FakeAuthgear, FakeUser

METHODS = ["client_secret_post", "client_secret_basic", "none"]
ALL_METHODS_ADVERTISED = {
    "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"]
}
REDIRECT_URI = "https://app.example.com/auth/callback/"
VERIFIER = "v" * 43
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")

# A client ID and a secret with the characters Basic authentication must escape: ':' (the
# separator), '+' and ' ' (form-urlencoding's space), '%', '&', '/', '='. Expected encodings are
# written out by hand, not computed with the code under test.
ODD_CLIENT_ID = "app:1+2 %"
ODD_CLIENT_ID_ENCODED = "app%3A1%2B2+%25"
ODD_SECRET = "s3cr:et+wi%th space&/=0123"
ODD_SECRET_ENCODED = "s3cr%3Aet%2Bwi%25th+space%26%2F%3D0123"
ODD_BASIC = "Basic " + base64.b64encode(
    f"{ODD_CLIENT_ID_ENCODED}:{ODD_SECRET_ENCODED}".encode()
).decode("ascii")


class DictCache:
    """The two cache calls the Django-free client makes."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        self.values[key] = value


def register_secrets(*values: str) -> None:
    """Make the autouse leak guard fail the test if any of these reaches a log or a page."""
    leak_guard.register(*values)


def configure_fake(fake: FakeAuthgear, method: str, *, client_id: str, secret: str) -> None:
    """Register the client in the fake as the portal would for this method's client type."""
    fake.client_id = client_id
    fake.client_secret = secret
    fake.public_client = method == "none"
    fake.discovery_overrides.update(ALL_METHODS_ADVERTISED)
    register_secrets(secret, ODD_SECRET_ENCODED, ODD_BASIC, ODD_BASIC.split()[1])


def seen(fake: FakeAuthgear, path: str) -> list[tuple[dict[str, list[str]], str | None]]:
    """(form body, Authorization header) of every request that reached ``path``."""
    found = []
    for call in fake.mock.calls:  # type: ignore[union-attr]
        if urlsplit(call.request.url).path == path:
            body = call.request.body or ""
            text = body.decode() if isinstance(body, bytes) else body
            found.append(
                (parse_qs(text, keep_blank_values=True), call.request.headers.get("Authorization"))
            )
    return found


def expected_client_fields(method: str, client_id: str, secret: str) -> dict[str, list[str]]:
    if method == "client_secret_post":
        return {"client_id": [client_id], "client_secret": [secret]}
    if method == "none":
        return {"client_id": [client_id]}
    return {}


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


# --- through the site: login, refresh by the middleware, logout ------------------------------


@pytest.fixture
def as_client_type(
    request: pytest.FixtureRequest, settings: Any, fake_authgear: FakeAuthgear
) -> Iterator[str]:
    method: str = request.param
    secret = "" if method == "none" else ODD_SECRET
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = method
    settings.AUTHGEAR_CLIENT_SECRET = secret
    configure_fake(fake_authgear, method, client_id=fake_authgear.client_id, secret=secret)
    yield method


@pytest.mark.django_db
@pytest.mark.parametrize("as_client_type", METHODS, indirect=True)
def test_login_refresh_and_logout_work_for_each_client_type(
    as_client_type: str,
    clock: Any,
    login_flow: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
) -> None:
    method = as_client_type
    response = login_flow.login(authgear_user)
    assert response.status_code == 302 and response["Location"] == "/private/"
    assert login_flow.client.get("/private/").status_code == 200
    refresh_token = AuthgearLogin.objects.get().refresh_token

    clock.shift(1800 - 59)  # inside the refresh leeway: the middleware refreshes
    assert login_flow.client.get("/private/").status_code == 200
    assert fake_authgear.calls["refresh"] == 1

    assert login_flow.client.post("/auth/logout/").status_code == 302
    assert fake_authgear.live_refresh_tokens() == []

    secret = "" if method == "none" else ODD_SECRET
    client_id = fake_authgear.client_id
    fields = expected_client_fields(method, client_id, secret)
    if method == "client_secret_basic":
        header = "Basic " + base64.b64encode(f"{client_id}:{ODD_SECRET_ENCODED}".encode()).decode(
            "ascii"
        )
        register_secrets(header, header.split()[1])
    else:
        header = None
    exchange, refresh = seen(fake_authgear, "/oauth2/token")
    assert exchange[1] == refresh[1] == header
    assert {k: v for k, v in exchange[0].items() if k.startswith("client_")} == fields
    assert refresh[0] == {
        "grant_type": ["refresh_token"],
        "refresh_token": [refresh_token],
        **fields,
    }
    assert seen(fake_authgear, "/oauth2/revoke") == [({"token": [refresh_token], **fields}, header)]


@pytest.mark.django_db
def test_a_public_client_configured_as_confidential_fails_with_a_clear_error(
    settings: Any, login_flow: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    """The portal says Public Client, the settings still send the secret: Authgear refuses."""
    fake_authgear.public_client = True
    response = login_flow.login(authgear_user)
    assert response.status_code == 502
    assert login_flow.client.get("/private/").status_code == 302


# --- the setting ------------------------------------------------------------------------------


def test_the_setting_defaults_to_client_secret_post() -> None:
    assert conf.AUTHGEAR_CLIENT_AUTH_METHOD == "client_secret_post"
    with override_settings(AUTHGEAR_CLIENT_AUTH_METHOD=None):
        assert conf.AUTHGEAR_CLIENT_AUTH_METHOD == "client_secret_post"
    for method in METHODS:
        with override_settings(AUTHGEAR_CLIENT_AUTH_METHOD=method):
            configured = conf.AUTHGEAR_CLIENT_AUTH_METHOD
        assert configured == method


@pytest.mark.parametrize(
    "value", ["client_secret_jwt", "private_key_jwt", "Client_Secret_Basic", " none", 1, ["none"]]
)
def test_an_unknown_method_is_improperly_configured_without_echoing_it(value: object) -> None:
    with (
        override_settings(AUTHGEAR_CLIENT_AUTH_METHOD=value),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        _ = conf.AUTHGEAR_CLIENT_AUTH_METHOD
    assert str(info.value) == (
        "AUTHGEAR_CLIENT_AUTH_METHOD must be one of client_secret_post, client_secret_basic, none."
    )


@pytest.mark.django_db
def test_the_configured_method_reaches_the_client(settings: Any) -> None:
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "client_secret_basic"
    assert get_client().client_auth_method == "client_secret_basic"


# --- system checks ----------------------------------------------------------------------------


def auth_check_ids(**overrides: object) -> list[str]:
    """The IDs of the client-authentication checks among all messages (others are not ours)."""
    relevant = {f"authgear_django.{suffix}" for suffix in ("E001", "E009", "E010", "W007")}
    with override_settings(**overrides):
        return sorted(m.id or "" for m in check_settings() if m.id in relevant)


def test_checks_accept_each_method_with_the_matching_secret() -> None:
    assert auth_check_ids() == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="client_secret_basic") == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET="") == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET=None) == []


def test_an_unknown_method_is_e009() -> None:
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="private_key_jwt") == ["authgear_django.E009"]
    # The secret is then still required: the method may be meant as a confidential one.
    assert auth_check_ids(
        AUTHGEAR_CLIENT_AUTH_METHOD="private_key_jwt", AUTHGEAR_CLIENT_SECRET=""
    ) == ["authgear_django.E001", "authgear_django.E009"]


def test_a_secret_with_none_is_e010() -> None:
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none") == ["authgear_django.E010"]
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET="  ") == []
    with override_settings(AUTHGEAR_CLIENT_AUTH_METHOD="none"):
        [message] = [m for m in check_settings() if m.id == "authgear_django.E010"]
    assert CLIENT_SECRET not in message.msg + (message.hint or "")


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_a_secret_method_without_a_secret_is_the_missing_secret_e001(method: str) -> None:
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD=method, AUTHGEAR_CLIENT_SECRET="") == [
        "authgear_django.E001"
    ]


@pytest.mark.django_db
def test_a_method_missing_from_known_discovery_is_w007_without_fetching_it(
    fake_authgear: FakeAuthgear,
) -> None:
    fake_authgear.discovery_overrides["token_endpoint_auth_methods_supported"] = [
        "none",
        "client_secret_post",
    ]
    basic = {"AUTHGEAR_CLIENT_AUTH_METHOD": "client_secret_basic"}
    assert auth_check_ids(**basic) == []  # discovery not known yet: checks do not fetch it
    assert fake_authgear.calls["discovery"] == 0

    get_client().metadata()  # the deployment has fetched discovery (it is in the cache)
    assert auth_check_ids(**basic) == ["authgear_django.W007"]
    assert auth_check_ids() == []
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="none", AUTHGEAR_CLIENT_SECRET="") == []
    with override_settings(**basic):
        [warning] = [m for m in check_settings() if m.id == "authgear_django.W007"]
    assert "'client_secret_basic'" in warning.msg and "none, client_secret_post" in warning.msg
    assert fake_authgear.calls["discovery"] == 1


@pytest.mark.django_db
def test_w007_is_silent_when_discovery_publishes_no_methods(fake_authgear: FakeAuthgear) -> None:
    fake_authgear.discovery_overrides["token_endpoint_auth_methods_supported"] = None
    get_client().metadata()
    assert auth_check_ids(AUTHGEAR_CLIENT_AUTH_METHOD="client_secret_basic") == []


# --- manage.py authgear_check -----------------------------------------------------------------


def run_check() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("authgear_check", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def check_fails() -> str:
    with pytest.raises(CommandError) as info:
        run_check()
    return str(info.value)


@pytest.mark.django_db
@pytest.mark.parametrize("method", METHODS)
def test_command_accepts_each_advertised_method(
    fake_authgear: FakeAuthgear, settings: Any, method: str
) -> None:
    fake_authgear.discovery_overrides.update(ALL_METHODS_ADVERTISED)
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = method
    if method == "none":
        settings.AUTHGEAR_CLIENT_SECRET = ""
    out, err = run_check()
    assert f"ok    token endpoint accepts {method}\n" in out
    assert CLIENT_SECRET not in out + err


@pytest.mark.django_db
def test_command_reports_a_method_authgear_does_not_advertise(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    """Authgear before 2026-07-21: no client_secret_basic (it ignored Basic credentials)."""
    fake_authgear.discovery_overrides["token_endpoint_auth_methods_supported"] = [
        "none",
        "client_secret_post",
    ]
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "client_secret_basic"
    message = check_fails()
    assert message == (
        "the token endpoint does not accept client_secret_basic (it accepts: none, "
        "client_secret_post); set AUTHGEAR_CLIENT_AUTH_METHOD to one of these"
    )


@pytest.mark.django_db
def test_command_reports_a_secret_that_does_not_fit_the_method(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    fake_authgear.discovery_overrides.update(ALL_METHODS_ADVERTISED)
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "none"
    message = check_fails()
    assert message.startswith('AUTHGEAR_CLIENT_AUTH_METHOD is "none" (a public client) but')
    assert CLIENT_SECRET not in message

    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "client_secret_basic"
    settings.AUTHGEAR_CLIENT_SECRET = ""
    assert check_fails() == "AUTHGEAR_CLIENT_SECRET must be set (it is missing or blank)."


@pytest.mark.django_db
def test_command_reports_an_unknown_method_in_one_line(
    fake_authgear: FakeAuthgear, settings: Any
) -> None:
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "private_key_jwt"
    assert check_fails() == (
        "AUTHGEAR_CLIENT_AUTH_METHOD must be one of client_secret_post, client_secret_basic, none."
    )
    assert fake_authgear.calls["discovery"] == 0

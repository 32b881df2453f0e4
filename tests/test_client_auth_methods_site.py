"""Every Authgear client type through the site (login, refresh, logout), and the setting."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from authgear_django.conf import conf
from authgear_django.models import AuthgearLogin
from authgear_django.provider import get_client
from tests.client_auth_helpers import (
    METHODS,
    ODD_SECRET,
    ODD_SECRET_ENCODED,
    configure_fake,
    expected_client_fields,
    register_secrets,
    seen,
)
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

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

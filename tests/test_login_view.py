from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client, override_settings

from authgear_django.store import SESSION_ATTEMPTS_KEY
from tests.conftest import LoginFlow
from tests.fake_authgear import CLIENT_ID, FakeAuthgear

pytestmark = pytest.mark.django_db


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_login_redirects_to_discovered_authorize_endpoint_with_state_nonce_and_pkce(
    login_flow: LoginFlow, client: Client
) -> None:
    url = login_flow.start()
    assert url.startswith("https://authgear.test/oauth2/authorize?")
    params = query_of(url)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/auth/callback/"
    assert params["scope"] == "openid offline_access https://authgear.com/scopes/full-userinfo"
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    attempt = client.session[SESSION_ATTEMPTS_KEY][params["state"]]
    assert attempt["nonce"] == params["nonce"]
    expected = (
        base64.urlsafe_b64encode(hashlib.sha256(attempt["code_verifier"].encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    assert params["code_challenge"] == expected
    assert "code_verifier" not in params and attempt["code_verifier"] not in url


def test_each_login_gets_its_own_state_and_pending_attempts_are_capped(
    login_flow: LoginFlow, client: Client
) -> None:
    with override_settings(AUTHGEAR_MAX_LOGIN_ATTEMPTS=3):
        states = [query_of(login_flow.start())["state"] for _ in range(5)]
    assert len(set(states)) == 5
    assert list(client.session[SESSION_ATTEMPTS_KEY]) == states[-3:]


@override_settings(AUTHGEAR_REDIRECT_URI="https://app.example.com/auth/callback/")
def test_configured_redirect_uri_is_used_verbatim(login_flow: LoginFlow) -> None:
    assert query_of(login_flow.start())["redirect_uri"] == "https://app.example.com/auth/callback/"


@override_settings(AUTHGEAR_SCOPES="email profile")
def test_openid_scope_is_always_requested(login_flow: LoginFlow) -> None:
    assert query_of(login_flow.start())["scope"] == "openid email profile"


def test_authgear_options_pass_through_from_the_query_string(login_flow: LoginFlow) -> None:
    params = query_of(
        login_flow.start(
            "prompt=login&login_hint=jane%40example.com&ui_locales=fr+zh-HK&x_page=signup"
        )
    )
    assert params["prompt"] == "login"
    assert params["login_hint"] == (
        "https://authgear.com/login_hint?type=login_id&email=jane%40example.com"
    )
    assert params["ui_locales"] == "fr zh-HK"
    assert params["x_page"] == "signup"


def test_signup_url_opens_the_signup_page(client: Client, fake_authgear: FakeAuthgear) -> None:
    response = client.get("/auth/signup/?x_page=login")
    assert query_of(response["Location"])["x_page"] == "signup"  # code wins over the query


@pytest.mark.parametrize(
    "query",
    [
        "prompt=bogus",
        "prompt=none+login",
        "x_page=settings",
        "ui_locales=%3Cscript%3E",
        "login_hint=%20",
    ],
)
def test_invalid_authgear_options_get_a_400_page(
    client: Client, fake_authgear: FakeAuthgear, query: str
) -> None:
    response = client.get(f"/auth/login/?{query}")
    assert response.status_code == 400
    assert b"Try again" in response.content
    assert SESSION_ATTEMPTS_KEY not in client.session


def test_login_page_when_discovery_is_down_is_a_503_not_a_500(
    client: Client, fake_authgear: FakeAuthgear
) -> None:
    from tests.fake_authgear import CONNECTION_REFUSED

    fake_authgear.fail("discovery", exception=CONNECTION_REFUSED)
    response = client.get("/auth/login/")
    assert response.status_code == 503
    assert b"cannot be reached" in response.content

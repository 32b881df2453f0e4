from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings

from authgear_django.store import SESSION_ATTEMPTS_KEY
from authgear_django.views import AuthgearLoginView, begin_login
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


APP_SESSION_HINT = (
    "https://authgear.com/login_hint?type=app_session_token&app_session_token=attackers-token"
)


@pytest.mark.parametrize(
    "hint",
    [
        APP_SESSION_HINT,
        "https://authgear.com/login_hint?type=anonymous&jwt=attackers.anonymous.jwt",
        "https://authgear.com/login_hint?type=login_id&type=app_session_token"
        "&app_session_token=attackers-token&email=victim%40example.com",
        "https://authgear.com/login_hint?type=login_id&email=victim%40example.com"
        "&app_session_token=attackers-token",
    ],
)
def test_a_crafted_link_cannot_sign_the_browser_into_someone_elses_session(
    client: Client, fake_authgear: FakeAuthgear, hint: str
) -> None:
    """Login CSRF: the link's hint would open the attacker's Authgear session in this browser."""
    response = client.get("/auth/login/", {"login_hint": hint, "next": "/private/"})
    assert response.status_code == 400
    assert b"invalid option" in response.content and b"Try again" in response.content
    assert "Location" not in response
    assert b"attackers" not in response.content
    assert SESSION_ATTEMPTS_KEY not in client.session
    assert "_auth_user_id" not in client.session
    assert fake_authgear.calls["token"] == 0


def test_a_login_id_hint_in_url_form_is_passed_on_rebuilt(login_flow: LoginFlow) -> None:
    hint = "https://authgear.com/login_hint?email=jane%40example.com&type=login_id&enforce=true"
    params = query_of(login_flow.start(urlencode({"login_hint": hint})))
    assert params["login_hint"] == (
        "https://authgear.com/login_hint?type=login_id&email=jane%40example.com&enforce=true"
    )


def _anonymous_request_with_session(path: str) -> HttpRequest:
    request = RequestFactory().get(path)
    request.session = SessionStore()
    request.user = AnonymousUser()
    return request


def test_the_sites_code_may_pass_an_app_session_token_hint(fake_authgear: FakeAuthgear) -> None:
    """begin_login(login_hint=...) is for code: any Authgear hint type goes through."""
    request = _anonymous_request_with_session("/settings/")
    response = begin_login(request, next_url="/settings/", options={}, login_hint=APP_SESSION_HINT)
    assert response.status_code == 302
    assert query_of(response["Location"])["login_hint"] == APP_SESSION_HINT
    assert len(request.session[SESSION_ATTEMPTS_KEY]) == 1


def test_a_login_view_configured_in_code_may_pass_an_app_session_token_hint(
    fake_authgear: FakeAuthgear,
) -> None:
    view = AuthgearLoginView.as_view(extra_params={"login_hint": APP_SESSION_HINT})
    response = view(_anonymous_request_with_session("/auth/login/?login_hint=other%40x.com"))
    assert response.status_code == 302
    assert query_of(response["Location"])["login_hint"] == APP_SESSION_HINT


def test_a_bad_hint_from_code_is_a_400_page_not_a_500(fake_authgear: FakeAuthgear) -> None:
    request = _anonymous_request_with_session("/")
    hint = "https://authgear.com/login_hint?type=bogus"
    response = begin_login(request, next_url=None, options={}, login_hint=hint)
    assert response.status_code == 400
    assert SESSION_ATTEMPTS_KEY not in request.session

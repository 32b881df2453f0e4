"""The OpenID Foundation conformance suite's relying-party cases, run against our real views.

Every case id is the ``testName`` of a module of the OIDF conformance suite
(github.com/openid-certification/conformance-suite, ``net.openid.conformance.openid.client``):
the plan ``oidcc-client-basic-certification-test-plan`` (code flow, ``client_secret_basic``
variant), the refresh-token plan, the signing-key rotation modules and the RP-initiated logout
modules. Authgear is faked at the HTTP boundary with really signed RS256 tokens; each case
mutates only what its OIDF module mutates. ``docs/conformance.md`` maps modules to outcomes.

A rejected login must end on our error page (4xx, or 502 when Authgear misbehaves), with
nobody logged in, no user created and no ``AuthgearLogin`` row; a rejected ID token must not
lead to a userinfo call (the OIDF "expecting nothing" modules fail a client that makes one).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from authgear_django.models import AuthgearLogin
from authgear_django.views import SIGNED_OUT_MESSAGE
from tests.conftest import LoginFlow
from tests.fake_authgear import (
    FakeAuthgear,
    FakeUser,
    apply_changes,
    break_signature,
    strip_signature,
)

pytestmark = pytest.mark.django_db
User = get_user_model()

Arrange = Callable[[FakeAuthgear, Any, FakeUser], None]
Verify = Callable[[FakeAuthgear, Client, FakeUser], None]


# --- what the fake Authgear does differently in each module ------------------------------------


def tamper(**changes: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """An ``id_token_tamper``: ``None`` removes a claim, ``header_<name>`` sets a header."""

    def apply(claims: dict[str, Any], header: dict[str, Any]) -> None:
        apply_changes(claims, header, changes)

    return apply


def drop_kid_header(claims: dict[str, Any], header: dict[str, Any]) -> None:
    header.pop("kid", None)


def id_token_claims(**changes: Any) -> Arrange:
    def arrange(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
        fake.id_token_tamper = tamper(**changes)

    return arrange


def rewrite_id_token(rewrite: Callable[[str], str]) -> Arrange:
    def arrange(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
        fake.id_token_rewrite = rewrite

    return arrange


def keys_without_kid(names: list[str]) -> Arrange:
    def arrange(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
        fake.publish_keys_without_kid(names)
        fake.id_token_tamper = drop_kid_header

    return arrange


def nothing(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
    """The genuine Authgear behaviour."""


def userinfo_about_another_sub(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
    fake.userinfo_tamper = lambda claims: claims.update(sub="invalid-" + user.sub)


def profile_and_email_scopes(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
    """Request the claims by scope; the values exist only in userinfo (not in the ID token)."""
    settings.AUTHGEAR_SCOPES = "openid offline_access profile email"
    user.email = "ada.lovelace@example.org"
    user.given_name = "Ada"
    user.family_name = "Lovelace"


def client_secret_basic(fake: FakeAuthgear, settings: Any, user: FakeUser) -> None:
    """The site chooses Basic; Authgear advertises it (it does since 2026-07-21)."""
    settings.AUTHGEAR_CLIENT_AUTH_METHOD = "client_secret_basic"
    fake.discovery_overrides["token_endpoint_auth_methods_supported"] = [
        "none",
        "client_secret_post",
        "client_secret_basic",
    ]


# --- what each accepted module additionally requires ------------------------------------------


def requests_of(fake: FakeAuthgear, call: str) -> list[dict[str, list[str]]]:
    return [form for name, form in fake.requests if name == call]


def headers_of(fake: FakeAuthgear, call: str) -> list[dict[str, str]]:
    return [headers for name, headers in fake.request_headers if name == call]


def authorize_params(fake: FakeAuthgear) -> dict[str, str]:
    (entry,) = fake.codes.values()
    params: dict[str, str] = entry["params"]
    return params


def code_flow_as_specified(fake: FakeAuthgear, client: Client, user: FakeUser) -> None:
    """Code flow with state, nonce and PKCE; the access token goes to userinfo in the header."""
    params = authorize_params(fake)
    assert params["response_type"] == "code"
    assert "openid" in params["scope"].split()
    assert params["state"] and params["nonce"] and params["code_challenge_method"] == "S256"
    (token_form,) = requests_of(fake, "token")
    assert token_form["grant_type"] == ["authorization_code"]
    assert token_form["redirect_uri"] == [params["redirect_uri"]]
    (userinfo_headers,) = headers_of(fake, "userinfo")
    assert userinfo_headers["Authorization"].startswith("Bearer ")
    assert requests_of(fake, "userinfo") == [{}]  # no token in a query string or a body


def verified_with_the_single_key(fake: FakeAuthgear, client: Client, user: FakeUser) -> None:
    header = jwt.get_unverified_header(AuthgearLogin.objects.get().id_token)
    assert "kid" not in header and len(fake.published_keys) == 1


def signed_with_rs256(fake: FakeAuthgear, client: Client, user: FakeUser) -> None:
    header = jwt.get_unverified_header(AuthgearLogin.objects.get().id_token)
    assert header["alg"] == "RS256" and header["kid"] == fake.kid


def userinfo_claims_on_the_user(fake: FakeAuthgear, client: Client, user: FakeUser) -> None:
    scopes = authorize_params(fake)["scope"].split()
    assert {"profile", "email"} <= set(scopes)
    id_token = jwt.decode(AuthgearLogin.objects.get().id_token, options={"verify_signature": False})
    assert "email" not in id_token and "given_name" not in id_token
    signed_in = User.objects.get()
    assert signed_in.email == "ada.lovelace@example.org"
    assert (signed_in.first_name, signed_in.last_name) == ("Ada", "Lovelace")


def authenticated_with_http_basic(fake: FakeAuthgear, client: Client, user: FakeUser) -> None:
    """RFC 6749 §2.3.1: Basic over the form-urlencoded id and secret. Authgear uses the header
    only when the body has neither ``client_id`` nor ``client_secret``."""
    (headers,) = headers_of(fake, "token")
    credentials = f"{quote_plus(fake.client_id)}:{quote_plus(fake.client_secret)}"
    assert (
        headers.get("Authorization") == "Basic " + base64.b64encode(credentials.encode()).decode()
    ), "the token request carries no HTTP Basic client authentication"
    (form,) = requests_of(fake, "token")
    assert "client_secret" not in form and "client_id" not in form


@dataclass(frozen=True)
class LoginCase:
    arrange: Arrange
    accepted: bool
    verify: Verify | None = None
    userinfo_calls: int = 0  # for a rejected login: how many userinfo calls are allowed


LOGIN_CASES = [
    pytest.param(LoginCase(nothing, True, code_flow_as_specified), id="oidcc-client-test"),
    pytest.param(
        LoginCase(id_token_claims(iss="https://invalid-issuer.authgear.test"), False),
        id="oidcc-client-test-invalid-iss",
    ),
    pytest.param(LoginCase(id_token_claims(sub=None), False), id="oidcc-client-test-missing-sub"),
    pytest.param(
        LoginCase(id_token_claims(aud=["invalid-client-id"]), False),
        id="oidcc-client-test-invalid-aud",
    ),
    pytest.param(LoginCase(id_token_claims(aud=None), False), id="oidcc-client-test-missing-aud"),
    pytest.param(LoginCase(id_token_claims(iat=None), False), id="oidcc-client-test-missing-iat"),
    pytest.param(
        LoginCase(keys_without_kid(["primary"]), True, verified_with_the_single_key),
        id="oidcc-client-test-kid-absent-single-jwks",
    ),
    # Our choice among the two the module allows: reject. OIDC Core §10.1 requires ``kid``
    # when several keys are published (Authgear always sends it), and trying every key would
    # multiply the RSA work a forged token costs. Signed with the FIRST published key, so
    # "use the first key" and "try each key" both fail this case.
    pytest.param(
        LoginCase(keys_without_kid(["primary", "second"]), False),
        id="oidcc-client-test-kid-absent-multiple-jwks",
    ),
    pytest.param(
        LoginCase(nothing, True, signed_with_rs256), id="oidcc-client-test-idtoken-sig-rs256"
    ),
    # The OIDF module expects acceptance from a client registered with
    # id_token_signed_response_alg=none. Authgear signs RS256 only, so we never accept "none".
    pytest.param(
        LoginCase(rewrite_id_token(strip_signature), False),
        id="oidcc-client-test-idtoken-sig-none",
    ),
    pytest.param(
        LoginCase(rewrite_id_token(break_signature), False),
        id="oidcc-client-test-invalid-sig-rs256",
    ),
    pytest.param(
        LoginCase(userinfo_about_another_sub, False, userinfo_calls=1),
        id="oidcc-client-test-userinfo-invalid-sub",
    ),
    pytest.param(
        LoginCase(id_token_claims(nonce="invalid-nonce"), False),
        id="oidcc-client-test-nonce-invalid",
    ),
    pytest.param(
        LoginCase(profile_and_email_scopes, True, userinfo_claims_on_the_user),
        id="oidcc-client-test-scope-userinfo-claims",
    ),
    pytest.param(
        LoginCase(client_secret_basic, True, authenticated_with_http_basic),
        id="oidcc-client-test-client-secret-basic",
    ),
]


def assert_logged_in(response: Any, client: Client) -> None:
    assert response.status_code == 302, response.content
    assert response["Location"] == "/private/"
    assert "_auth_user_id" in client.session
    assert AuthgearLogin.objects.count() == 1
    assert client.get("/private/").status_code == 200


def assert_refused(response: Any, client: Client) -> None:
    status = response.status_code
    assert 400 <= status < 500 or status == 502, (status, response.content)
    assert b"Try again" in response.content
    assert "_auth_user_id" not in client.session
    assert AuthgearLogin.objects.count() == 0
    assert User.objects.count() == 0
    assert client.get("/private/").status_code == 302


@pytest.mark.parametrize("case", LOGIN_CASES)
def test_login(
    case: LoginCase,
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    settings: Any,
) -> None:
    case.arrange(fake_authgear, settings, authgear_user)
    response = login_flow.login(authgear_user)
    if case.accepted:
        assert_logged_in(response, client)
        if case.verify is not None:
            case.verify(fake_authgear, client, authgear_user)
    else:
        assert_refused(response, client)
        assert fake_authgear.calls["userinfo"] == case.userinfo_calls


# --- refresh: OIDC Core §12.2, iss and sub must not change ---------------------------------------

API_URL = "https://api.test/data"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(None, id="oidcc-client-test-refresh-token"),
        pytest.param(
            {"iss": "https://invalid-issuer.authgear.test"},
            id="oidcc-client-test-refresh-token-invalid-issuer",
        ),
        pytest.param({"sub": "invalid-sub"}, id="oidcc-client-test-refresh-token-invalid-sub"),
    ],
)
def test_refresh(
    changes: dict[str, Any] | None,
    clock: Any,
    login_flow: LoginFlow,
    client: Client,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
) -> None:
    """The access token expires; the next request refreshes it before the view runs."""
    assert login_flow.login(authgear_user).status_code == 302
    first_access_token = AuthgearLogin.objects.get().access_token
    # An API that answers as Authgear's userinfo does: it accepts only a live access token.
    fake_authgear.mock.add_callback(  # type: ignore[union-attr]
        "GET", API_URL, callback=fake_authgear.routes[("GET", "/oauth2/userinfo")]
    )
    if changes is not None:
        fake_authgear.id_token_tamper = tamper(**changes)
    clock.shift(1800)

    response = client.get("/api-call/")

    assert fake_authgear.calls["refresh"] == 1
    if changes is None:
        assert response.status_code == 200, response.content
        login = AuthgearLogin.objects.get()
        assert login.access_token != first_access_token
        assert headers_of(fake_authgear, "userinfo")[-1]["Authorization"] == (
            f"Bearer {login.access_token}"
        )
        assert login.account.sub == authgear_user.sub
        return
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?" + urlencode({"next": "/api-call/"})
    assert "_auth_user_id" not in client.session
    assert AuthgearLogin.objects.count() == 0
    assert fake_authgear.live_refresh_tokens() == []  # its Authgear session is revoked too
    assert client.get("/private/").status_code == 302


# --- signing-key rotation: an unknown kid refetches the JWKS once ---------------------------------


@pytest.mark.parametrize(
    "just_before_signing",
    [
        pytest.param(False, id="oidcc-client-test-signing-key-rotation"),
        pytest.param(True, id="oidcc-client-test-signing-key-rotation-just-before-signing"),
    ],
)
def test_signing_key_rotation(
    just_before_signing: bool, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    """A first login caches the JWKS; the second ID token is signed with a key that cache
    lacks: rotated after the first login (the new key prepended, Authgear-style), or the whole
    set replaced between the code being issued and the ID token being signed."""
    first = LoginFlow(Client(), fake_authgear)
    assert_logged_in(first.login(authgear_user), first.client)
    assert fake_authgear.calls["jwks"] == 1

    second = LoginFlow(Client(), fake_authgear)
    if just_before_signing:
        callback = fake_authgear.authorize(second.start(), authgear_user)

        def rotate_once() -> None:
            fake_authgear.before_id_token_signing = None
            fake_authgear.replace_signing_keys()

        fake_authgear.before_id_token_signing = rotate_once
    else:
        fake_authgear.rotate_signing_key()
        callback = fake_authgear.authorize(second.start(), authgear_user)
    response = second.finish(callback)

    assert response.status_code == 302, response.content
    assert response["Location"] == "/private/"
    assert second.client.get("/private/").status_code == 200
    assert AuthgearLogin.objects.count() == 2
    assert fake_authgear.calls["jwks"] == 2  # exactly one refetch


# --- RP-initiated logout ----------------------------------------------------------------------

OURS = "ours"


@pytest.mark.parametrize(
    "returned_state",
    [
        pytest.param(OURS, id="oidcc-client-test-rp-init-logout"),
        pytest.param("another-state", id="oidcc-client-test-rp-init-logout-other-state"),
        pytest.param(None, id="oidcc-client-test-rp-init-logout-no-state"),
    ],
)
def test_rp_initiated_logout(
    returned_state: str | None,
    login_flow: LoginFlow,
    client: Client,
    authgear_user: FakeUser,
) -> None:
    """Logout goes to end_session with id_token_hint, post_logout_redirect_uri and state; the
    way back says "signed out" only for our state, and never fails or echoes the state."""
    assert login_flow.login(authgear_user).status_code == 302
    id_token = AuthgearLogin.objects.get().id_token

    response = client.post("/auth/logout/")

    assert response.status_code == 302
    end_session = urlsplit(response["Location"])
    assert end_session._replace(query="").geturl() == "https://authgear.test/oauth2/end_session"
    params = {name: values[0] for name, values in parse_qs(end_session.query).items()}
    return_uri = "http://testserver" + reverse("authgear_django:logout_return")
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == return_uri
    assert len(params["state"]) >= 32
    assert "_auth_user_id" not in client.session
    assert AuthgearLogin.objects.count() == 0

    state = params["state"] if returned_state == OURS else returned_state
    back = return_uri + (f"?{urlencode({'state': state})}" if state is not None else "")
    landing = client.get(back)

    assert landing.status_code == 302
    assert landing["Location"] == "/"  # LOGOUT_REDIRECT_URL: no state, nothing from the request
    said = [str(message) for message in get_messages(landing.wsgi_request)]
    assert said == ([SIGNED_OUT_MESSAGE] if returned_state == OURS else [])
    assert client.get(landing["Location"]).status_code == 200
    assert client.get("/private/").status_code == 302

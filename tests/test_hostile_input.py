"""Hostile input at the login and callback views: always a 4xx (or a safe redirect), nobody
logged in, a ``django.security`` log record, never a 500. And at bearer-protected API views:
any token, however malformed, is a 401 with a ``WWW-Authenticate`` challenge."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jwt
import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from authgear_django.models import AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = pytest.mark.django_db
SECURITY = "django.security.authgear_django"
API_PATHS = ["/api/me/", "/api/orders/", "/drf/me/"]


def security_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name.startswith("django.security")]


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "https:evil.example",
        "https:/evil.example",
        "http://testserver@evil.example/",
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        " //evil.example",
        "\t//evil.example",
        "%2F%2Fevil.example",
        "%5C%5Cevil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "https://evil.example/?next=/private/",
        "/" + "a" * 5000,
    ],
)
def test_open_redirect_payloads_are_dropped_and_logged(
    login_flow: LoginFlow,
    authgear_user: FakeUser,
    caplog: pytest.LogCaptureFixture,
    next_url: str,
) -> None:
    caplog.set_level(logging.WARNING, logger=SECURITY)
    response = login_flow.login(authgear_user, "next=" + quote(next_url, safe=""))
    assert response.status_code == 302
    assert response["Location"] == "/private/"
    assert security_records(caplog)


def test_duplicated_state_uses_one_value_and_fails_closed(
    login_flow: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    evil = urlencode([("code", query["code"]), ("state", query["state"]), ("state", "forged")])
    response = login_flow.client.get(f"/auth/callback/?{evil}")
    assert response.status_code == 400
    assert security_records(caplog)
    assert "_auth_user_id" not in login_flow.client.session


def test_duplicated_code_cannot_smuggle_another_code(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    callback = fake_authgear.authorize(login_flow.start(), authgear_user)
    response = login_flow.client.get(callback + "&code=attacker-code")
    assert response.status_code == 400
    assert AuthgearLogin.objects.count() == 0


@pytest.mark.parametrize(
    "query",
    [
        "state=%ff%fe&code=%c3%28",
        "state=%00&code=%00",
        "code=" + "x" * 10_000 + "&state=" + "y" * 10_000,
        "error=%ff&state=%ff",
        "error=" + "e" * 10_000,
    ],
)
def test_malformed_callback_parameters_get_4xx(
    client: Client, fake_authgear: FakeAuthgear, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get(f"/auth/callback/?{query}")
    assert 400 <= response.status_code < 500
    assert fake_authgear.calls["token"] == 0
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "query",
    ["login_hint=" + "a" * 10_000, "ui_locales=" + "fr+" * 50, "prompt=%ff", "x_page=%00"],
)
def test_malformed_login_options_get_400(
    client: Client, fake_authgear: FakeAuthgear, query: str
) -> None:
    assert client.get(f"/auth/login/?{query}").status_code == 400


PARAMETER_NAMES = st.sampled_from(
    [
        "state",
        "code",
        "error",
        "error_description",
        "next",
        "prompt",
        "login_hint",
        "ui_locales",
        "x_page",
        "scope",
        "iss",
        "session_state",
        "random",
    ]
)
VALUES = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=100).map(lambda raw: raw.decode("latin-1")),
    st.sampled_from(
        [
            "",
            "none",
            "login",
            "signup",
            "//evil.example",
            "javascript:x",
            "a.b.c",
            "access_denied",
            "\x00",
            "%ff",
            "\\\\evil",
        ]
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(params=st.lists(st.tuples(PARAMETER_NAMES, VALUES), max_size=8))
def test_random_query_strings_never_cause_a_500(
    fake_authgear: FakeAuthgear, params: list[tuple[str, str]]
) -> None:
    client = Client()
    query = urlencode(params)
    for path in ("/auth/login/", "/auth/callback/"):
        response = client.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query, response.status_code)
    assert "_auth_user_id" not in client.session
    assert AuthgearLogin.objects.count() == 0


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(extra=st.lists(st.tuples(PARAMETER_NAMES, VALUES), max_size=4))
def test_random_extra_parameters_on_a_real_callback_never_cause_a_500(
    fake_authgear: FakeAuthgear, extra: list[tuple[str, str]]
) -> None:
    flow = LoginFlow(Client(), fake_authgear)
    callback = fake_authgear.authorize(flow.start(), FakeUser())
    response = flow.client.get(callback + "&" + urlencode(extra) if extra else callback)
    assert response.status_code < 500
    logged_in: Any = "_auth_user_id" in flow.client.session
    assert logged_in == (response.status_code == 302 and AuthgearLogin.objects.exists())


# --- bearer tokens at the protected API views -----------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities are written as NaN / Infinity
    | st.text(max_size=20)
    | st.sampled_from(["RS256", "none", "HS256", "at+jwt", "JWT", "application/at+jwt"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["alg", "typ", "kid", "crit", "exp", "sub", "iss", "aud", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)
NESTING_DEPTHS = st.one_of(st.integers(1, 50), st.integers(900, 11_000))
JSON_TEXT = st.one_of(
    JSON_VALUES.map(json.dumps),
    NESTING_DEPTHS.map(lambda depth: "[" * depth),
    NESTING_DEPTHS.map(lambda depth: '{"a":' * (depth // 2) + "1"),
    st.sampled_from(
        [
            '{"alg":"RS256","typ":"at+jwt","kid":"k","alg":"none"}',
            '{"alg":"RS256","typ":"at+jwt","kid":NaN}',
            '{"exp":1e400}',
            '{"exp":' + "9" * 5_000 + "}",
            "{",
            "",
            "\ufeff{}",
        ]
    ),
)
SEGMENTS = st.one_of(
    JSON_TEXT.map(lambda text: _b64url(text.encode("utf-8", "surrogatepass"))),
    st.binary(max_size=300).map(_b64url),
    st.binary(max_size=300).map(lambda raw: base64.b64encode(raw).decode()),  # + / and =
    st.text(alphabet="ABCabc012-_+/=.~", max_size=50),
    st.text(max_size=40),
)
JWT_SHAPED = st.tuples(
    JSON_TEXT.map(lambda text: _b64url(text.encode("utf-8", "surrogatepass"))) | SEGMENTS,
    SEGMENTS,
    SEGMENTS,
).map(".".join)
BEARER_TOKENS = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),  # as WSGI hands bytes over
    JWT_SHAPED,
    JWT_SHAPED,
    st.lists(SEGMENTS, max_size=5).map(".".join),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(token=BEARER_TOKENS, opaque_tokens=st.booleans(), path=st.sampled_from(API_PATHS))
def test_any_bearer_token_gets_401_never_a_500(
    fake_authgear: FakeAuthgear, token: str, opaque_tokens: bool, path: str
) -> None:
    with override_settings(AUTHGEAR_API_OPAQUE_TOKENS=opaque_tokens):
        response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401, (token, response.status_code, response.content)
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')
    if path.startswith("/api/") and token.strip():
        assert json.loads(response.content)["error"] == "invalid_token"


EXTREME_NUMBERS = st.sampled_from([10**400, -(10**400), 2**53, 1e308, -1e308, 0.5, -0.0])
CLAIM_VALUES = st.one_of(
    EXTREME_NUMBERS,
    EXTREME_NUMBERS,  # drawn as often as all the rest
    JSON_VALUES,
    st.integers(min_value=-(10**30), max_value=10**30),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "exp", "nbf", "iat", "scope", "client_id"]),
        CLAIM_VALUES,
        max_size=4,
    ),
    typ=st.sampled_from(["at+jwt", "AT+JWT", "application/at+jwt"]) | JSON_VALUES,
    path=st.sampled_from(API_PATHS),
)
@example(changes={"exp": 10**400}, typ="at+jwt", path="/api/me/")  # cached: float() overflowed
def test_signed_tokens_with_odd_claims_never_cause_a_500(
    fake_authgear: FakeAuthgear, changes: dict[str, Any], typ: Any, path: str
) -> None:
    """Authgear signs these, so only Authgear (or a hook) could send them; still no 500, and
    asking twice (the second answer may come from the token cache) gives the same status."""
    good = fake_authgear.jwt_access_token(FakeUser())
    payload = good.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    token = jwt.api_jws.encode(
        json.dumps(claims).encode(),  # NaN, 10**400 and wrong types, which jwt.encode refuses
        fake_authgear.signing_key,
        algorithm="RS256",
        headers={"kid": fake_authgear.kid, "typ": typ},
    )
    statuses = [
        Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code for _ in range(2)
    ]
    assert statuses[0] == statuses[1] and statuses[0] in (200, 401, 403), (changes, statuses)

"""``manage.py authgear_check``.

Authgear is the fake at the HTTP boundary; logins are made through our real views, so the
command acts on real rows, real sessions and refresh tokens the fake really issued.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import execute_from_command_line

from tests.command_helpers import fails, run
from tests.fake_authgear import (
    CLIENT_SECRET,
    CONNECTION_REFUSED,
    READ_TIMEOUT,
    FakeAuthgear,
    public_jwk,
    rsa_key,
)

pytestmark = pytest.mark.django_db


def test_check_passes_against_authgear_and_prints_what_to_register(
    fake_authgear: FakeAuthgear,
) -> None:
    out, err = run("authgear_check")
    assert "ok    issuer https://authgear.test equals AUTHGEAR_ENDPOINT" in out
    assert "ok    JWKS has 1 RS256 signing key(s): " + fake_authgear.kid in out
    assert "ok    token endpoint accepts client_secret_post" in out
    assert "ok    scopes openid offline_access https://authgear.com/scopes/full-userinfo" in out
    # no site URL known: the paths, and how to complete them
    assert "Authorized Redirect URI:   <site origin>/auth/callback/" in out
    assert "Post Logout Redirect URI:  <site origin>/" in out
    assert "--site-url" in out
    assert err == ""
    assert CLIENT_SECRET not in out + err


def test_check_builds_absolute_uris_from_site_url(fake_authgear: FakeAuthgear) -> None:
    out, _ = run("authgear_check", "--site-url", "https://shop.example.com/")
    assert "Authorized Redirect URI:   https://shop.example.com/auth/callback/\n" in out
    assert "Post Logout Redirect URI:  https://shop.example.com/\n" in out
    assert "<site origin>" not in out


def test_check_prints_the_configured_redirect_uris(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_REDIRECT_URI = "https://proxy.example.com/sso/callback/"
    settings.AUTHGEAR_POST_LOGOUT_REDIRECT_URI = "https://proxy.example.com/bye/"
    out, _ = run("authgear_check", "--site-url", "https://ignored.example.com")
    assert "Authorized Redirect URI:   https://proxy.example.com/sso/callback/" in out
    assert "Post Logout Redirect URI:  https://proxy.example.com/bye/" in out


def test_check_refuses_a_site_url_that_is_not_an_origin(fake_authgear: FakeAuthgear) -> None:
    assert "--site-url" in fails("authgear_check", "--site-url", "example.com")


def test_check_is_live_not_read_from_the_cache(fake_authgear: FakeAuthgear) -> None:
    from authgear_django.provider import get_client

    get_client().jwks()  # the app's cache now holds a good discovery document and JWKS
    calls = fake_authgear.calls["discovery"]
    fake_authgear.discovery_overrides["issuer"] = "https://elsewhere.test"
    assert "elsewhere" in fails("authgear_check")
    assert fake_authgear.calls["discovery"] == calls + 1  # fetched once per run, not twice


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda fake: fake.fail("discovery", exception=CONNECTION_REFUSED), "cannot reach"),
        (lambda fake: fake.fail("discovery", exception=READ_TIMEOUT), "no answer from"),
        (
            lambda fake: fake.discovery_overrides.update(issuer="https://other.authgear.cloud"),
            "issuer 'https://other.authgear.cloud' does not equal AUTHGEAR_ENDPOINT",
        ),
        (
            lambda fake: fake.fail("discovery", status=200, body="<html>\n<p>Welcome</p>"),
            "response is not JSON",
        ),
        (lambda fake: fake.fail("discovery", status=404), "HTTP 404"),
        (lambda fake: fake.discovery_overrides.update(token_endpoint=None), "lacks token_endpoint"),
        (lambda fake: fake.published_keys.clear(), "has no RS256 signing key"),
        (lambda fake: fake.fail("jwks", status=200, body="{oops"), "jwks: response is not JSON"),
        (lambda fake: fake.fail("jwks", exception=CONNECTION_REFUSED), "jwks: cannot reach"),
        (
            lambda fake: fake.discovery_overrides.update(userinfo_endpoint=None),
            "no userinfo_endpoint",
        ),
        (
            lambda fake: fake.discovery_overrides.update(
                token_endpoint_auth_methods_supported=["none", "client_secret_basic"]
            ),
            "does not accept client_secret_post",
        ),
    ],
    ids=[
        "unreachable",
        "timeout",
        "wrong-issuer",
        "html-instead-of-json",
        "not-found",
        "no-token-endpoint",
        "empty-jwks",
        "jwks-bad-json",
        "jwks-unreachable",
        "no-userinfo",
        "no-client-secret-post",
    ],
)
def test_check_fails_with_one_clear_line(
    fake_authgear: FakeAuthgear, break_it: Any, expected: str
) -> None:
    break_it(fake_authgear)
    message = fails("authgear_check")
    assert expected in message
    assert "\n" not in message
    assert CLIENT_SECRET not in message


def test_check_wants_a_usable_rs256_key(fake_authgear: FakeAuthgear) -> None:
    good = public_jwk(rsa_key(), "k1")
    fake_authgear.published_keys[:] = [
        {**good, "alg": "RS512"},
        {**good, "use": "enc"},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {**good, "n": "AAAA"},  # malformed
        {**good, "n": "not-base64-!!"},  # decodes to a 64-bit modulus
    ]
    assert "no RS256 signing key" in fails("authgear_check")


def test_check_reports_unsupported_scopes(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_SCOPES = "openid offline_access https://authgear.com/scopes/full-access"
    message = fails("authgear_check")
    assert message == (
        "AUTHGEAR_SCOPES has scopes Authgear does not support: "
        "https://authgear.com/scopes/full-access"
    )


def test_check_reports_every_problem_in_one_line(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_SCOPES = "openid bogus"
    fake_authgear.published_keys.clear()
    message = fails("authgear_check")
    assert message.startswith("2 problems: JWKS at https://authgear.test/oauth2/jwks has no RS256")
    assert "does not support: bogus" in message and "\n" not in message


def test_check_skips_what_the_provider_does_not_publish(
    fake_authgear: FakeAuthgear, settings
) -> None:
    for name in ("scopes_supported", "token_endpoint_auth_methods_supported"):
        fake_authgear.discovery_overrides[name] = None
    settings.AUTHGEAR_SCOPES = "openid custom-scope"
    out, _ = run("authgear_check")
    assert "Authgear does not publish scopes_supported" in out
    assert "client_secret_post assumed" in out


def test_check_warns_without_revocation_or_end_session_but_passes(
    fake_authgear: FakeAuthgear,
) -> None:
    fake_authgear.discovery_overrides.update(revocation_endpoint=None, end_session_endpoint=None)
    out, err = run("authgear_check")
    assert "ok    Authgear is configured correctly" in out
    assert "warning: discovery has no revocation_endpoint" in err
    assert "warning: discovery has no end_session_endpoint" in err


def test_check_reports_missing_settings_in_one_line(fake_authgear: FakeAuthgear, settings) -> None:
    settings.AUTHGEAR_ENDPOINT = ""
    assert fails("authgear_check").startswith("AUTHGEAR_ENDPOINT must be set")
    assert fake_authgear.calls["discovery"] == 0


def test_check_exits_1_with_one_stderr_line_from_the_command_line(
    fake_authgear: FakeAuthgear, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_authgear.fail("discovery", exception=CONNECTION_REFUSED)
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "authgear_check"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "CommandError: Authgear at https://authgear.test: discovery: cannot reach"
    )


def test_check_exits_0_from_the_command_line(
    fake_authgear: FakeAuthgear, capsys: pytest.CaptureFixture[str]
) -> None:
    execute_from_command_line(["manage.py", "authgear_check"])  # no SystemExit: status 0
    assert "ok    Authgear is configured correctly" in capsys.readouterr().out

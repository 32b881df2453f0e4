"""Smoke check of a running local provider, driving it like a browser plus a client.

    python -m example_project.local_provider.smoke_check [--issuer http://127.0.0.1:9000]

Needs only ``requests`` and ``PyJWT[crypto]`` (no Django). Run ``seed_demo`` first.
Steps: discovery and JWKS; authorization-code flow with state, nonce and PKCE S256 through
the HTML login form (a wrong password first); code exchange with ``client_secret_post``;
ID-token verification against the JWKS; userinfo; refresh with rotation; revocation; a
second (single-sign-on) login and RP-initiated logout with ``id_token_hint``. It also prints
the provider's error responses to a few bad requests. Exits 1 on the first failed check.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import secrets
import sys
import uuid
from typing import Any, NoReturn
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import requests

SCOPE = "openid offline_access https://authgear.com/scopes/full-userinfo"
ROLES_CLAIM = "https://authgear.com/claims/user/roles"
TIMEOUT = 15


class CheckFailed(Exception):
    pass


def fail(message: str) -> NoReturn:
    raise CheckFailed(message)


def check(condition: Any, message: str) -> None:
    if not condition:
        fail(message)


def ok(message: str) -> None:
    print(f"ok   {message}")


def info(message: str) -> None:
    print(f"     {message}")


def short(response: requests.Response) -> str:
    body = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code} {body[:200]}"


class SmokeCheck:
    def __init__(self, args: argparse.Namespace) -> None:
        self.issuer: str = args.issuer
        self.client_id: str = args.client_id
        self.client_secret: str = args.client_secret
        self.redirect_uri: str = args.redirect_uri
        self.post_logout_redirect_uri: str = args.post_logout_redirect_uri
        self.email: str = args.email
        self.password: str = args.password
        self.browser = requests.Session()  # keeps the provider's cookies, like a browser
        self.backend = requests.Session()  # the relying party's server-to-server calls
        self.metadata: dict[str, Any] = {}
        self.jwks: dict[str, Any] = {}

    # --- helpers ----------------------------------------------------------------------------

    def endpoint(self, name: str) -> str:
        return str(self.metadata[name])

    def token_request(self, **form: str) -> requests.Response:
        form = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        return self.backend.post(self.endpoint("token_endpoint"), data=form, timeout=TIMEOUT)

    def verify_id_token(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        check(header.get("alg") == "RS256", f"ID token alg is {header.get('alg')!r}")
        keys = [key for key in self.jwks["keys"] if key.get("kid") == header.get("kid")]
        check(keys, f"no JWKS key has the ID token's kid {header.get('kid')!r}")
        key = jwt.PyJWK(keys[0], algorithm="RS256").key
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=self.client_id,
            issuer=self.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
        check(claims["iss"] == self.issuer, f"iss {claims['iss']!r} != {self.issuer!r}")
        check(isinstance(claims.get("auth_time"), int), "ID token has no integer auth_time")
        check(isinstance(claims.get("sid"), str) and claims["sid"], "ID token has no sid")
        uuid.UUID(claims["sub"])  # raises if sub is not a UUID
        if nonce is None:
            check("nonce" not in claims, "a refreshed ID token carries a nonce")
        else:
            check(claims.get("nonce") == nonce, "ID token nonce does not match")
        return claims

    def authorize(
        self, *, expect_login: bool, wrong_password_first: bool = False
    ) -> tuple[str, str, str]:
        """Run the browser part of a login; return (code, nonce, code_verifier)."""
        state = secrets.token_urlsafe(16)
        nonce = secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        response = self.browser.get(
            self.endpoint("authorization_endpoint"),
            params=params,
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        logged_in = False
        for _ in range(10):
            check(
                response.status_code in (301, 302, 303),
                f"authorize flow stopped at {short(response)}",
            )
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(self.redirect_uri):
                break
            check(
                urlsplit(location).netloc == urlsplit(self.issuer).netloc,
                f"unexpected redirect to {location}",
            )
            if urlsplit(location).path == "/login":
                check(expect_login, "the provider asked for a login although a session exists")
                if wrong_password_first:
                    self.login(location, self.password + "-wrong", expect_success=False)
                    ok("wrong password: the login form is shown again with an error")
                    wrong_password_first = False
                response = self.login(location, self.password, expect_success=True)
                logged_in = True
                continue
            response = self.browser.get(location, allow_redirects=False, timeout=TIMEOUT)
        else:
            fail("too many redirects in the authorization flow")
        check(logged_in == expect_login, "login page expectation not met")
        query = parse_qs(urlsplit(location).query)
        check("error" not in query, f"authorization error: {query}")
        check(query.get("state") == [state], "state was not echoed")
        check(query.get("code"), "no code in the redirect")
        info(
            f"redirected to {location.split('?')[0]}?code=...&state=... "
            f"(HTTP {response.status_code})"
        )
        return query["code"][0], nonce, verifier

    def login(self, url: str, password: str, *, expect_success: bool) -> requests.Response:
        page = self.browser.get(url, timeout=TIMEOUT)
        check(page.status_code == 200, f"login page: {short(page)}")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        check(match, "no CSRF token on the login page")
        next_match = re.search(r'name="next" value="([^"]*)"', page.text)
        form = {
            "csrfmiddlewaretoken": match.group(1),  # type: ignore[union-attr]
            "username": self.email,
            "password": password,
            "next": html.unescape(next_match.group(1)) if next_match else "",
        }
        response = self.browser.post(page.url, data=form, allow_redirects=False, timeout=TIMEOUT)
        if expect_success:
            check(response.status_code == 302, f"login failed: {short(response)}")
        else:
            check(response.status_code == 200, f"wrong password was not refused: {short(response)}")
            check('class="error"' in response.text, "no error message after a wrong password")
        return response

    # --- the checks -------------------------------------------------------------------------

    def run(self) -> None:
        self.check_discovery()
        code, nonce, verifier = self.authorize(expect_login=True, wrong_password_first=True)
        ok("authorization: logged in through the form, got a code and the same state")
        tokens, claims = self.check_code_exchange(code, nonce, verifier)
        self.check_userinfo(tokens["access_token"], claims)
        self.check_refresh_and_revoke(tokens, claims)
        self.check_end_session()
        self.check_error_formats()

    def check_discovery(self) -> None:
        response = self.backend.get(
            f"{self.issuer}/.well-known/openid-configuration", timeout=TIMEOUT
        )
        check(response.status_code == 200, f"discovery: {short(response)}")
        self.metadata = response.json()
        check(
            self.metadata.get("issuer") == self.issuer, f"issuer is {self.metadata.get('issuer')!r}"
        )
        expected = {
            "authorization_endpoint": "/oauth2/authorize",
            "token_endpoint": "/oauth2/token",
            "userinfo_endpoint": "/oauth2/userinfo",
            "jwks_uri": "/oauth2/jwks",
            "revocation_endpoint": "/oauth2/revoke",
            "end_session_endpoint": "/oauth2/end_session",
        }
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.issuer))
        for field, path in expected.items():
            check(
                self.metadata.get(field) == origin + path,
                f"{field} is {self.metadata.get(field)!r}",
            )
        check(
            "S256" in self.metadata.get("code_challenge_methods_supported", []),
            "no S256 in discovery",
        )
        check(
            "client_secret_post" in self.metadata.get("token_endpoint_auth_methods_supported", []),
            "no client_secret_post in discovery",
        )
        ok(f"discovery: issuer {self.issuer}, endpoints at /oauth2/* without trailing slashes")
        response = self.backend.get(self.endpoint("jwks_uri"), timeout=TIMEOUT)
        check(response.status_code == 200, f"jwks: {short(response)}")
        self.jwks = response.json()
        rsa_keys = [key for key in self.jwks.get("keys", []) if key.get("kty") == "RSA"]
        check(rsa_keys, "JWKS has no RSA key")
        bits = len(base64.urlsafe_b64decode(rsa_keys[0]["n"] + "==")) * 8
        ok(f"jwks: {len(self.jwks['keys'])} key(s), RSA {bits} bits, kid {rsa_keys[0].get('kid')}")

    def check_code_exchange(
        self, code: str, nonce: str, verifier: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        response = self.token_request(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )
        check(response.status_code == 200, f"code exchange: {short(response)}")
        tokens: dict[str, Any] = response.json()
        for field in ("access_token", "token_type", "expires_in", "id_token", "refresh_token"):
            check(field in tokens, f"token response lacks {field}")
        check(tokens["token_type"] == "Bearer", f"token_type is {tokens['token_type']!r}")
        ok(
            "code exchange (client_secret_post + code_verifier): fields "
            + ", ".join(sorted(tokens))
            + f"; expires_in={tokens['expires_in']}"
        )
        info(f"Cache-Control: {response.headers.get('Cache-Control')!r}")
        claims = self.verify_id_token(tokens["id_token"], nonce=nonce)
        check(ROLES_CLAIM in claims, "ID token has no roles claim")
        ok("ID token verified with PyJWT against the JWKS (RS256, exact iss, aud, nonce)")
        info(f"ID token claims: {json.dumps(claims, sort_keys=True)}")
        replay = self.token_request(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )
        check(
            replay.status_code == 400 and replay.json().get("error") == "invalid_grant",
            short(replay),
        )
        ok("a used code is refused: invalid_grant")
        return tokens, claims

    def check_userinfo(self, access_token: str, id_claims: dict[str, Any]) -> None:
        response = self.backend.get(
            self.endpoint("userinfo_endpoint"),
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT,
        )
        check(response.status_code == 200, f"userinfo: {short(response)}")
        userinfo = response.json()
        check(userinfo.get("sub") == id_claims["sub"], "userinfo sub differs from the ID token's")
        check(userinfo.get("email") == self.email, f"userinfo email is {userinfo.get('email')!r}")
        check(userinfo.get("email_verified") is True, "email_verified is not true")
        for field in ("name", "given_name", "family_name"):
            check(field in userinfo, f"userinfo lacks {field}")
        check(isinstance(userinfo.get(ROLES_CLAIM), list), "userinfo roles is not a list")
        ok(f"userinfo: {json.dumps(userinfo, sort_keys=True)}")

    def check_refresh_and_revoke(
        self, tokens: dict[str, Any], first_claims: dict[str, Any]
    ) -> None:
        old_refresh = tokens["refresh_token"]
        response = self.token_request(grant_type="refresh_token", refresh_token=old_refresh)
        check(response.status_code == 200, f"refresh: {short(response)}")
        refreshed: dict[str, Any] = response.json()
        check(refreshed.get("refresh_token"), "no new refresh_token (rotation)")
        check(refreshed["refresh_token"] != old_refresh, "the refresh token was not rotated")
        check("id_token" in refreshed, "refresh returned no id_token")
        claims = self.verify_id_token(refreshed["id_token"], nonce=None)
        check(claims["sub"] == first_claims["sub"], "refreshed ID token has another sub")
        check(claims["sid"] == first_claims["sid"], "refreshed ID token has another sid")
        check(claims["auth_time"] == first_claims["auth_time"], "refresh changed auth_time")
        ok(
            "refresh: new access token, rotated refresh token, new ID token "
            "(same sub/sid/auth_time, no nonce)"
        )
        reuse = self.token_request(grant_type="refresh_token", refresh_token=old_refresh)
        check(
            reuse.status_code == 400 and reuse.json().get("error") == "invalid_grant", short(reuse)
        )
        ok(f"the old refresh token is refused: {short(reuse)}")
        old_access = self.userinfo_status(tokens["access_token"])
        info(f"userinfo with the access token from before the refresh: HTTP {old_access}")

        response = self.backend.post(
            self.endpoint("revocation_endpoint"),
            data={
                "token": refreshed["refresh_token"],
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            timeout=TIMEOUT,
        )
        check(response.status_code == 200, f"revoke: {short(response)}")
        ok(f"revoke refresh token: HTTP 200, body {response.text!r}")
        after = self.token_request(
            grant_type="refresh_token", refresh_token=refreshed["refresh_token"]
        )
        check(
            after.status_code == 400 and after.json().get("error") == "invalid_grant", short(after)
        )
        ok("the revoked refresh token is refused: invalid_grant")
        status = self.userinfo_status(refreshed["access_token"])
        check(
            status == 401, f"the revoked refresh token's access token still works (HTTP {status})"
        )
        ok("its access token is dead too: userinfo HTTP 401")

    def userinfo_status(self, access_token: str) -> int:
        response = self.backend.get(
            self.endpoint("userinfo_endpoint"),
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT,
        )
        return response.status_code

    def check_end_session(self) -> None:
        code, nonce, verifier = self.authorize(expect_login=False)
        ok("second authorization: single sign-on, no login form")
        response = self.token_request(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )
        check(response.status_code == 200, f"second code exchange: {short(response)}")
        tokens = response.json()
        self.verify_id_token(tokens["id_token"], nonce=nonce)

        state = secrets.token_urlsafe(8)
        response = self.browser.get(
            self.endpoint("end_session_endpoint"),
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": self.post_logout_redirect_uri,
                "state": state,
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        check(response.status_code in (302, 303), f"end_session: {short(response)}")
        location = response.headers["Location"]
        expected = f"{self.post_logout_redirect_uri}?state={state}"
        check(
            location == expected, f"end_session redirected to {location!r}, expected {expected!r}"
        )
        ok(
            f"end_session with id_token_hint: HTTP {response.status_code} to {location} "
            "without a prompt"
        )
        refresh = self.token_request(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
        check(refresh.status_code == 400, f"refresh after logout: {short(refresh)}")
        status = self.userinfo_status(tokens["access_token"])
        check(status == 401, f"userinfo after logout: HTTP {status}")
        ok(
            f"after logout the tokens are dead: refresh -> {short(refresh)}; "
            f"userinfo -> HTTP {status}"
        )
        response = self.browser.get(
            self.endpoint("authorization_endpoint"),
            params={"response_type": "code", "client_id": self.client_id, "scope": "openid"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        check(
            response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login",
            f"after logout, authorize did not ask for a login: {short(response)}",
        )
        ok("after logout the provider session is gone: authorize redirects to /login")

    def check_error_formats(self) -> None:
        """Not pass/fail (beyond being errors): print how the provider reports bad requests."""
        bad_secret = self.backend.post(
            self.endpoint("token_endpoint"),
            data={
                "grant_type": "refresh_token",
                "refresh_token": "x",
                "client_id": self.client_id,
                "client_secret": "wrong",
            },
            timeout=TIMEOUT,
        )
        check(bad_secret.status_code >= 400, "a wrong client secret was accepted")
        info(f"wrong client_secret at the token endpoint: {short(bad_secret)}")
        bad_token = self.backend.get(
            self.endpoint("userinfo_endpoint"),
            headers={"Authorization": "Bearer nope"},
            timeout=TIMEOUT,
        )
        check(bad_token.status_code == 401, f"userinfo with a bad token: {short(bad_token)}")
        info(
            f"userinfo with a bad token: {short(bad_token)}; "
            f"WWW-Authenticate: {bad_token.headers.get('WWW-Authenticate')!r}"
        )
        ok("error responses printed above")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    port = os.environ.get("LOCAL_OP_PORT", "9000")
    default_issuer = (os.environ.get("LOCAL_OP_ISSUER") or f"http://127.0.0.1:{port}").rstrip("/")
    redirect_uris = os.environ.get("LOCAL_OP_REDIRECT_URIS", "").split()
    post_logout = os.environ.get("LOCAL_OP_POST_LOGOUT_REDIRECT_URIS", "").split()
    parser = argparse.ArgumentParser(prog="python -m example_project.local_provider.smoke_check")
    parser.add_argument("--issuer", default=default_issuer)
    parser.add_argument("--client-id", default="demo-client")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument(
        "--redirect-uri",
        default=redirect_uris[0] if redirect_uris else "http://127.0.0.1:8000/auth/callback/",
    )
    parser.add_argument(
        "--post-logout-redirect-uri",
        default=post_logout[0] if post_logout else "http://127.0.0.1:8000/auth/logout/return/",
    )
    parser.add_argument("--email", default="demo@example.com")
    parser.add_argument("--password", default="authgear-demo")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"smoke check of the local provider at {args.issuer}")
    try:
        SmokeCheck(args).run()
    except CheckFailed as error:
        print(f"FAIL {error}", file=sys.stderr)
        return 1
    except (requests.RequestException, jwt.PyJWTError, ValueError, KeyError) as error:
        print(f"FAIL {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

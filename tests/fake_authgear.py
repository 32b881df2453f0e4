"""A fake Authgear at the HTTP boundary (``responses``), with really signed RS256 tokens.

It behaves like Authgear as documented in shared/authgear-protocol.md: discovery with the bare
origin as issuer, ``/oauth2/*`` endpoints, codes single-use and bound to redirect_uri and PKCE,
``client_secret_post`` or ``client_secret_basic`` (read only when the body has neither
``client_id`` nor ``client_secret``), a public client (``public_client``: no secret, PKCE
required), ID tokens valid 5 minutes with ``aud`` as a list, refresh tokens
``<grant>.<secret>`` with optional rotation, userinfo 401 ``invalid_grant`` for a dead token,
revocation that always answers 200, ``prompt=none`` answered from the browser's Authgear
session (``login_required`` without one).

``token_rate_limit`` (off by default) limits ``/oauth2/token`` (code exchanges and refreshes
alike) to that many calls per minute, by the clock the tests control: over it the answer is 429
``{"error": "x_rate_limited"}`` without ``Retry-After``, as Authgear does (120/min per client
IP there). The budget is a bucket of that size refilled evenly over the minute (a burst of the
whole minute's budget, then one call per 60/limit seconds): the GCRA shape of a rate limiter
like Authgear's (its exact algorithm is not verified here).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests import leak_guard

ENDPOINT = "https://authgear.test"
CLIENT_ID = "a1b2c3d4e5f60718"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"

_KEY_CACHE: dict[str, rsa.RSAPrivateKey] = {}


def rsa_key(name: str = "primary") -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key per name, generated once per test run."""
    if name not in _KEY_CACHE:
        _KEY_CACHE[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEY_CACHE[name]


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig", "created_at": 1787300000})
    return jwk


@dataclass
class FakeUser:
    sub: str = field(default_factory=lambda: str(uuid.uuid4()))
    email: str = "jane@example.com"
    email_verified: bool = True
    given_name: str = "Jane"
    family_name: str = "Doe"
    roles: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def userinfo(self) -> dict[str, Any]:
        claims = {
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "name": f"{self.given_name} {self.family_name}".strip(),
            "https://authgear.com/claims/user/is_anonymous": False,
            "https://authgear.com/claims/user/is_verified": True,
            "https://authgear.com/claims/user/can_reauthenticate": True,
            "https://authgear.com/claims/user/roles": list(self.roles),
            "custom_attributes": {},
            "x_web3": {},
        }
        claims.update(self.extra)
        return claims


@dataclass
class Grant:
    """An Authgear offline grant: one login's refresh token and its access tokens."""

    grant_id: str
    user: FakeUser
    scope: str
    refresh_secret: str
    auth_time: int
    revoked: bool = False


class FakeAuthgear:
    """Serve Authgear's endpoints through ``responses`` and record what was called."""

    def __init__(self, mock: responses.RequestsMock | None, *, endpoint: str = ENDPOINT) -> None:
        self.mock = mock
        self.endpoint = endpoint
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        # True: the client is a Public Client / Cookie SSO / Native App (no secret, PKCE).
        self.public_client = False
        leak_guard.register(CLIENT_SECRET)
        self.kid = "key-" + uuid.uuid4().hex[:8]
        self.signing_key = rsa_key()
        self.published_keys: list[dict[str, Any]] = [public_jwk(self.signing_key, self.kid)]
        self.issuer = endpoint
        self.access_token_lifetime = 1800
        self.id_token_lifetime = 300
        self.rotation = False
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.codes: dict[str, dict[str, Any]] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, tuple[Grant, float]] = {}
        self.failures: dict[str, Callable[[], Any]] = {}
        self.id_token_tamper: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
        self.userinfo_tamper: Callable[[dict[str, Any]], None] | None = None
        # Called just before an ID token is signed (e.g. a key rotation at that very moment).
        self.before_id_token_signing: Callable[[], None] | None = None
        # Rewrites the signed ID token before it is sent (break its signature, strip it, ...).
        self.id_token_rewrite: Callable[[str], str] | None = None
        # (call name, request headers) of every request, in order: how the client authenticated.
        self.request_headers: list[tuple[str, dict[str, str]]] = []
        self.discovery_overrides: dict[str, Any] = {}
        self.refresh_latency = 0.0  # seconds the refresh grant takes (a slow Authgear)
        # Calls of /oauth2/token allowed per minute (None: no limit); see the module docstring.
        self.token_rate_limit: int | None = None
        # (time, "token" or "refresh", HTTP status) of every /oauth2/token call, in order.
        self.token_answers: list[tuple[float, str, int]] = []
        self._token_budget: float | None = None
        self._token_budget_at = 0.0
        self.routes: dict[tuple[str, str], Callable[[Any], Any]] = {}
        # Whose Authgear session cookie the (one) test browser holds: set by a sign-in at the
        # authorize page, read by ``prompt=none`` (:meth:`silent_authorize`).
        self.browser_user: FakeUser | None = None
        self._register()

    # --- wiring ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.endpoint + path

    def _register(self) -> None:
        routes: list[tuple[str, str, Callable[[Any], Any]]] = [
            ("GET", "/.well-known/openid-configuration", self._discovery),
            ("GET", "/oauth2/jwks", self._jwks),
            ("POST", "/oauth2/token", self._token),
            ("GET", "/oauth2/userinfo", self._userinfo),
            ("POST", "/oauth2/revoke", self._revoke),
        ]
        for method, path, handler in routes:
            self.routes[(method, path)] = self._wrap(path, handler)
            if self.mock is not None:
                self.mock.add_callback(method, self.url(path), callback=self.routes[(method, path)])

    def _wrap(self, path: str, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        call = {
            "/.well-known/openid-configuration": "discovery",
            "/oauth2/jwks": "jwks",
            "/oauth2/token": "token",
            "/oauth2/userinfo": "userinfo",
            "/oauth2/revoke": "revoke",
        }[path]

        def callback(request: Any) -> Any:
            form = (
                parse_qs(request.body or "")
                if isinstance(request.body, str)
                else (parse_qs(request.body.decode()) if request.body else {})
            )
            if call == "token" and form.get("grant_type") == ["refresh_token"]:
                name = "refresh"
            else:
                name = call
            self.calls[name] += 1
            self.requests.append((name, form))
            self.request_headers.append((name, dict(request.headers)))
            if call == "token" and self._over_token_rate_limit():
                self.token_answers.append((time.time(), name, 429))
                return _json(
                    429,
                    {
                        "error": "x_rate_limited",
                        "error_description": "rate limit exceeded, please try again later.",
                    },
                )
            failure = self.failures.get(name)
            if failure is not None:
                result = failure()
                if isinstance(result, BaseException):
                    raise result
                return result
            answer = handler(request)
            if call == "token" and isinstance(answer, tuple):
                self.token_answers.append((time.time(), name, answer[0]))
            return answer

        return callback

    def fail(
        self,
        call: str,
        *,
        status: int | None = None,
        body: str = "",
        content_type: str = "text/html",
        exception: BaseException | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make every request of ``call`` fail (``discovery``, ``jwks``, ``token``, ``refresh``,
        ``userinfo``, ``revoke``) with an HTTP status or a transport exception."""

        def failure() -> Any:
            if exception is not None:
                return exception
            return (status or 500, {"Content-Type": content_type, **(headers or {})}, body)

        self.failures[call] = failure

    def heal(self, call: str | None = None) -> None:
        if call is None:
            self.failures.clear()
        else:
            self.failures.pop(call, None)

    def _over_token_rate_limit(self) -> bool:
        """Spend one call of the token endpoint's budget; True when none is left (429)."""
        limit = self.token_rate_limit
        if limit is None:
            return False
        now = time.time()
        if self._token_budget is None:
            self._token_budget, self._token_budget_at = float(limit), now
        refill = max(0.0, now - self._token_budget_at) * limit / 60.0
        self._token_budget = min(float(limit), self._token_budget + refill)
        self._token_budget_at = now
        if self._token_budget < 1.0:
            return True
        self._token_budget -= 1.0
        return False

    def token_answers_per_minute(self, since: float) -> list[Counter[int]]:
        """HTTP statuses of /oauth2/token answers, per minute from ``since``."""
        minutes: list[Counter[int]] = []
        for at, _name, status in self.token_answers:
            index = int((at - since) // 60)
            while len(minutes) <= index:
                minutes.append(Counter())
            minutes[index][status] += 1
        return minutes

    # --- the browser side: /oauth2/authorize ----------------------------------------------------

    def authorize(self, authorize_url: str, user: FakeUser) -> str:
        """What Authgear's authorize endpoint does after the user signs in: the callback URL.
        The browser then holds ``user``'s Authgear session (:attr:`browser_user`)."""
        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.url("/oauth2/authorize")
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert params["client_id"] == self.client_id
        assert params["response_type"] == "code"
        assert "openid" in params["scope"].split()
        assert params["code_challenge_method"] == "S256"
        if "login_hint" in params:
            assert params["login_hint"].startswith("https://authgear.com/login_hint?")
        self.browser_user = user  # signing in at Authgear's page leaves its session cookie
        return self._issue_code(params, user)

    def _issue_code(self, params: dict[str, str], user: FakeUser) -> str:
        code = secrets.token_urlsafe(24)
        leak_guard.register(code)
        self.codes[code] = {
            "params": params,
            "user": user,
            "used": False,
            "issued_at": time.time(),
        }
        return params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})

    def silent_authorize(self, authorize_url: str) -> str:
        """What Authgear's authorize endpoint answers to ``prompt=none``, with no page shown:
        a code for the browser's Authgear session (:attr:`browser_user`), ``login_required``
        without one, ``invalid_request`` when ``max_age`` comes too (Authgear refuses it)."""
        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.url("/oauth2/authorize")
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert params["client_id"] == self.client_id
        assert params["response_type"] == "code"
        assert params.get("prompt") == "none", "silent_authorize is Authgear's prompt=none"
        assert "openid" in params["scope"].split()
        assert params["code_challenge_method"] == "S256"
        if "max_age" in params:
            return self._authorize_error(params, "invalid_request", "max_age with prompt=none")
        if self.browser_user is None:
            return self._authorize_error(params, "login_required", "authentication required")
        return self._issue_code(params, self.browser_user)

    def _authorize_error(self, params: dict[str, str], error: str, description: str) -> str:
        query = {"error": error, "error_description": description, "state": params["state"]}
        return params["redirect_uri"] + "?" + urlencode(query)

    def deny(self, authorize_url: str, error: str = "access_denied") -> str:
        params = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        return (
            params["redirect_uri"]
            + "?"
            + urlencode(
                {"error": error, "error_description": "user cancelled", "state": params["state"]}
            )
        )

    # --- handlers ------------------------------------------------------------------------------

    def discovery_document(self) -> dict[str, Any]:
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/oauth2/authorize"),
            "token_endpoint": self.url("/oauth2/token"),
            "userinfo_endpoint": self.url("/oauth2/userinfo"),
            "jwks_uri": self.url("/oauth2/jwks"),
            "revocation_endpoint": self.url("/oauth2/revoke"),
            "end_session_endpoint": self.url("/oauth2/end_session"),
            "response_types_supported": ["code", "none"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": [
                "offline_access",
                "openid",
                "email",
                "profile",
                "https://authgear.com/scopes/full-userinfo",
            ],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
            "subject_types_supported": ["public"],
        }
        doc.update(self.discovery_overrides)
        return doc

    def _discovery(self, request: Any) -> Any:
        return _json(200, self.discovery_document())

    def _jwks(self, request: Any) -> Any:
        return _json(200, {"keys": self.published_keys})

    def _token(self, request: Any) -> Any:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        leak_guard.register(form.get("code_verifier"), form.get("code"), form.get("refresh_token"))
        form.update(_client_credentials(form, request.headers.get("Authorization", "")))
        if form.get("client_id") != self.client_id:
            return _json(400, {"error": "invalid_client", "error_description": "invalid client ID"})
        if form.get("grant_type") == "authorization_code":
            return self._code_grant(form)
        if form.get("grant_type") == "refresh_token":
            return self._refresh_grant(form)
        return _json(400, {"error": "unsupported_grant_type"})

    def _code_grant(self, form: dict[str, str]) -> Any:
        if self.public_client and not form.get("code_verifier"):
            return _json(
                400,
                {"error": "invalid_request", "error_description": "PKCE code verifier is required"},
            )
        if not self.public_client and not form.get("client_secret"):
            return _json(
                400, {"error": "invalid_client", "error_description": "client secret is required"}
            )
        entry = self.codes.get(form.get("code", ""))
        if entry is None or entry["used"] or time.time() - entry["issued_at"] > 300:
            return _json(
                400, {"error": "invalid_grant", "error_description": "invalid authorization code"}
            )
        params = entry["params"]
        if form.get("redirect_uri") != params["redirect_uri"]:
            return _json(
                400, {"error": "invalid_request", "error_description": "invalid redirect URI"}
            )
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != params["code_challenge"]:
            return _json(
                400, {"error": "invalid_grant", "error_description": "invalid authorization code"}
            )
        if self.public_client and form.get("client_secret"):
            return _json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "client secret is not supported for the client",
                },
            )
        if not self.public_client and form["client_secret"] != self.client_secret:
            return _json(
                400, {"error": "invalid_request", "error_description": "invalid client secret"}
            )
        entry["used"] = True
        user: FakeUser = entry["user"]
        grant = Grant(
            grant_id=str(uuid.uuid4()),
            user=user,
            scope=params["scope"],
            refresh_secret=secrets.token_urlsafe(24),
            auth_time=int(time.time()),
        )
        self.grants[grant.grant_id] = grant
        return _json(200, self._issue(grant, nonce=params.get("nonce"), with_refresh=True))

    def _refresh_grant(self, form: dict[str, str]) -> Any:
        token = form.get("refresh_token", "")
        grant_id, _, secret = token.partition(".")
        grant = self.grants.get(grant_id)
        if (
            grant is None
            or grant.revoked
            or not secrets.compare_digest(secret, grant.refresh_secret)
        ):
            return _json(
                400, {"error": "invalid_grant", "error_description": "invalid refresh token"}
            )
        if self.refresh_latency:
            time.sleep(self.refresh_latency)
        if self.rotation:
            grant.refresh_secret = secrets.token_urlsafe(24)
        return _json(200, self._issue(grant, nonce=None, with_refresh=self.rotation))

    def _issue(self, grant: Grant, *, nonce: str | None, with_refresh: bool) -> dict[str, Any]:
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = (grant, time.time() + self.access_token_lifetime)
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "id_token": self.id_token(grant, nonce=nonce),
        }
        if with_refresh and "offline_access" in grant.scope.split():
            body["refresh_token"] = f"{grant.grant_id}.{grant.refresh_secret}"
        leak_guard.register(body["access_token"], body["id_token"], body.get("refresh_token"))
        return body

    def id_token(self, grant: Grant, *, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [self.client_id],
            "sub": grant.user.sub,
            "iat": now,
            "exp": now + self.id_token_lifetime,
            "auth_time": grant.auth_time,
            "sid": base64.urlsafe_b64encode(f"offline_grant:{grant.grant_id}".encode())
            .rstrip(b"=")
            .decode(),
            "amr": ["pwd", "x_primary_password"],
            "https://authgear.com/claims/user/is_anonymous": False,
            "https://authgear.com/claims/user/is_verified": True,
            "https://authgear.com/claims/user/can_reauthenticate": True,
            "https://authgear.com/claims/user/roles": list(grant.user.roles),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if self.before_id_token_signing is not None:
            self.before_id_token_signing()
        header: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        if self.id_token_tamper is not None:
            self.id_token_tamper(claims, header)
        token = self.sign(claims, header=header)
        if self.id_token_rewrite is not None:
            token = self.id_token_rewrite(token)
        return token

    def sign(
        self,
        claims: dict[str, Any],
        *,
        header: dict[str, Any] | None = None,
        key: Any = None,
        algorithm: str = "RS256",
    ) -> str:
        header = dict(header or {"kid": self.kid, "typ": "JWT"})
        algorithm = header.pop("alg", algorithm)
        return jwt.encode(
            claims,
            key if key is not None else self.signing_key,
            algorithm=algorithm,
            headers=header,
        )

    def jwt_access_token(
        self,
        user: FakeUser,
        *,
        scope: str = "openid offline_access",
        lifetime: int = 1800,
        **overrides: Any,
    ) -> str:
        """An access token as Authgear signs it with "Issue JWT as access token" on."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [self.endpoint],
            "sub": user.sub,
            "iat": now,
            "exp": now + lifetime,
            "auth_time": now,
            "client_id": self.client_id,
            "scope": scope,
            "jti": hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
            "email": user.email,
            "email_verified": user.email_verified,
            "https://authgear.com/claims/user/roles": list(user.roles),
        }
        header: dict[str, Any] = {"kid": self.kid, "typ": "at+jwt"}
        apply_changes(claims, header, overrides)
        return self.sign(claims, header=header)

    def _userinfo(self, request: Any) -> Any:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        entry = self.access_tokens.get(token)
        if entry is None or entry[0].revoked or entry[1] < time.time():
            return (
                401,
                {
                    "Content-Type": "application/json",
                    "WWW-Authenticate": 'Bearer error="invalid_grant"',
                },
                json.dumps({"error": "invalid_grant", "error_description": "invalid session"}),
            )
        claims = entry[0].user.userinfo()
        if self.userinfo_tamper is not None:
            self.userinfo_tamper(claims)
        return _json(200, claims)

    def _revoke(self, request: Any) -> Any:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        grant_id = form.get("token", "").partition(".")[0]
        if grant_id in self.grants:
            self.grants[grant_id].revoked = True
        return (200, {}, "")

    # --- helpers for tests -----------------------------------------------------------------------

    def rotate_signing_key(self) -> None:
        """Authgear-style key rotation: prepend a new key and sign with it from now on."""
        self.signing_key = rsa_key("rotated")
        self.kid = "key-" + uuid.uuid4().hex[:8]
        self.published_keys.insert(0, public_jwk(self.signing_key, self.kid))

    def replace_signing_keys(self) -> None:
        """A new JWKS with only a new key (new ``kid``): what was cached no longer verifies."""
        self.signing_key = rsa_key("replacement")
        self.kid = "key-" + uuid.uuid4().hex[:8]
        self.published_keys = [public_jwk(self.signing_key, self.kid)]

    def publish_keys_without_kid(self, names: list[str]) -> None:
        """Publish the named keys without ``kid`` (in this order) and sign with the first one;
        drop the ``kid`` header with ``id_token_tamper`` to match."""
        self.signing_key = rsa_key(names[0])
        self.published_keys = []
        for name in names:
            jwk = public_jwk(rsa_key(name), kid="")
            del jwk["kid"]
            self.published_keys.append(jwk)

    def end_sessions_of(self, user: FakeUser) -> int:
        """What Authgear does when a user's sessions end there (signed out at Authgear, a
        session revoked in the portal, the user disabled): every grant of the user is revoked,
        so userinfo answers 401 ``invalid_grant`` and a refresh ``invalid_grant``. No webhook
        is sent (Authgear delivers none for it). Returns how many grants were ended."""
        ended = 0
        if self.browser_user is not None and self.browser_user.sub == user.sub:
            self.browser_user = None
        for grant in self.grants.values():
            if grant.user.sub == user.sub and not grant.revoked:
                grant.revoked = True
                ended += 1
        return ended

    def live_refresh_tokens(self) -> list[str]:
        return [f"{g.grant_id}.{g.refresh_secret}" for g in self.grants.values() if not g.revoked]


def apply_changes(claims: dict[str, Any], header: dict[str, Any], changes: dict[str, Any]) -> None:
    """Edit a token before signing: ``header_<name>`` sets a header field, ``None`` removes a
    claim, anything else sets it."""
    for name, value in changes.items():
        if name.startswith("header_"):
            header[name[7:]] = value
        elif value is None:
            claims.pop(name, None)
        else:
            claims[name] = value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def break_signature(token: str) -> str:
    """The same JWT with one bit of its signature flipped (still canonical base64url), as the
    OpenID conformance suite's ``SignIdTokenInvalid`` does."""
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{_b64url(bytes(raw))}"


def strip_signature(token: str) -> str:
    """The same claims as an unsigned JWT: header ``{"alg": "none"}`` and no signature."""
    payload = token.split(".")[1]
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{payload}."


def _client_credentials(form: dict[str, str], authorization: str) -> dict[str, str]:
    """Authgear's rule: HTTP Basic counts only when the body has neither ``client_id`` nor
    ``client_secret``; both parts are form-urlencoded inside the Base64 (RFC 6749 §2.3.1)."""
    if "client_id" in form or "client_secret" in form:
        return {}
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return {}
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        return {}
    client_id, separator, client_secret = decoded.partition(":")
    if not separator:
        return {}
    return {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(client_secret)}


def _json(status: int, body: dict[str, Any]) -> Any:
    return (
        status,
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
        json.dumps(body),
    )


CONNECT_TIMEOUT = requests.exceptions.ConnectTimeout("fake timeout")
READ_TIMEOUT = requests.exceptions.ReadTimeout("fake read timeout")
CONNECTION_REFUSED = requests.exceptions.ConnectionError("fake connection refused")

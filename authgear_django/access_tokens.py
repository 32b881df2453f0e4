"""Local validation of Authgear JWT access tokens, fast enough for every API request.

Django-free. Authgear signs access tokens (when "Issue JWT as access token" is on) with RS256,
``typ`` ``at+jwt``, ``iss`` = the project origin and ``aud`` = [the project origin]. Validation:
each segment in canonical base64url (one spelling per token, so one cache entry), the header
(RS256 only, ``typ`` ``at+jwt`` required as RFC 9068 says, no ``crit``), the signature with the
JWKS key named by ``kid`` (an unknown ``kid`` refetches the JWKS once), strict JSON (no
``NaN``/``Infinity``, no duplicate names), then ``iss``, ``aud``, ``exp``/``nbf``/``iat``, the
optional ``client_id`` allow-list and scopes.

Why not ``jwt.decode``: PyJWT 2.14+ spends most of a validation in per-character checks of the
compact serialisation (about 0.18x the raw RSA verify rate here). This module parses the three
base64url parts with the standard library and verifies with ``cryptography``'s RSA
PKCS#1 v1.5 / SHA-256 — the cryptography itself is never hand-rolled. Public keys are kept per
process, so no cache or network round trip happens once keys are known; a token already
validated is answered from a bounded per-process cache until its ``exp``.
"""

from __future__ import annotations

import binascii
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_TOKEN_LENGTH = 16_384
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_PADDING = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class AccessTokenError(Exception):
    """The token must be refused. ``error`` is the RFC 6750 code, ``status`` the HTTP status."""

    def __init__(
        self, description: str, *, error: str = "invalid_token", status: int = 401
    ) -> None:
        super().__init__(description)
        self.description = description
        self.error = error
        self.status = status


class KeysUnavailable(AccessTokenError):
    """Authgear's JWKS could not be fetched: the token can't be judged now (503, not 401)."""

    def __init__(self, description: str) -> None:
        super().__init__(description, error="temporarily_unavailable", status=503)


@dataclass(frozen=True)
class AccessToken:
    """A validated access token: its claims and the parts an API usually needs."""

    claims: dict[str, Any] = field(repr=False)

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])

    @property
    def scopes(self) -> frozenset[str]:
        scope = self.claims.get("scope")
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])

    def has_scopes(self, required: Iterable[str]) -> bool:
        return set(required) <= self.scopes


def _b64decode(part: str) -> bytes:
    """base64url of a JWK member (``n``, ``e``), lenient: the JWKS comes from Authgear over TLS
    and is not matched against anything by its spelling. Tokens use :func:`b64url_decode`."""
    return binascii.a2b_base64(part.replace("-", "+").replace("_", "/") + "==")


_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# Numeric dates beyond this (about 285 million years) are nonsense and would overflow float().
_MAX_NUMERIC_DATE = 2**53


def b64url_decode(segment: str) -> bytes:
    """Decode one segment of a compact JWS, accepting only its canonical spelling.

    RFC 7515 segments are unpadded base64url. A lenient decoder ignores the unused low bits of
    the last character (16 spellings of one RS256 signature), padding and the ``+/`` alphabet:
    each spelling of a token would be validated and cached on its own. Raises ``ValueError``.
    """
    data = segment.encode("ascii")  # UnicodeEncodeError is a ValueError
    raw = binascii.a2b_base64(data.translate(_TO_STANDARD) + b"=" * (-len(data) % 4))
    # The lenient decode skips stray characters; the exact re-encoding holds only the url-safe
    # alphabet, so this one comparison refuses them, "+/", "=" and set spare bits alike.
    if (
        not data
        or binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_TO_URLSAFE) != data
    ):
        raise ValueError("not canonical base64url")
    return raw


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _finite_float(text: str) -> float:
    """``1e400`` parses as infinity; a date that is never reached must not be accepted."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """RFC 7515 §4: refuse duplicate names rather than guess which one the signer meant."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


_STRICT_JSON = json.JSONDecoder(  # built once: json.loads(**options) builds one per call
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
    object_pairs_hook=_unique_members,
)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Strict JSON for a JOSE header or claims set: UTF-8, an object, finite numbers, unique
    names. Any other input, however deep or malformed, raises ``ValueError``."""
    try:
        value = _STRICT_JSON.decode(raw.decode("utf-8"))
    except RecursionError:  # deeply nested arrays/objects: malformed, not a server error
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _is_numeric_date(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and -_MAX_NUMERIC_DATE < value < _MAX_NUMERIC_DATE
    )


def public_key_from_jwk(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    """An RSA public key from a JWK (``n``, ``e``), refusing anything else."""
    if jwk.get("kty") != "RSA" or jwk.get("alg") not in (None, "RS256"):
        raise ValueError("not an RS256 key")
    if jwk.get("use") not in (None, "sig"):
        raise ValueError("not a signing key")
    n = int.from_bytes(_b64decode(str(jwk["n"])), "big")
    e = int.from_bytes(_b64decode(str(jwk["e"])), "big")
    if n.bit_length() < 2048:
        raise ValueError("RSA key shorter than 2048 bits")
    return rsa.RSAPublicNumbers(e, n).public_key()


class AccessTokenValidator:
    """Validates access tokens of one Authgear project; one instance per process is enough.

    ``fetch_jwks(force)`` returns the JWKS document (the library's cached client supplies it).
    ``client_ids``: when given, only tokens whose ``client_id`` claim is one of them pass
    (Authgear's ``aud`` names the project, so it cannot tell the project's clients apart).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        fetch_jwks: Callable[[bool], dict[str, Any]],
        leeway: int = 60,
        keys_ttl: float = 3600.0,
        cache_size: int = 4096,
        client_ids: Iterable[str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.fetch_jwks = fetch_jwks
        self.leeway = leeway
        self.keys_ttl = keys_ttl
        self.cache_size = cache_size
        self.client_ids = None if client_ids is None else frozenset(client_ids)
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._keys_loaded_at = 0.0
        self._validated: OrderedDict[str, AccessToken] = OrderedDict()
        self._headers: dict[str, dict[str, Any]] = {}  # tokens of one key share their header
        self._lock = threading.Lock()

    def validate(self, token: str, *, required_scopes: Iterable[str] = ()) -> AccessToken:
        """Return the validated token or raise :class:`AccessTokenError` (401/403/503)."""
        now = time.time()
        cached = self._validated.get(token)
        if cached is not None and now < cached.expires_at + self.leeway:
            result = cached
        else:
            result = self._validate_uncached(token, now)
            with self._lock:
                self._validated[token] = result
                if len(self._validated) > self.cache_size:
                    self._validated.popitem(last=False)
        if required_scopes and not result.has_scopes(required_scopes):
            raise AccessTokenError(
                "the token lacks a required scope", error="insufficient_scope", status=403
            )
        return result

    def _validate_uncached(self, token: str, now: float) -> AccessToken:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise AccessTokenError("the token is empty or too long")
        parts = token.split(".")
        if len(parts) != 3:
            raise AccessTokenError("the token is not a JWT")
        header_part, payload_part, signature_part = parts
        header = self._header(header_part)
        try:
            payload = b64url_decode(payload_part)
            signature = b64url_decode(signature_part)
        except ValueError:
            raise AccessTokenError("the token is not canonical base64url") from None
        if header.get("alg") != "RS256":
            raise AccessTokenError("the token is not signed with RS256")
        token_type = header.get("typ")
        if not isinstance(token_type, str) or token_type.lower() not in ACCEPTED_TYPES:
            raise AccessTokenError("the token is not an access token (typ)")
        if "crit" in header:  # RFC 7515 §4.1.11: we understand no extension, so refuse them all
            raise AccessTokenError("the token has critical header extensions (crit)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AccessTokenError("the token has no key id")
        key = self._key(kid, now)
        try:
            key.verify(
                signature, f"{header_part}.{payload_part}".encode("ascii"), _PADDING, _SHA256
            )
        except InvalidSignature:
            raise AccessTokenError("the token signature is invalid") from None
        try:
            claims = parse_json_object(payload)
        except ValueError:
            raise AccessTokenError("the token payload is malformed") from None
        self._check_claims(claims, now)
        return AccessToken(claims=claims)

    def _header(self, header_part: str) -> dict[str, Any]:
        header = self._headers.get(header_part)
        if header is not None:
            return header
        try:
            raw = b64url_decode(header_part)
        except ValueError:
            raise AccessTokenError("the token is not canonical base64url") from None
        try:
            parsed = parse_json_object(raw)
        except ValueError:
            raise AccessTokenError("the token header is malformed") from None
        if len(self._headers) >= 64:
            self._headers.clear()
        self._headers[header_part] = parsed
        return parsed

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        if claims.get("iss") != self.issuer:
            raise AccessTokenError("the token was issued by someone else (iss)")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise AccessTokenError("the token is not meant for this API (aud)")
        exp = claims.get("exp")
        if not _is_numeric_date(exp):
            raise AccessTokenError("the token has no expiry")
        if now >= exp + self.leeway:
            raise AccessTokenError("the token has expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is None:
                continue
            if not _is_numeric_date(value):
                raise AccessTokenError(f"the token's {name} is not a date")
            if value > now + self.leeway:
                raise AccessTokenError(f"the token is not valid yet ({name})")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise AccessTokenError("the token has no subject")
        client_id = claims.get("client_id")
        if self.client_ids is not None and (
            not isinstance(client_id, str) or client_id not in self.client_ids
        ):
            raise AccessTokenError("the token was issued to a client not allowed here (client_id)")

    def _key(self, kid: str, now: float) -> rsa.RSAPublicKey:
        if now - self._keys_loaded_at > self.keys_ttl:
            self._load_keys(force=False, now=now)
        key = self._keys.get(kid)
        if key is None:
            self._load_keys(force=True, now=now)  # rotated keys: one refetch (with a cooldown)
            key = self._keys.get(kid)
        if key is None:
            raise AccessTokenError("the token was signed with an unknown key")
        return key

    def _load_keys(self, *, force: bool, now: float) -> None:
        try:
            document = self.fetch_jwks(force)
        except Exception as exc:
            if self._keys and not force:
                return  # keep serving with the keys we have
            raise KeysUnavailable(f"cannot fetch Authgear's keys ({type(exc).__name__})") from None
        keys: dict[str, rsa.RSAPublicKey] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                keys[jwk["kid"]] = public_key_from_jwk(jwk)
            except (ValueError, KeyError, TypeError, binascii.Error):
                continue
        with self._lock:
            self._keys = keys
            self._keys_loaded_at = now

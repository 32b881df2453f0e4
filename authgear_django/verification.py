"""ID-token verification: RS256 only, exact issuer, our audience, ``azp``, time window, nonce.

Django-free. PyJWT does the cryptography and the registered-claim checks; this module pins
the algorithm, picks the key by ``kid`` from the provider's JWKS and adds the OpenID Connect
rules PyJWT does not know (``azp``, ``nonce``, ``sub`` continuity on refresh).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import jwt

from authgear_django.access_tokens import b64url_decode
from authgear_django.exceptions import TokenValidationError

ALLOWED_ALGORITHMS = ["RS256"]
MAX_TOKEN_LENGTH = 16_384

KeyLookup = Callable[[str | None], "dict[str, Any] | None"]


def _require_canonical_segments(token: str) -> None:
    """One spelling per ID token, as for access tokens: PyJWT accepts ``=`` padding (and
    releases before 2.15 also ignore the unused bits of the last character)."""
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenValidationError("ID token is not a JWT")
    for segment in segments:
        try:
            b64url_decode(segment)
        except ValueError:
            raise TokenValidationError("ID token is not canonical base64url") from None


def verify_id_token(
    token: str,
    *,
    signing_key: KeyLookup,
    issuer: str,
    client_id: str,
    leeway: int,
    nonce: str | None = None,
    expected_sub: str | None = None,
) -> dict[str, Any]:
    """Return the verified claims of an ID token, or raise :class:`TokenValidationError`.

    ``nonce`` is required for tokens from a code exchange; refreshed ID tokens carry none and are
    checked with ``expected_sub`` instead (the user must not change under a login).
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenValidationError("ID token missing or too long")
    _require_canonical_segments(token)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenValidationError("ID token is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise TokenValidationError(f"ID token algorithm {str(algorithm)[:20]!r} is not allowed")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenValidationError("ID token kid is not a string")
    jwk = signing_key(kid)
    if jwk is None:
        raise TokenValidationError(f"no signing key matches kid {str(kid)[:64]!r}")
    try:
        key = jwt.PyJWK(jwk, algorithm="RS256").key
    except jwt.PyJWTError:
        raise TokenValidationError("provider signing key cannot be used for RS256") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=ALLOWED_ALGORITHMS,
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "strict_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenValidationError("ID token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenValidationError("ID token is not valid yet (iat/nbf in the future)") from None
    except jwt.InvalidAudienceError:
        raise TokenValidationError("ID token audience does not contain our client id") from None
    except jwt.InvalidIssuerError:
        raise TokenValidationError("ID token issuer does not equal AUTHGEAR_ENDPOINT") from None
    except jwt.InvalidSignatureError:
        raise TokenValidationError("ID token signature is invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenValidationError(f"ID token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise TokenValidationError(f"ID token rejected ({type(exc).__name__})") from None

    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenValidationError("ID token sub is not a non-empty string")
    audience = claims["aud"]
    audiences = audience if isinstance(audience, list) else [audience]
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise TokenValidationError("ID token azp is not our client id")
    if len(audiences) > 1 and azp is None:
        raise TokenValidationError("ID token has several audiences but no azp")
    if nonce is not None:
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(
            token_nonce.encode(), nonce.encode()
        ):
            raise TokenValidationError("ID token nonce does not match this login attempt")
    if expected_sub is not None and claims["sub"] != expected_sub:
        raise TokenValidationError("refreshed ID token belongs to another user")
    return claims

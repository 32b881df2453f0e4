"""Direct unit tests of ``authgear_django.verification.verify_id_token`` (Django-free).

Every token here is really signed (RS256 with ``cryptography`` keys through PyJWT, HS256 with
the public key as the HMAC secret for the key-confusion attack), and time is frozen so the
leeway boundaries are exact to the second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from authgear_django.exceptions import TokenValidationError
from authgear_django.verification import MAX_TOKEN_LENGTH, verify_id_token
from tests.conftest import CLOCK_START
from tests.fake_authgear import public_jwk, rsa_key

ISSUER = "https://authgear.test"
CLIENT_ID = "a1b2c3d4e5f60718"
KID = "key-unit"
NOW = CLOCK_START
LEEWAY = 30
SUB = "3f0a6c2e-1d4b-4c8e-9a7f-5b2d1e0c9a88"
NONCE = "n-0S6_WzA2Mj"
PUBLISHED = {KID: public_jwk(rsa_key(), KID)}


@pytest.fixture(autouse=True)
def _frozen(clock: Any) -> Iterator[None]:
    """PyJWT reads the wall clock: freeze it at NOW for exact boundaries."""
    yield


def lookup(kid: str | None) -> dict[str, Any] | None:
    return PUBLISHED.get(kid) if kid is not None else None


def claims(**changes: Any) -> dict[str, Any]:
    """Authgear-shaped ID token claims; ``None`` removes a claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": [CLIENT_ID],
        "sub": SUB,
        "iat": NOW,
        "exp": NOW + 300,
        "auth_time": NOW,
        "nonce": NONCE,
    }
    for name, value in changes.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def token(
    body: dict[str, Any] | None = None, *, key: Any = None, headers: dict[str, Any] | None = None
) -> str:
    return jwt.encode(
        claims() if body is None else body,
        key if key is not None else rsa_key(),
        algorithm="RS256",
        headers={"kid": KID, **(headers or {})},
    )


def verify(raw: str, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "signing_key": lookup,
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "leeway": LEEWAY,
        "nonce": NONCE,
    }
    arguments.update(overrides)
    return verify_id_token(raw, **arguments)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: str = "") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}.{signature}"


def rejected(raw: Any, match: str, **overrides: Any) -> None:
    with pytest.raises(TokenValidationError, match=match):
        verify(raw, **overrides)


# --- the good token ---


def test_a_good_token_returns_its_claims() -> None:
    result = verify(token())
    assert result["sub"] == SUB and result["nonce"] == NONCE and result["aud"] == [CLIENT_ID]


def test_a_string_audience_and_a_matching_azp_are_accepted() -> None:
    assert verify(token(claims(aud=CLIENT_ID)))["aud"] == CLIENT_ID
    several = claims(aud=[CLIENT_ID, "another-api"], azp=CLIENT_ID)
    assert verify(token(several))["azp"] == CLIENT_ID


def test_a_refreshed_token_is_checked_by_sub_instead_of_nonce() -> None:
    refreshed = token(claims(nonce=None))
    assert verify(refreshed, nonce=None, expected_sub=SUB)["sub"] == SUB
    rejected(refreshed, "belongs to another user", nonce=None, expected_sub="someone-else")


def test_a_key_published_without_kid_is_found_by_a_lookup_for_none() -> None:
    """Some JWKS omit ``kid``; the lookup then gets ``None`` and may answer the only key."""
    seen: list[str | None] = []

    def only_key(kid: str | None) -> dict[str, Any] | None:
        seen.append(kid)
        return PUBLISHED[KID]

    raw = jwt.encode(claims(), rsa_key(), algorithm="RS256")  # no kid header
    assert verify(raw, signing_key=only_key)["sub"] == SUB
    assert seen == [None]


# --- issuer, audience, azp, nonce, sub ---


@pytest.mark.parametrize(
    "issuer",
    ["https://evil.test", ISSUER + "/", "http://authgear.test", ISSUER.upper()],
    ids=["other", "trailing-slash", "http", "case"],
)
def test_any_other_issuer_is_refused(issuer: str) -> None:
    rejected(token(claims(iss=issuer)), "issuer does not equal")


@pytest.mark.parametrize("audience", ["other-client", ["other-client"], []], ids=str)
def test_an_audience_without_our_client_id_is_refused(audience: Any) -> None:
    # An empty list counts as no ``aud`` at all for PyJWT: refused as well.
    rejected(token(claims(aud=audience)), "audience|'aud'")


def test_an_azp_that_is_not_our_client_id_is_refused() -> None:
    rejected(token(claims(azp="other-client")), "azp is not our client id")


def test_several_audiences_without_azp_are_refused() -> None:
    rejected(token(claims(aud=[CLIENT_ID, "other-client"])), "several audiences but no azp")


@pytest.mark.parametrize(
    "nonce", [None, "other-nonce", NONCE + "x", NONCE.upper(), 12345, ""], ids=repr
)
def test_a_missing_or_different_nonce_is_refused(nonce: Any) -> None:
    rejected(token(claims(nonce=nonce)), "nonce does not match")  # None: no nonce claim


@pytest.mark.parametrize("sub", ["", 42, ["x"]], ids=repr)
def test_a_sub_that_is_not_a_non_empty_string_is_refused(sub: Any) -> None:
    # PyJWT itself refuses a non-string sub; either way it is a TokenValidationError.
    rejected(token(claims(sub=sub)), "sub|rejected")


@pytest.mark.parametrize("missing", ["iss", "sub", "aud", "exp", "iat"])
def test_every_required_claim_must_be_present(missing: str) -> None:
    rejected(token(claims(**{missing: None})), f"lacks the '{missing}' claim")


# --- time window and leeway ---


def test_expiry_honours_the_leeway_to_the_second() -> None:
    """PyJWT: expired once ``exp <= now - leeway``."""
    assert verify(token(claims(iat=NOW - 600, exp=NOW - LEEWAY + 1)))["sub"] == SUB
    rejected(token(claims(iat=NOW - 600, exp=NOW - LEEWAY)), "has expired")
    rejected(token(claims(iat=NOW - 600, exp=NOW - 3600)), "has expired")


def test_issued_in_the_future_honours_the_leeway_to_the_second() -> None:
    assert verify(token(claims(iat=NOW + LEEWAY)))["sub"] == SUB
    rejected(token(claims(iat=NOW + LEEWAY + 1)), "not valid yet")


def test_not_before_in_the_future_is_refused() -> None:
    assert verify(token(claims(nbf=NOW + LEEWAY)))["sub"] == SUB
    rejected(token(claims(nbf=NOW + LEEWAY + 1)), "not valid yet")


def test_zero_leeway_is_exact() -> None:
    rejected(token(claims(iat=NOW - 10, exp=NOW)), "has expired", leeway=0)
    rejected(token(claims(iat=NOW + 1)), "not valid yet", leeway=0)
    assert verify(token(claims(exp=NOW + 1)), leeway=0)["sub"] == SUB


def test_a_non_numeric_iat_is_refused() -> None:
    rejected(token(claims(iat="yesterday")), "rejected")


# --- algorithm, key and signature ---


def test_alg_none_is_refused_before_any_key_lookup() -> None:
    """An unsigned JWT (empty third segment) is refused by the shape check; one with a fake
    signature by the algorithm pin. Neither ever reaches the key lookup."""
    looked_up: list[str | None] = []

    def spy(kid: str | None) -> dict[str, Any] | None:
        looked_up.append(kid)
        return lookup(kid)

    header = {"alg": "none", "kid": KID}
    rejected(unsigned(header, claims()), "not canonical base64url", signing_key=spy)
    rejected(unsigned(header, claims(), "c2ln"), "'none' is not allowed", signing_key=spy)
    rejected(unsigned({**header, "alg": "None"}, claims(), "c2ln"), "not allowed", signing_key=spy)
    assert looked_up == []


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """The classic key-confusion attack: HMAC keyed with the published RSA public key."""
    public_pem = (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    rejected(f"{header}.{payload}.{b64(mac)}", "'HS256' is not allowed")


@pytest.mark.parametrize("alg", ["RS384", "ES256", "PS256", None], ids=str)
def test_other_asymmetric_or_missing_algorithms_are_refused(alg: Any) -> None:
    header: dict[str, Any] = {"kid": KID}
    if alg is not None:
        header["alg"] = alg
    rejected(unsigned(header, claims(), "c2ln"), "is not allowed")


def test_an_unknown_kid_is_refused_naming_the_kid() -> None:
    rejected(token(headers={"kid": "key-nobody-published"}), "key-nobody-published")


@pytest.mark.parametrize("kid", [7, ["key-unit"], {"k": 1}], ids=repr)
def test_a_non_string_kid_is_refused(kid: Any) -> None:
    # PyJWT (>= 2.10) already refuses the header; our own check is the second line of defence.
    rejected(unsigned({"alg": "RS256", "kid": kid}, claims(), "c2ln"), "kid is not a string|JWT")


def test_a_signature_by_another_key_under_our_kid_is_refused() -> None:
    rejected(token(key=rsa_key("attacker")), "signature is invalid")


def test_a_published_key_that_cannot_do_rs256_is_refused() -> None:
    symmetric = {"kty": "oct", "k": b64(b"0" * 32), "kid": KID}
    rejected(token(), "cannot be used for RS256", signing_key=lambda kid: symmetric)


# --- shape and canonical base64url ---


@pytest.mark.parametrize("raw", ["", None, 42, b"bytes"], ids=repr)
def test_a_missing_or_non_string_token_is_refused(raw: Any) -> None:
    rejected(raw, "missing or too long")


def test_an_oversized_token_is_refused_before_parsing() -> None:
    rejected("a" * (MAX_TOKEN_LENGTH + 1), "missing or too long")


@pytest.mark.parametrize("raw", ["abc", "a.b", "a.b.c.d", "a.b.c.d.e"])
def test_anything_but_three_segments_is_not_a_jwt(raw: str) -> None:
    rejected(raw, "not a JWT")


def test_a_header_that_is_not_json_is_not_a_jwt() -> None:
    raw = token()
    _, payload, signature = raw.split(".")
    rejected(f"{b64(b'not json')}.{payload}.{signature}", "not a JWT")


@pytest.mark.parametrize("segment", [0, 1, 2], ids=["header", "payload", "signature"])
def test_padding_on_any_segment_is_refused(segment: int) -> None:
    parts = token().split(".")
    parts[segment] += "=" * (-len(parts[segment]) % 4 or 4)
    rejected(".".join(parts), "not canonical base64url")


def test_the_standard_alphabet_is_refused() -> None:
    """A signature full of ``-``/``_`` spelled with ``+``/``/`` is the same bytes, another token."""
    raw = token()
    while "-" not in raw.split(".")[2] and "_" not in raw.split(".")[2]:
        raw = token(claims(jti=raw[-8:]))
    header, payload, signature = raw.split(".")
    standard = signature.replace("-", "+").replace("_", "/")
    rejected(f"{header}.{payload}.{standard}", "not canonical base64url")


def test_spare_bits_in_the_last_signature_character_are_refused() -> None:
    """256 signature bytes leave 4 unused bits in the last character: one valid spelling only."""
    header, payload, signature = token().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = alphabet[last ^ 0b0001]
    assert base64.urlsafe_b64decode(signature[:-1] + twin + "==") == base64.urlsafe_b64decode(
        signature + "=="
    )  # the same bytes to a lenient decoder
    assert verify(f"{header}.{payload}.{signature}")["sub"] == SUB
    rejected(f"{header}.{payload}.{signature[:-1]}{twin}", "not canonical base64url")


@pytest.mark.parametrize("junk", [" ", "\n", "*", "é"], ids=repr)
def test_stray_characters_in_a_segment_are_refused(junk: str) -> None:
    header, payload, signature = token().split(".")
    rejected(f"{header}.{payload[:10]}{junk}{payload[10:]}.{signature}", "not canonical")


def test_an_empty_signature_segment_is_refused() -> None:
    header, payload, _ = token().split(".")
    rejected(f"{header}.{payload}.", "not canonical base64url")

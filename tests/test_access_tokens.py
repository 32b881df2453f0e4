"""The access-token validator on its own: one spelling per token, RFC 9068 ``typ``, no
``crit``, strict JSON, the client allow-list; and the same canonical rule for ID tokens.

Tokens are really signed with the fake Authgear's key; the validator gets the fake's JWKS.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from authgear_django.access_tokens import AccessTokenError, AccessTokenValidator
from authgear_django.exceptions import TokenValidationError
from authgear_django.verification import verify_id_token
from tests.fake_authgear import FakeAuthgear, FakeUser

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def fake() -> FakeAuthgear:
    return FakeAuthgear(None)  # only its keys and token minting: no HTTP here


@pytest.fixture
def user() -> FakeUser:
    return FakeUser()


def validator_for(fake: FakeAuthgear, **options: Any) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=fake.issuer,
        audience=fake.endpoint,
        fetch_jwks=lambda force: {"keys": list(fake.published_keys)},
        **options,
    )


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_raw(fake: FakeAuthgear, payload: bytes, header: dict[str, Any] | None = None) -> str:
    """A token whose payload is exactly these bytes (JSON that ``json.dumps`` never writes)."""
    return jwt.api_jws.encode(
        payload,
        fake.signing_key,
        algorithm="RS256",
        headers=header if header is not None else {"kid": fake.kid, "typ": "at+jwt"},
    )


def raw_claims(fake: FakeAuthgear, user: FakeUser, *, exp: str, extra: str = "") -> bytes:
    now = int(time.time())
    return (
        f'{{"iss":"{fake.issuer}","aud":["{fake.endpoint}"],"sub":"{user.sub}",'
        f'"iat":{now},"exp":{exp}{extra}}}'
    ).encode()


def same_bytes_spellings(segment: str) -> list[str]:
    """Every other spelling of the last character that a lenient decoder reads as the same
    bytes: the unused low bits of the final sextet set to anything."""
    unused_bits = {2: 4, 3: 2}.get(len(segment) % 4, 0)
    value = ALPHABET.index(segment[-1])
    spellings = [
        ALPHABET[(value & ~((1 << unused_bits) - 1)) | low] for low in range(1 << unused_bits)
    ]
    return [segment[:-1] + char for char in spellings if char != segment[-1]]


def test_the_signature_has_exactly_one_accepted_spelling(
    fake: FakeAuthgear, user: FakeUser
) -> None:
    token = fake.jwt_access_token(user)
    validator = validator_for(fake)
    validator.validate(token)
    head, _, signature = token.rpartition(".")
    variants = same_bytes_spellings(signature)
    assert len(variants) == 15  # 256 bytes → 342 characters, 4 unused bits at the end
    for variant in variants:
        with pytest.raises(AccessTokenError, match="canonical base64url"):
            validator.validate(f"{head}.{variant}")
    assert list(validator._validated) == [token]  # one cache entry, not sixteen


def token_where(
    fake: FakeAuthgear, user: FakeUser, segment: int, condition: Callable[[str], bool]
) -> str:
    """A valid token whose ``segment`` (0 header, 1 payload, 2 signature) meets ``condition``;
    the filler member changes the segment's length and bytes until it does."""
    for length in range(200):
        filler = ("?~>" * 100)[:length]  # bytes that encode to "-" and "_" at some offsets
        token = fake.jwt_access_token(user, header_x=filler, filler=filler)
        if condition(token.split(".")[segment]):
            return token
    raise AssertionError("no such token")  # pragma: no cover


def lenient_decode(segment: str) -> bytes:
    """How the validator used to read a segment: padding, alphabet and spare bits ignored."""
    return binascii.a2b_base64(segment.replace("-", "+").replace("_", "/") + "==")


def respell(kind: str, segment: str) -> str:
    if kind == "padding":
        return segment + "=" * (-len(segment) % 4)
    if kind == "unused-bits":
        return same_bytes_spellings(segment)[0]
    return segment.replace("-", "+").replace("_", "/")  # the standard alphabet


CONDITIONS: dict[str, Callable[[str], bool]] = {
    "padding": lambda segment: len(segment) % 4 != 0,
    "unused-bits": lambda segment: len(segment) % 4 != 0,
    "standard-alphabet": lambda segment: "-" in segment or "_" in segment,
}


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
@pytest.mark.parametrize("segment", [0, 1, 2], ids=["header", "payload", "signature"])
def test_every_segment_must_be_canonical_base64url(
    fake: FakeAuthgear, user: FakeUser, segment: int, kind: str
) -> None:
    token = token_where(fake, user, segment, CONDITIONS[kind])
    validator_for(fake).validate(token)
    parts = token.split(".")
    respelled = respell(kind, parts[segment])
    assert respelled != parts[segment]
    assert lenient_decode(respelled) == lenient_decode(parts[segment])  # the same bytes
    parts[segment] = respelled
    with pytest.raises(AccessTokenError) as refused:
        validator_for(fake).validate(".".join(parts))
    assert refused.value.status == 401
    assert refused.value.description == "the token is not canonical base64url"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_rfc9068_types_are_accepted_case_insensitively(
    fake: FakeAuthgear, user: FakeUser, typ: str
) -> None:
    token = fake.jwt_access_token(user, header_typ=typ)
    assert validator_for(fake).validate(token).sub == user.sub


@pytest.mark.parametrize(
    "typ", [None, "JWT", "jwt", "at+jwt ", "application/jwt", ["at+jwt"], 1], ids=repr
)
def test_a_missing_or_other_typ_is_refused(fake: FakeAuthgear, user: FakeUser, typ: Any) -> None:
    token = fake.jwt_access_token(user, header_typ=typ)  # None: PyJWT leaves typ out
    if typ is None:
        assert "typ" not in jwt.get_unverified_header(token)
    with pytest.raises(AccessTokenError, match=r"\(typ\)"):
        validator_for(fake).validate(token)


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "exp"], ids=repr)
def test_any_crit_header_is_refused(fake: FakeAuthgear, user: FakeUser, crit: Any) -> None:
    token = fake.jwt_access_token(user, header_crit=crit, header_exp=1)
    with pytest.raises(AccessTokenError, match=r"\(crit\)"):
        validator_for(fake).validate(token)


@pytest.mark.parametrize(
    ("exp", "extra"),
    [
        ("NaN", ""),
        ("Infinity", ""),
        ("-Infinity", ""),
        ("1e400", ""),
        ("{now}", ',"nbf":NaN'),
        ("{now}", ',"iat":-Infinity'),
        ("{now}", ',"https://authgear.com/claims/x":1e999'),
    ],
)
def test_non_finite_numbers_are_refused(
    fake: FakeAuthgear, user: FakeUser, exp: str, extra: str
) -> None:
    exp = exp.format(now=int(time.time()) + 600)
    token = sign_raw(fake, raw_claims(fake, user, exp=exp, extra=extra))
    with pytest.raises(AccessTokenError, match="payload is malformed"):
        validator_for(fake).validate(token)


def test_an_absurd_expiry_is_refused_not_a_crash(fake: FakeAuthgear, user: FakeUser) -> None:
    """``float(10**400)`` overflows: the cached-token path used to raise OverflowError."""
    token = fake.jwt_access_token(user, exp=10**400)
    validator = validator_for(fake)
    for _ in range(2):
        with pytest.raises(AccessTokenError, match="expiry"):
            validator.validate(token)


def test_duplicate_member_names_are_refused(fake: FakeAuthgear, user: FakeUser) -> None:
    exp = str(int(time.time()) + 600)
    token = sign_raw(fake, raw_claims(fake, user, exp=exp, extra=',"sub":"someone-else"'))
    with pytest.raises(AccessTokenError, match="payload is malformed"):
        validator_for(fake).validate(token)
    header = b64url(f'{{"alg":"RS256","kid":"{fake.kid}","typ":"JWT","typ":"at+jwt"}}'.encode())
    with pytest.raises(AccessTokenError, match="header is malformed"):
        validator_for(fake).validate(f"{header}.e30.AAAA")


def test_payload_must_be_utf8_json(fake: FakeAuthgear, user: FakeUser) -> None:
    exp = str(int(time.time()) + 600)
    utf16 = raw_claims(fake, user, exp=exp).decode().encode("utf-16")  # json.loads(bytes) took it
    with pytest.raises(AccessTokenError, match="payload is malformed"):
        validator_for(fake).validate(sign_raw(fake, utf16))


@pytest.mark.parametrize("nesting", ["[" * 12_000, '{"a":' * 2_400, "[" * 1_100 + "]" * 1_100])
def test_a_deeply_nested_header_is_a_401_error(fake: FakeAuthgear, nesting: str) -> None:
    token = f"{b64url(nesting.encode())}.e30.{b64url(b'x' * 256)}"
    with pytest.raises(AccessTokenError) as refused:
        validator_for(fake).validate(token)
    assert refused.value.status == 401
    assert refused.value.description == "the token header is malformed"


def test_client_allow_list(fake: FakeAuthgear, user: FakeUser) -> None:
    ours = fake.jwt_access_token(user)
    other = fake.jwt_access_token(user, client_id="0000111122223333")
    no_client = fake.jwt_access_token(user, client_id=None)
    odd_client = fake.jwt_access_token(user, client_id=[fake.client_id])
    anyone = validator_for(fake)
    for token in (ours, other, no_client, odd_client):
        assert anyone.validate(token).sub == user.sub  # default: any client of the project
    allowed = validator_for(fake, client_ids=[fake.client_id, "4444555566667777"])
    assert allowed.validate(ours).claims["client_id"] == fake.client_id
    for token in (other, no_client, odd_client):
        with pytest.raises(AccessTokenError, match=r"\(client_id\)"):
            allowed.validate(token)


# --- ID tokens: PyJWT decodes them, after the same one-spelling check -------------------------


def id_token(fake: FakeAuthgear, user: FakeUser, filler: str = "") -> str:
    now = int(time.time())
    claims = {
        "iss": fake.issuer,
        "aud": [fake.client_id],
        "sub": user.sub,
        "iat": now,
        "exp": now + 300,
        "nonce": "n-0S6_WzA2Mj",
        "filler": filler,
    }
    return fake.sign(claims, header={"kid": fake.kid, "typ": "JWT"})


def verify(fake: FakeAuthgear, token: str) -> dict[str, Any]:
    keys = {jwk["kid"]: jwk for jwk in fake.published_keys}
    return verify_id_token(
        token,
        signing_key=lambda kid: keys.get(kid or ""),
        issuer=fake.issuer,
        client_id=fake.client_id,
        leeway=60,
        nonce="n-0S6_WzA2Mj",
    )


def test_id_tokens_have_exactly_one_accepted_spelling(fake: FakeAuthgear, user: FakeUser) -> None:
    token = id_token(fake, user)
    assert verify(fake, token)["sub"] == user.sub
    head, _, signature = token.rpartition(".")
    padded = f"{head}.{signature}{'=' * (-len(signature) % 4)}"  # PyJWT 2.15 accepts this
    variants = [padded] + [f"{head}.{variant}" for variant in same_bytes_spellings(signature)]
    for variant in variants:
        with pytest.raises(TokenValidationError, match="canonical base64url"):
            verify(fake, variant)


def test_id_token_payload_padding_is_refused_before_pyjwt(
    fake: FakeAuthgear, user: FakeUser
) -> None:
    tokens = [id_token(fake, user, filler="f" * length) for length in range(3)]
    token = next(token for token in tokens if len(token.split(".")[1]) % 4)
    header, payload, signature = token.split(".")
    assert verify(fake, token)["sub"] == user.sub
    with pytest.raises(TokenValidationError, match="canonical base64url"):
        verify(fake, f"{header}.{payload}{'=' * (-len(payload) % 4)}.{signature}")


def test_valid_tokens_still_pass(fake: FakeAuthgear, user: FakeUser) -> None:
    token = fake.jwt_access_token(user, scope="openid orders:read")
    result = validator_for(fake).validate(token, required_scopes=["orders:read"])
    assert result.sub == user.sub
    assert result.scopes == {"openid", "orders:read"}

"""Benchmark: local validation of Authgear JWT access tokens against the raw RSA verify rate.

Run from the repository root: ``.venv/bin/python benchmarks/bench_jwt.py``

All rates are measured in this one run, on the same machine, against the same baseline: the
raw RSA-2048 PKCS#1 v1.5 / SHA-256 verify rate of ``cryptography`` on the token's signing
input. Goals: a first validation (every check, a token never seen before) at >= 0.45x that rate;
the same token again (per-process cache until ``exp``) at >= 10x; no network call once the keys
are known. PyJWT's ``jwt.decode`` with the same checks is measured too, for the record.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from jwt.algorithms import RSAAlgorithm  # noqa: E402

from authgear_django.access_tokens import AccessTokenValidator  # noqa: E402

ISSUER = "https://myapp.authgear.cloud"


def rate(function: Callable[[], Any], *, seconds: float = 1.0) -> float:
    """Calls per second, best of three runs of about ``seconds`` each."""
    best = 0.0
    for _ in range(3):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(50):
                function()
            count += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def authgear_like_token(key: rsa.RSAPrivateKey, kid: str, now: int) -> str:
    """An access token shaped like Authgear's (confidential client, email scope)."""
    claims = {
        "amr": ["pwd", "x_primary_password"],
        "aud": [ISSUER],
        "auth_time": now - 10,
        "client_id": "a1b2c3d4e5f60718",
        "email": "jane@example.com",
        "email_verified": True,
        "exp": now + 1800,
        "https://authgear.com/claims/user/can_reauthenticate": True,
        "https://authgear.com/claims/user/is_anonymous": False,
        "https://authgear.com/claims/user/is_verified": True,
        "https://authgear.com/claims/user/roles": ["editor"],
        "iat": now,
        "iss": ISSUER,
        "jti": secrets.token_hex(32),
        "scope": "openid offline_access email",
        "sub": "e3079029-f123-4c56-80c1-c2cd63a5b6af",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tokens", type=int, default=3000, help="distinct tokens for first-seen runs"
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each timed run")
    args = parser.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = "8a0e3f1c-5b7d-4e2a-9c6f-1d3b5a7e9f20"
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    jwks = {"keys": [jwk]}
    network_calls = 0

    def fetch_jwks(force: bool) -> dict[str, Any]:
        nonlocal network_calls
        network_calls += 1
        return jwks

    now = int(time.time())
    tokens = [authgear_like_token(key, kid, now) for _ in range(args.tokens)]
    sample = tokens[0]
    header_b64, payload_b64, signature_b64 = sample.split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    signature = jwt.utils.base64url_decode(signature_b64)
    public_key = key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    raw = rate(
        lambda: public_key.verify(signature, signing_input, pkcs1, sha256), seconds=args.seconds
    )

    validator = AccessTokenValidator(
        issuer=ISSUER, audience=ISSUER, fetch_jwks=fetch_jwks, cache_size=len(tokens) * 2
    )
    validator.validate(sample)  # loads the keys: the one network call of the run
    calls_after_warmup = network_calls

    def first_seen_rate() -> float:
        best = 0.0
        for _ in range(3):
            validator._validated.clear()
            start = time.perf_counter()
            for token in tokens:
                validator.validate(token)
            best = max(best, len(tokens) / (time.perf_counter() - start))
        return best

    first = first_seen_rate()
    cached = rate(lambda: validator.validate(sample), seconds=args.seconds)
    pyjwt_key = jwt.PyJWK(jwk, algorithm="RS256").key
    pyjwt = rate(
        lambda: jwt.decode(
            sample,
            pyjwt_key,
            algorithms=["RS256"],
            audience=ISSUER,
            issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", "sub"]},
        ),
        seconds=args.seconds,
    )

    def line(name: str, value: float, goal: str = "") -> None:
        print(f"  {name:<44} {value:10.0f}/s  {value / raw:6.2f}x raw {goal}")

    print(f"PyJWT {jwt.__version__}; {len(tokens)} distinct Authgear-shaped tokens, RSA-2048")
    line("raw RSA verify (cryptography, baseline)", raw)
    line(
        "first validation (all checks, new token)",
        first,
        "(goal >= 0.45x: " + ("ok" if first / raw >= 0.45 else "BELOW GOAL") + ")",
    )
    line(
        "same token again (per-process cache)",
        cached,
        "(goal >= 10x: " + ("ok" if cached / raw >= 10 else "BELOW GOAL") + ")",
    )
    line("PyJWT jwt.decode, same checks (not used)", pyjwt)
    print(
        f"  JWKS fetches after the first validation: {network_calls - calls_after_warmup} (goal 0)"
    )


if __name__ == "__main__":
    main()

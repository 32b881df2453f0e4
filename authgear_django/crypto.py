"""Encryption of stored tokens at rest (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`).

Keys are arbitrary secrets (a Fernet key or any string); each is stretched with HKDF under a
purpose label, so the same ``SECRET_KEY`` never doubles as a raw encryption key. The first key
encrypts; every key decrypts, so a new key can be put in front and old rows re-encrypted later.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"authgear_django.token-store.v1"


class TokenDecryptionError(Exception):
    """A stored token cannot be decrypted with any configured key (key removed or data damaged)."""


def _fernet_key(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=PURPOSE, info=b"fernet").derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived)


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ValueError("no token encryption key configured (SECRET_KEY is empty)")
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


class TokenCipher:
    """Encrypt and decrypt token strings with the configured key list."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = _cipher(tuple(keys))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise TokenDecryptionError(
                "stored token cannot be decrypted with the configured keys"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first (newest) key."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise TokenDecryptionError(
                "stored token cannot be decrypted with the configured keys"
            ) from None

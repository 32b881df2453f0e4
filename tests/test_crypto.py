"""Direct unit tests of ``authgear_django.crypto``: plain functions, no Django, no database.

The token store trusts this module for two properties: a stolen database row reveals nothing
without the keys, and a key rotation never strands a row that any configured key can open.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet, InvalidToken

from authgear_django.crypto import PURPOSE, TokenCipher, TokenDecryptionError, _fernet_key

TOKEN = "eyJhbGciOiJSUzI1NiJ9.refresh-token-secret-part.sig-0123456789"


def test_round_trip_returns_the_plaintext_and_stores_none_of_it() -> None:
    cipher = TokenCipher(["key-one"])
    ciphertext = cipher.encrypt(TOKEN)
    assert cipher.decrypt(ciphertext) == TOKEN
    # Neither the token nor any sizeable piece of it, nor its base64, is in the stored text.
    assert "refresh-token-secret" not in ciphertext
    assert base64.urlsafe_b64encode(TOKEN.encode()).decode()[:16] not in ciphertext
    assert ciphertext.isascii()


def test_each_encryption_is_randomised() -> None:
    """Fernet uses a fresh IV per message: equal tokens must not give equal rows."""
    cipher = TokenCipher(["key-one"])
    assert cipher.encrypt(TOKEN) != cipher.encrypt(TOKEN)


def test_non_ascii_tokens_survive_the_round_trip() -> None:
    cipher = TokenCipher(["key-one"])
    assert cipher.decrypt(cipher.encrypt("jeton-é-ü-✓")) == "jeton-é-ü-✓"


def test_the_key_is_derived_with_hkdf_under_the_purpose_label_not_used_raw() -> None:
    """A Fernet key given as a secret is stretched, never used as is: the same SECRET_KEY
    must not double as a raw encryption key elsewhere."""
    raw_fernet_key = Fernet.generate_key().decode()
    derived = _fernet_key(raw_fernet_key)
    assert derived != raw_fernet_key.encode()
    assert len(base64.urlsafe_b64decode(derived)) == 32
    assert _fernet_key(raw_fernet_key) == derived  # deterministic: rows stay readable
    assert _fernet_key(raw_fernet_key + "x") != derived
    assert PURPOSE == b"authgear_django.token-store.v1"
    # A row encrypted with the raw key is not readable through TokenCipher, and vice versa.
    with pytest.raises(TokenDecryptionError):
        TokenCipher([raw_fernet_key]).decrypt(Fernet(raw_fernet_key).encrypt(b"x").decode())
    with pytest.raises(InvalidToken):
        Fernet(raw_fernet_key).decrypt(TokenCipher([raw_fernet_key]).encrypt("x").encode())


def test_any_string_is_a_usable_key() -> None:
    for key in ["short", "a" * 500, "ключ-🔑", " "]:
        cipher = TokenCipher([key])
        assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN


def test_no_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(ValueError, match="no token encryption key configured"):
        TokenCipher([])


def test_a_wrong_key_raises_a_clear_error_without_the_ciphertext_or_plaintext() -> None:
    ciphertext = TokenCipher(["old-key"]).encrypt(TOKEN)
    with pytest.raises(TokenDecryptionError) as caught:
        TokenCipher(["other-key"]).decrypt(ciphertext)
    message = str(caught.value)
    assert message == "stored token cannot be decrypted with the configured keys"
    assert ciphertext not in message and TOKEN not in message
    # ``from None``: the traceback carries no cryptography internals with the data.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_rotation_new_key_first_reads_old_rows_and_writes_with_the_new_key() -> None:
    old_row = TokenCipher(["old-key"]).encrypt(TOKEN)
    rotated_cipher = TokenCipher(["new-key", "old-key"])
    assert rotated_cipher.decrypt(old_row) == TOKEN  # old rows still readable

    new_row = rotated_cipher.encrypt(TOKEN)
    assert TokenCipher(["new-key"]).decrypt(new_row) == TOKEN  # written with the first key
    with pytest.raises(TokenDecryptionError):
        TokenCipher(["old-key"]).decrypt(new_row)


def test_rotate_re_encrypts_an_old_row_under_the_newest_key() -> None:
    old_row = TokenCipher(["old-key"]).encrypt(TOKEN)
    rotated = TokenCipher(["new-key", "old-key"]).rotate(old_row)
    assert rotated != old_row
    # Once rotated, the old key can be dropped from the list.
    assert TokenCipher(["new-key"]).decrypt(rotated) == TOKEN
    with pytest.raises(TokenDecryptionError):
        TokenCipher(["old-key"]).decrypt(rotated)


def test_rotate_of_a_row_no_key_opens_raises_the_same_clear_error() -> None:
    lost = TokenCipher(["removed-key"]).encrypt(TOKEN)
    with pytest.raises(TokenDecryptionError, match="cannot be decrypted") as caught:
        TokenCipher(["new-key", "old-key"]).rotate(lost)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("method", ["decrypt", "rotate"])
def test_tampered_ciphertext_is_refused_not_decrypted(method: str) -> None:
    """Fernet's HMAC covers every byte: one flipped bit anywhere is refused."""
    cipher = TokenCipher(["key-one"])
    raw = bytearray(base64.urlsafe_b64decode(cipher.encrypt(TOKEN)))
    for position in (0, 9, 30, len(raw) - 1):  # version, IV, body, HMAC
        damaged = bytearray(raw)
        damaged[position] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(damaged)).decode()
        with pytest.raises(TokenDecryptionError):
            getattr(cipher, method)(text)


@pytest.mark.parametrize("method", ["decrypt", "rotate"])
@pytest.mark.parametrize(
    "garbage",
    ["", "not-a-token", "gAAAA", "é-non-ascii", "=" * 8, "\x00"],
    ids=["empty", "text", "truncated", "non-ascii", "padding", "nul"],
)
def test_garbage_in_the_column_is_the_same_clear_error(method: str, garbage: str) -> None:
    """Damaged data (a hand-edited row, a truncated column) never escapes as another exception."""
    with pytest.raises(TokenDecryptionError):
        getattr(TokenCipher(["key-one"]), method)(garbage)

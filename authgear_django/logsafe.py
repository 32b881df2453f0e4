"""Making untrusted text safe to put in a log line. Django-free.

Values that come from a request or from the provider (``error``, ``error_description``, an
error body) can carry a newline that writes a fake log line, a carriage return that hides the
real one from a terminal, or a bidi override that reorders what an operator reads. Log them
through :func:`printable`: every such character is shown as a visible escape instead.
"""

from __future__ import annotations

import unicodedata

DEFAULT_LIMIT = 200
TRUNCATION_MARK = "...[truncated]"

# Categories shown escaped: control (C0, DEL, C1), format (bidi overrides, zero-width, BOM),
# line and paragraph separators (U+2028, U+2029) and lone surrogates (they break encoders).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as one visible line of at most ``limit`` characters (plus a truncation mark).

    Control and invisible characters become escapes like ``\\n`` or ``\\u2028``; a backslash
    becomes ``\\\\`` so that an escape we wrote cannot be confused with one the sender typed.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    text = value if isinstance(value, str) else str(value)
    pieces: list[str] = []
    length = 0
    for char in text:
        piece = _escape(char)
        if length + len(piece) > limit:
            pieces.append(TRUNCATION_MARK)
            break
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)

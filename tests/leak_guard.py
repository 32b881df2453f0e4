"""The no-leaked-secrets check that runs around every test of the suite.

Every secret the fake Authgear hands out or receives (client secret, codes, code verifiers,
access, refresh and ID tokens) is registered here; after each test, no log record (message,
arguments, exception text) and no page the test client received may contain one of them.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from typing import Any

SECRETS: set[str] = set()
MIN_LENGTH = 12  # shorter values (e.g. "x") would match by accident


def register(*values: Any) -> None:
    for value in values:
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            SECRETS.add(value)


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [str(record.msg), repr(record.args)]
        # a broken format string is its own bug; the pieces above are still scanned
        with contextlib.suppress(Exception):
            parts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        self.texts.append("\n".join(parts))


def leaks(texts: list[str]) -> list[str]:
    """The registered secrets found in ``texts`` (shortened for the failure message)."""
    found = []
    for secret in SECRETS:
        if any(secret in text for text in texts):
            found.append(secret[:12] + "…")
    return found

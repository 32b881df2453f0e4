"""Helpers shared by the ``authgear_*`` management commands (the commands are in ``commands/``)."""

from __future__ import annotations

import argparse
from datetime import datetime

from django.db.models import F, Func
from django.db.models.functions import Coalesce

# After this many revocations in a row fail, a command stops calling Authgear for the rest of
# its run: with Authgear down, every call would wait for AUTHGEAR_HTTP_TIMEOUT, and a run over
# thousands of logins would take hours to achieve nothing.
MAX_CONSECUTIVE_REVOKE_FAILURES = 5


def positive_int(value: str) -> int:
    """``argparse`` type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def non_negative_int(value: str) -> int:
    """``argparse`` type: an integer of at least 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must not be negative")
    return number


def last_active() -> Func:
    """When a login was last used: its last refresh, or its creation when never refreshed."""
    return Coalesce(F("last_refreshed_at"), F("created_at"))


def last_active_at(last_refreshed_at: datetime | None, created_at: datetime) -> datetime:
    """:func:`last_active` for a row already in memory."""
    return last_refreshed_at or created_at


def one_line(text: object) -> str:
    """Collapse whitespace, so that a reason always fits on one line of a cron mail or CI log."""
    return " ".join(str(text).split())

"""The session entry codec and the one refresh-due rule (Django-free)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authgear_django.session_entry import SessionEntry, decode, encode, refresh_due

LOGIN_HEX = uuid.uuid4().hex


def test_session_entry_round_trips_and_stays_three_items_in_the_usual_case() -> None:
    usual = SessionEntry(LOGIN_HEX, refresh_at=1_900_001_740, expires_at=1_900_001_800)
    assert encode(usual) == [LOGIN_HEX, 1_900_001_740, 1_900_001_800]
    assert decode(encode(usual)) == usual
    waiting = SessionEntry(
        LOGIN_HEX, refresh_at=10, expires_at=20, retry_at=None, verify_at=30.5, deadline=40
    )
    assert encode(waiting) == [LOGIN_HEX, 10, 20, None, 30.5, 40]
    assert decode(encode(waiting)) == waiting
    assert decode(json.loads(json.dumps(encode(waiting)))) == waiting  # the JSON serializer
    assert decode(encode(usual.with_retry_at(15.0))) == usual.with_retry_at(15.0)


def test_the_check_time_is_a_seventh_item_and_survives_a_retry() -> None:
    checked = SessionEntry(
        LOGIN_HEX, refresh_at=1_900_000_300, expires_at=1_900_001_800, check_at=1_900_000_300
    )
    assert encode(checked) == [
        LOGIN_HEX,
        1_900_000_300,
        1_900_001_800,
        None,
        None,
        None,
        1_900_000_300,
    ]
    assert decode(json.loads(json.dumps(encode(checked)))) == checked
    assert decode(encode(checked.with_retry_at(5.0))).check_at == 1_900_000_300
    # the hot path still reads one number: the check time lives in ``refresh at`` too
    assert refresh_due(encode(checked), 1_900_000_300) is True
    assert refresh_due(encode(checked), 1_900_000_299.9) is False


@pytest.mark.parametrize(
    ("raw", "check_at"),
    [
        ([LOGIN_HEX, 100, 200], None),  # written before the check existed
        ([LOGIN_HEX, 100, 200, None, 30, 40], None),  # the six-item format, read unchanged
        ([LOGIN_HEX, 100, 200, None, None, None, 300], 300.0),
        ([LOGIN_HEX, 100, 200, None, None, None, "300"], None),  # malformed: absent
        ([LOGIN_HEX, 100, 200, None, None, None, float("nan")], None),
    ],
)
def test_the_check_time_reads_old_and_odd_entries(raw: Any, check_at: float | None) -> None:
    entry = decode(raw)
    assert entry is not None and entry.check_at == check_at
    assert entry.refresh_at == 100.0 and entry.expires_at == 200.0


def test_a_check_is_due_at_its_time_and_when_the_entry_has_none() -> None:
    assert SessionEntry(LOGIN_HEX, check_at=300).check_due(299.9) is False
    assert SessionEntry(LOGIN_HEX, check_at=300).check_due(300) is True
    # an entry from before the check: the refresh path asks the row (``last_checked_at``)
    assert SessionEntry(LOGIN_HEX).check_due(0) is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # written before the optional items existed: read unchanged
        ([LOGIN_HEX, 100, 200], SessionEntry(LOGIN_HEX, 100.0, 200.0)),
        ([LOGIN_HEX, None, None], SessionEntry(LOGIN_HEX)),  # no refresh token: never due
        # the dashed form of the id (a hand-made session), and a tuple (pickling serializer)
        ([str(uuid.UUID(LOGIN_HEX)), 100, 200], SessionEntry(LOGIN_HEX, 100.0, 200.0)),
        ((LOGIN_HEX, 100, 200), SessionEntry(LOGIN_HEX, 100.0, 200.0)),
        ([LOGIN_HEX], SessionEntry(LOGIN_HEX)),
        # a malformed time reads as absent, the entry stays
        ([LOGIN_HEX, "100", True, float("nan"), float("inf"), {}], SessionEntry(LOGIN_HEX)),
    ],
)
def test_session_entry_reads_legacy_and_odd_entries(raw: Any, expected: SessionEntry) -> None:
    assert decode(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        LOGIN_HEX,  # a bare id, not a list
        [],
        [None, 1, 2],
        ["not-a-uuid", 1, 2],
        [12345, 1, 2],
        ["x" * 10_000, 1, 2],
        [LOGIN_HEX, 1, 2, 3, 4, 5, 6, 7, 8],  # longer than any format
        {"login": LOGIN_HEX},
    ],
)
def test_a_malformed_session_entry_is_no_login(raw: Any) -> None:
    """(The hot path's :func:`refresh_due` reads only the time: a malformed entry that looks
    due is sent to the refresh path, which finds no login and logs the session out.)"""
    assert decode(raw) is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
        lambda children: st.lists(children, max_size=8) | st.tuples(children, children),
        max_leaves=20,
    ),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_decoding_and_refresh_due_never_raise(raw: Any, now: float) -> None:
    entry = decode(raw)
    assert entry is None or isinstance(entry, SessionEntry)
    due = refresh_due(raw, now)
    assert isinstance(due, bool)
    if entry is not None:
        assert refresh_due(entry, now) is (entry.refresh_at is not None and now >= entry.refresh_at)


def test_refresh_due_is_one_rule_for_the_stored_list_and_the_decoded_entry() -> None:
    stored = [LOGIN_HEX, 1_000, 1_060]
    for now in (999.9, 1_000, 1_000.1):
        assert refresh_due(stored, now) is refresh_due(decode(stored), now) is (now >= 1_000)
    assert refresh_due([LOGIN_HEX, None, None], now=10**12) is False


def test_the_session_entry_module_imports_no_django() -> None:
    from tests.test_core_is_django_free import BLOCK_DJANGO

    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", BLOCK_DJANGO, "authgear_django.session_entry"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr

"""printable(): untrusted text becomes one visible, bounded log line."""

from __future__ import annotations

import logging

import pytest

from authgear_django.logsafe import TRUNCATION_MARK, printable


def test_plain_text_is_unchanged() -> None:
    assert printable("access_denied: user cancelled") == "access_denied: user cancelled"
    assert printable("Zoë 用户 🙂") == "Zoë 用户 🙂"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\tb", "a\\tb"),
        ("a\x00b", "a\\x00b"),
        ("a\x1bb", "a\\x1bb"),  # ESC: terminal colour and cursor tricks
        ("a\x7fb", "a\\x7fb"),
        ("a\x85b", "a\\x85b"),  # C1 NEXT LINE, a line break for some readers
        ("a\x9bb", "a\\x9bb"),  # C1 CSI
        ("a\u2028b", "a\\u2028b"),
        ("a\u2029b", "a\\u2029b"),
        ("a\u202eb", "a\\u202eb"),  # right-to-left override
        ("a\u200bb", "a\\u200bb"),  # zero-width space
        ("a\ud800b", "a\\ud800b"),  # lone surrogate: would crash a UTF-8 log handler
        ("a\U000e0041b", "a\\U000e0041b"),  # invisible tag character
    ],
)
def test_control_and_invisible_characters_are_shown_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_a_typed_backslash_cannot_pass_for_one_of_our_escapes() -> None:
    assert printable("a\\nb") == "a\\\\nb"
    assert printable("a\\nb") != printable("a\nb")


def test_no_line_breaking_character_survives() -> None:
    every_char = "".join(chr(code) for code in range(0x0, 0x3000))
    result = printable(every_char, limit=100_000)
    assert result.splitlines() == [result]
    result.encode("utf-8")  # no lone surrogate left either


def test_long_values_are_truncated_visibly() -> None:
    result = printable("x" * 1000, limit=50)
    assert result == "x" * 50 + TRUNCATION_MARK
    assert printable("x" * 50, limit=50) == "x" * 50


def test_escapes_count_towards_the_limit_and_are_never_cut_in_half() -> None:
    result = printable("\n" * 100, limit=9)
    assert result == "\\n" * 4 + TRUNCATION_MARK


def test_non_strings_are_converted() -> None:
    assert printable(ValueError("bad\nline")) == "bad\\nline"
    assert printable(None) == "None"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        printable("x", limit=0)


def test_a_forged_log_line_stays_inside_the_real_one(caplog: pytest.LogCaptureFixture) -> None:
    forged = "oops\n2026-01-01 INFO authgear_django: user admin logged in"
    with caplog.at_level(logging.INFO, logger="logsafe-test"):
        logging.getLogger("logsafe-test").info("Authgear answered %s", printable(forged))
    assert len(caplog.text.splitlines()) == 1

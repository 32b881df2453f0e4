"""The argparse types of the management commands turn bad numbers into usage errors."""

from __future__ import annotations

import argparse

import pytest

from authgear_django.management import non_negative_int, positive_int


@pytest.mark.parametrize("parse", [positive_int, non_negative_int])
def test_a_value_that_is_not_a_whole_number_is_a_usage_error(parse: object) -> None:
    assert callable(parse)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a whole number"):
        parse("1.5")


def test_positive_int_accepts_one_and_refuses_zero() -> None:
    assert positive_int("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="must be at least 1"):
        positive_int("0")


def test_non_negative_int_accepts_zero_and_refuses_negatives() -> None:
    assert non_negative_int("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="must not be negative"):
        non_negative_int("-1")

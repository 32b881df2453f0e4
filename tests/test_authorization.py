"""login_hint from a link may only pre-fill a login ID; other hint types only from code."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from authgear_django.authorization import (
    LOGIN_HINT_PREFIX,
    clean_login_options,
    login_hint,
    trusted_login_hint,
)
from authgear_django.exceptions import InvalidLoginOption

APP_SESSION_HINT = LOGIN_HINT_PREFIX + "type=app_session_token&app_session_token=attacker-token"
ANONYMOUS_HINT = LOGIN_HINT_PREFIX + "type=anonymous&jwt=eyJhbGciOiJSUzI1NiJ9.e30.c2ln"


def hint_params(hint: str) -> dict[str, list[str]]:
    assert hint.startswith(LOGIN_HINT_PREFIX)
    return parse_qs(urlsplit(hint).query, keep_blank_values=True)


@pytest.mark.parametrize(
    ("value", "key"),
    [("jane@example.com", "email"), ("+85298765432", "phone"), ("jane.doe", "username")],
)
def test_plain_login_ids_become_authgears_url_form(value: str, key: str) -> None:
    assert hint_params(login_hint(value)) == {"type": ["login_id"], key: [value]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            LOGIN_HINT_PREFIX + "type=login_id&email=jane%40example.com",
            {"type": ["login_id"], "email": ["jane@example.com"]},
        ),
        (
            LOGIN_HINT_PREFIX + "email=jane%40example.com&type=login_id&enforce=true",
            {"type": ["login_id"], "email": ["jane@example.com"], "enforce": ["true"]},
        ),
        (
            LOGIN_HINT_PREFIX + "type=login_id&phone=%2B85298765432",
            {"type": ["login_id"], "phone": ["+85298765432"]},
        ),
        (
            LOGIN_HINT_PREFIX + "type=login%5Fid&username=jane",
            {"type": ["login_id"], "username": ["jane"]},
        ),
    ],
)
def test_login_id_url_form_is_accepted_and_rebuilt_canonically(
    value: str, expected: dict[str, list[str]]
) -> None:
    assert hint_params(login_hint(value)) == expected


@pytest.mark.parametrize(
    "value",
    [
        APP_SESSION_HINT,
        ANONYMOUS_HINT,
        LOGIN_HINT_PREFIX + "type=anonymous&promotion_code=abc",
        LOGIN_HINT_PREFIX + "type=bogus&email=jane%40example.com",
        LOGIN_HINT_PREFIX + "email=jane%40example.com",  # no type
        # Duplicated keys: Authgear reads the first value, other parsers the last.
        LOGIN_HINT_PREFIX + "type=app_session_token&type=login_id&email=a%40b.c",
        LOGIN_HINT_PREFIX + "type=login_id&type=app_session_token&app_session_token=x",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&email=b%40b.c",
        # An encoded key is still that key.
        LOGIN_HINT_PREFIX + "t%79pe=app_session_token&app_session_token=x",
        LOGIN_HINT_PREFIX + "type=login_id&t%79pe=app_session_token&email=a%40b.c",
        # Extra keys that mean something to Authgear.
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&app_session_token=x",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&jwt=x",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&Type=app_session_token",
        # Two login IDs, none, or one of the wrong kind.
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&phone=%2B85298765432",
        LOGIN_HINT_PREFIX + "type=login_id",
        LOGIN_HINT_PREFIX + "type=login_id&email=",
        LOGIN_HINT_PREFIX + "type=login_id&email=not-an-email",
        LOGIN_HINT_PREFIX + "type=login_id&phone=jane",
        LOGIN_HINT_PREFIX + "type=login_id&username=a%40b.c",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&enforce=yes",
        # Syntax another parser could read differently.
        LOGIN_HINT_PREFIX + "type=login_id;type=app_session_token&email=a%40b.c",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c#&type=app_session_token",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%4",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%ff%40b.c",
        LOGIN_HINT_PREFIX + "type=login_id&email=a%0A%40b.c",
        LOGIN_HINT_PREFIX,
        "https://authgear.com/login_hint",
        "not a login id",
        "",
        "x" * 600,
    ],
)
def test_hints_from_a_link_other_than_one_login_id_are_refused(value: str) -> None:
    with pytest.raises(InvalidLoginOption):
        login_hint(value)


def test_request_options_refuse_an_app_session_token_hint() -> None:
    with pytest.raises(InvalidLoginOption):
        clean_login_options({"login_hint": APP_SESSION_HINT})


@pytest.mark.parametrize("value", [APP_SESSION_HINT, ANONYMOUS_HINT])
def test_code_may_pass_any_hint_type_authgear_knows(value: str) -> None:
    assert trusted_login_hint(value) == value
    assert clean_login_options({"login_hint": value}, trusted=True) == {"login_hint": value}


def test_code_passing_a_login_id_gets_the_same_checks_as_a_link() -> None:
    assert trusted_login_hint("jane@example.com") == login_hint("jane@example.com")
    with pytest.raises(InvalidLoginOption):
        trusted_login_hint(LOGIN_HINT_PREFIX + "type=login_id&email=a%40b.c&jwt=x")


@pytest.mark.parametrize(
    "value",
    [
        LOGIN_HINT_PREFIX + "type=bogus",
        LOGIN_HINT_PREFIX + "type=app_session_token&type=login_id",
        LOGIN_HINT_PREFIX + "app_session_token=x",
        LOGIN_HINT_PREFIX + "type=app_session_token&app_session_token=" + "x" * 5000,
    ],
)
def test_code_hints_must_still_be_well_formed(value: str) -> None:
    with pytest.raises(InvalidLoginOption):
        trusted_login_hint(value)

"""What the callback failure tests share: nobody logged in, the error page, a tampered ID token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client

from authgear_django.models import AuthgearLogin
from tests.fake_authgear import apply_changes


def assert_nobody_logged_in(client: Client) -> None:
    assert "_auth_user_id" not in client.session
    assert AuthgearLogin.objects.count() == 0
    assert client.get("/private/").status_code == 302


def assert_error_page(response: Any, status: int, text: bytes) -> None:
    assert response.status_code == status
    assert text in response.content, response.content
    assert b"Try again" in response.content
    assert b'href="/auth/login/' in response.content


def tamper(**changes: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def apply(claims: dict[str, Any], header: dict[str, Any]) -> None:
        apply_changes(claims, header, changes)

    return apply

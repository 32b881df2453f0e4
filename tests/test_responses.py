"""responses.py: each error class's page (status, title, translatable sentence), JSON errors,
login links and the next-URL check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils.functional import Promise

from authgear_django import exceptions as e
from authgear_django import responses

PAGES = [
    (e.AuthgearError("x"), 400, "Sign-in failed"),
    (e.ProviderError("x"), 502, "Authgear is not responding correctly"),
    (e.ProviderTimeout("x"), 504, "Authgear took too long to answer"),
    (e.ProviderUnreachable("x"), 503, "Authgear is unreachable"),
    (e.ProviderRateLimited("x"), 503, "Too many sign-in attempts"),
    (e.ProviderMisconfigured("x"), 502, "Sign-in is misconfigured"),
    (e.OAuthError("invalid_grant"), 400, "Sign-in expired"),
    (e.OAuthError("server_error"), 502, "Authgear is not responding correctly"),
    (e.LoginAttemptError("x"), 400, "Sign-in link expired"),
    (e.AuthorizationDenied("access_denied"), 403, "Sign-in cancelled"),
    (e.AuthorizationDenied("login_required"), 401, "Sign-in was not completed"),
    (e.AuthorizationDenied("invalid_scope"), 400, "Sign-in was not completed"),
    (e.TokenValidationError("x"), 400, "Sign-in could not be verified"),
    (e.AccountError("x"), 403, "Account not available"),
    (e.ReauthenticationFailed("x"), 403, "We could not confirm it's you"),
    (e.NotAnAuthgearUser("x"), 403, "Sign-in with Authgear needed"),
    (e.InvalidLoginOption("x"), 400, "Invalid sign-in link"),
    (e.ConfigurationError("x"), 500, "Sign-in is misconfigured"),
    (e.NoAccessToken("x"), 401, "Not signed in with Authgear"),
]


@pytest.mark.parametrize(("error", "status", "title"), PAGES, ids=lambda v: repr(v)[:40])
def test_each_error_has_the_page_it_had(error: e.AuthgearError, status: int, title: str) -> None:
    page = responses.error_page(error)
    assert (page.status, str(page.title)) == (status, title)
    assert isinstance(page.title, Promise) and isinstance(page.message, Promise)  # gettext_lazy


def test_the_sites_own_sentence_wins_and_a_subclass_inherits_its_page() -> None:
    class Banned(e.AccountError):
        pass

    page = responses.error_page(Banned("log only", user_message="You are banned."))
    assert (page.status, str(page.title), page.message) == (
        403,
        "Account not available",
        "You are banned.",
    )


def test_error_response_renders_the_page_with_retry_after_and_a_try_again_link(
    db: Any,
) -> None:
    request = RequestFactory().get("/")
    error = e.ProviderRateLimited("429 from Authgear", retry_after=30)
    response = responses.error_response(request, error, next_url="/orders/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert b"Too many sign-in attempts" in response.content
    assert b"/auth/login/?next=%2Forders%2F" in response.content
    assert b"429 from Authgear" not in response.content  # the log detail stays in the log


def test_json_error_response_carries_the_oauth_code_and_the_sentence() -> None:
    response = responses.json_error_response(e.NoAccessToken("no login"), login_url="/auth/login/")
    assert response.status_code == 401
    assert json.loads(response.content) == {
        "error": "login_required",
        "error_description": "Please sign in again.",
        "login_url": "/auth/login/",
    }


def test_login_links() -> None:
    assert responses.login_url() == "/auth/login/"
    assert responses.login_url("/a/?b=1", x_page="signup", junk="x") == (
        "/auth/login/?next=%2Fa%2F%3Fb%3D1&x_page=signup"
    )
    assert responses.redirect_to_login("/a/")["Location"] == "/auth/login/?next=%2Fa%2F"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("/orders/", True),
        ("http://testserver/x", True),
        ("https://evil.example/", False),
        ("//evil.example/", False),
        ("orders/", False),
        ("/" + "a" * 5000, False),
    ],
)
def test_safe_next_url(url: str, safe: bool) -> None:
    request = RequestFactory().get("/")
    assert responses.safe_next_url(request, url) == (url if safe else None)


def test_wants_json() -> None:
    factory = RequestFactory()
    assert responses.wants_json(factory.get("/", HTTP_ACCEPT="application/json"))
    assert responses.wants_json(factory.get("/", HTTP_X_REQUESTED_WITH="XMLHttpRequest"))
    assert not responses.wants_json(factory.get("/", HTTP_ACCEPT="text/html,application/json"))

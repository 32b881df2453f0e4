"""What a person or an API client receives when something fails, and where login links lead.

The Django glue of the error tree: :func:`error_page` maps each :class:`AuthgearError` class to
an HTTP status, a title and a translatable sentence (the core carries only OAuth codes);
:func:`error_response` renders the HTML page, :func:`json_error_response` the JSON body;
:func:`login_url` and :func:`redirect_to_login` build links to the login view with ``next``.
:func:`safe_next_url` keeps redirects on this site. Views, decorators and middleware import
this module, never :mod:`authgear_django.views`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from authgear_django.authorization import LOGIN_OPTIONS
from authgear_django.conf import conf
from authgear_django.exceptions import (
    AccountError,
    AuthgearError,
    AuthorizationDenied,
    ConfigurationError,
    InvalidLoginOption,
    LoginAttemptError,
    NoAccessToken,
    NotAnAuthgearUser,
    OAuthError,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnreachable,
    ReauthenticationFailed,
    TokenValidationError,
)
from authgear_django.logsafe import printable

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

MAX_PARAMETER_LENGTH = 4096  # longest state, code or next URL taken from a request
MAX_LOGGED_DETAIL = 500  # an error code and its description, cut short in logs
ERROR_TEMPLATE = "authgear_django/error.html"

Text = str | Promise  # a plain sentence from the site's code, or a lazily translated one


@dataclass(frozen=True)
class ErrorPage:
    """What a person is shown for an error: HTTP status, page title and one sentence."""

    status: int
    title: Text
    message: Text


PLEASE_RETRY_SOON = _("Please try again in a moment.")
# What a person whose login ended at Authgear is told (the refresh middleware says it).
SESSION_ENDED = _("Your session has ended. Please sign in again.")
MISCONFIGURED = _("Sign-in is misconfigured")

# The page of each error class; a subclass without its own entry gets its nearest ancestor's.
ERROR_PAGES: dict[type[AuthgearError], ErrorPage] = {
    AuthgearError: ErrorPage(
        400, _("Sign-in failed"), _("We could not sign you in. Please try again.")
    ),
    ProviderError: ErrorPage(
        502,
        _("Authgear is not responding correctly"),
        _("The sign-in service returned an unexpected answer. Please try again in a moment."),
    ),
    ProviderTimeout: ErrorPage(
        504,
        _("Authgear took too long to answer"),
        _("The sign-in service did not answer in time. Please try again in a moment."),
    ),
    ProviderUnreachable: ErrorPage(
        503,
        _("Authgear is unreachable"),
        _("The sign-in service cannot be reached right now. Please try again in a moment."),
    ),
    ProviderRateLimited: ErrorPage(
        503,
        _("Too many sign-in attempts"),
        _("The sign-in service is busy. Please wait a minute and try again."),
    ),
    ProviderMisconfigured: ErrorPage(
        502,
        MISCONFIGURED,
        _(
            "The sign-in service is not configured correctly for this site. "
            "Please contact the site's administrators."
        ),
    ),
    LoginAttemptError: ErrorPage(
        400,
        _("Sign-in link expired"),
        _("This sign-in link has expired or was already used. Please start signing in again."),
    ),
    AuthorizationDenied: ErrorPage(
        400,
        _("Sign-in was not completed"),
        _("The sign-in service refused this sign-in request. Please try again."),
    ),
    TokenValidationError: ErrorPage(
        400,
        _("Sign-in could not be verified"),
        _("We could not verify your sign-in. Please try again."),
    ),
    AccountError: ErrorPage(
        403, _("Account not available"), _("We could not sign you in. Please try again.")
    ),
    ReauthenticationFailed: ErrorPage(
        403,
        _("We could not confirm it's you"),
        _("This page needs you to sign in again as the same user. Please try again."),
    ),
    NotAnAuthgearUser: ErrorPage(
        403,
        _("Sign-in with Authgear needed"),
        _("This page is only for users who sign in with Authgear."),
    ),
    InvalidLoginOption: ErrorPage(
        400,
        _("Invalid sign-in link"),
        _("This sign-in link has an invalid option. Please use the site's sign-in button."),
    ),
    ConfigurationError: ErrorPage(
        500,
        MISCONFIGURED,
        _("Sign-in is not configured correctly on this site. Please contact its administrators."),
    ),
    NoAccessToken: ErrorPage(401, _("Not signed in with Authgear"), _("Please sign in again.")),
}

# Errors whose page depends on the OAuth code Authgear sent, not only on their class.
CODE_PAGES: dict[tuple[type[AuthgearError], str], ErrorPage] = {
    # The code expired, was used twice, or the refresh token is dead: the user retries.
    (OAuthError, "invalid_grant"): ErrorPage(
        400,
        _("Sign-in expired"),
        _("This sign-in has expired or was already used. Please try again."),
    ),
    (AuthorizationDenied, "access_denied"): ErrorPage(
        403, _("Sign-in cancelled"), _("You cancelled signing in, so you are not signed in.")
    ),
    (AuthorizationDenied, "login_required"): ErrorPage(
        401, _("Sign-in was not completed"), _("You need to sign in at Authgear first.")
    ),
}


def error_page(error: AuthgearError) -> ErrorPage:
    """The status, title and sentence for ``error``: by its OAuth code where that matters,
    else by its class (nearest ancestor with a page); the site's ``user_message`` wins."""
    page = ERROR_PAGES[AuthgearError]
    for cls in type(error).__mro__:
        if (cls, error.error) in CODE_PAGES:
            page = CODE_PAGES[(cls, error.error)]
            break
        if cls in ERROR_PAGES:
            page = ERROR_PAGES[cls]
            break
    if error.user_message is not None:
        page = ErrorPage(page.status, page.title, error.user_message)
    return page


def log_error(error: AuthgearError) -> None:
    """One log line for a failure, at the level its kind deserves, on one visible line."""
    # The detail can carry the provider's or the browser's words (``error_description``, an
    # error body): printable() keeps them on one visible line.
    detail = printable(error, limit=MAX_LOGGED_DETAIL)
    if isinstance(error, ProviderError):
        logger.warning("authgear_django: %s: %s", type(error).__name__, detail)
    elif isinstance(error, AuthorizationDenied):
        logger.info("authgear_django: Authgear answered %s", detail)
    else:
        security_logger.warning("authgear_django: %s: %s", type(error).__name__, detail)


def login_url(next_url: str | None = None, **options: str) -> str:
    """The login URL with ``next`` and Authgear options (``prompt``, ``login_hint``, ``ui_locales``,
    ``x_page``) in its query string, for links and redirects built in code.

    A query-string ``login_hint`` may only name a login ID; for other hint types call
    :func:`authgear_django.login_flow.begin_login` with ``login_hint=`` instead."""
    params = {k: v for k, v in options.items() if k in LOGIN_OPTIONS and v}
    if next_url:
        params = {"next": next_url, **params}
    url = reverse("authgear_django:login")
    return f"{url}?{urlencode(params)}" if params else url


def safe_next_url(request: HttpRequest, url: str | None) -> str | None:
    """``url`` if it stays on this site (or an allowed host), else ``None``."""
    if not url:
        return None
    if len(url) > MAX_PARAMETER_LENGTH:
        security_logger.warning("authgear_django: refused an oversized next URL")
        return None
    allowed_hosts = {request.get_host(), *conf.AUTHGEAR_REDIRECT_ALLOWED_HOSTS}
    # Only an absolute path or an absolute http(s) URL: a relative path would resolve against
    # the callback URL, which is never what the link meant.
    looks_right = url.startswith("/") or url.lower().startswith(("http://", "https://"))
    if looks_right and url_has_allowed_host_and_scheme(
        url, allowed_hosts=allowed_hosts, require_https=request.is_secure()
    ):
        return url
    security_logger.warning("authgear_django: refused unsafe next URL")
    return None


def redirect_to_login(next_url: str | None = None) -> HttpResponseRedirect:
    """A redirect to our login view that comes back to ``next_url`` afterwards."""
    return HttpResponseRedirect(login_url(next_url))


def _with_retry_after(response: HttpResponse, error: AuthgearError) -> HttpResponse:
    if isinstance(error, ProviderRateLimited) and error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


def error_response(
    request: HttpRequest,
    error: AuthgearError,
    *,
    next_url: str | None = None,
    status: int | None = None,
) -> HttpResponse:
    """Log ``error`` and render its page with its status (or ``status``) and a "try again"."""
    log_error(error)
    page = error_page(error)
    status = status or page.status
    context = {
        "title": page.title,
        "message": page.message,
        "try_again_url": login_url(next_url),
        "status": status,
    }
    response = render(request, ERROR_TEMPLATE, context, status=status)
    return _with_retry_after(response, error)


def json_error_response(
    error: AuthgearError, *, status: int | None = None, **extra: Any
) -> JsonResponse:
    """``{"error": <OAuth code>, "error_description": <the person's sentence>, **extra}``."""
    page = error_page(error)
    body = {"error": error.error, "error_description": str(page.message), **extra}
    response = JsonResponse(body, status=status or page.status)
    _with_retry_after(response, error)
    return response


def wants_json(request: HttpRequest) -> bool:
    """API and XHR callers get JSON errors instead of a redirect to an HTML login page."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept

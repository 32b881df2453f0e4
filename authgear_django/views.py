"""Login, callback and logout views (subclasses of mozilla-django-oidc's views): HTTP glue only.

The login flow itself (attempts, code exchange, ID-token verification, reauthentication rules)
is :mod:`authgear_django.login_flow`; error pages and login links are
:mod:`authgear_django.responses`. Every failure ends on an error page: a page a person
understands, a 4xx status (5xx only when Authgear itself is down), a "try again" link, nobody
logged in, and a log line without secrets.
"""

from __future__ import annotations

import json
import logging
import secrets
import warnings
from typing import Any
from urllib.parse import urlsplit

from django.contrib import auth, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
    OIDCLogoutView,
)

from authgear_django import responses
from authgear_django.authorization import LOGIN_OPTIONS, LoginAttempt, clean_login_options
from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.devices import sign_in_address
from authgear_django.exceptions import AuthgearError, ConfigurationError, ReauthenticationFailed
from authgear_django.login_flow import (
    LoginResult,
    authenticate_callback,
    begin_login,
    callback_uri,
    login_failed,
    take_attempt,
)
from authgear_django.logsafe import printable
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.responses import (
    MAX_LOGGED_DETAIL,
    MAX_PARAMETER_LENGTH,
    error_response,
    safe_next_url,
)
from authgear_django.signals import login_linked
from authgear_django.sso_check import finish_sso_check, is_sso_check_callback
from authgear_django.store import (
    create_login,
    current_login,
    end_logins,
    forget_login,
    logins_of_user,
)

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

# Also exported: names that lived here before the login flow, the responses and the error tree
# got modules of their own (internal ones without a warning; ``login_url`` was documented).
__all__ = [
    "MAX_LOGGED_DETAIL",
    "MAX_PARAMETER_LENGTH",
    "AuthgearCallbackView",
    "AuthgearLoginView",
    "AuthgearLogoutReturnView",
    "AuthgearLogoutView",
    "ConfigurationError",
    "ReauthenticationFailed",
    "begin_login",
    "callback_uri",
    "error_response",
    "login_url",
    "safe_next_url",
]


def login_url(next_url: str | None = None, **options: str) -> str:
    """Deprecated alias of :func:`authgear_django.responses.login_url` (documented here before)."""
    warnings.warn(
        "authgear_django.views.login_url is deprecated: use authgear_django.responses.login_url",
        DeprecationWarning,
        stacklevel=2,
    )
    return responses.login_url(next_url, **options)


@method_decorator(never_cache, name="dispatch")
class AuthgearLoginView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """Redirect to Authgear's authorization endpoint with state, nonce and PKCE S256.

    Authgear options come from the query string (``?x_page=signup&ui_locales=fr``) or from code
    (``AuthgearLoginView.as_view(extra_params={"x_page": "signup"})``; code wins). A
    ``login_hint`` from the query string may only pre-fill a login ID: a link must not be able
    to sign the browser into someone else's session (login CSRF).
    """

    http_method_names = ["get"]
    extra_params: dict[str, str] = {}
    redirect_field_name = "next"

    def __init__(self, **kwargs: Any) -> None:
        # Skip mozilla's __init__: it reads settings and would need discovery to construct.
        View.__init__(self, **kwargs)

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        from_code = clean_login_options(self.extra_params, trusted=True)
        from_query = {
            name: request.GET[name]
            for name in LOGIN_OPTIONS
            if name in request.GET and name not in self.extra_params
        }
        return {**clean_login_options(from_query), **from_code}

    def get(self, request: HttpRequest) -> HttpResponse:
        next_url = safe_next_url(request, request.GET.get(self.redirect_field_name))
        try:
            options = self.get_extra_params(request)
        except AuthgearError as error:
            return error_response(request, error, next_url=next_url)
        return begin_login(request, next_url=next_url, options=options)


@method_decorator(never_cache, name="dispatch")
class AuthgearCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Finish the login: check state, exchange the code, verify, log in, go to ``next``."""

    http_method_names = ["get"]

    user: Any  # the project's user model, as authenticate() returned it
    result: LoginResult
    attempt: LoginAttempt
    error: AuthgearError
    attempt_next_url: str | None = None

    #: Where a failed login lands (mozilla-django-oidc's hook). ``None``, the default: our error
    #: page, which says what went wrong with the right status and a "Try again" link.
    failure_url: str | None = None

    def get(self, request: HttpRequest) -> HttpResponse:
        if is_sso_check_callback(request):  # a prompt=none round trip: never a login
            return finish_sso_check(request)
        attempt: LoginAttempt | None = None
        try:
            attempt = take_attempt(request)
            self.user, self.result = authenticate_callback(request, attempt)
            self.attempt = attempt
            return self.login_success()
        except AuthgearError as error:
            login_failed(request, error)
            self.error = error
            self.attempt_next_url = attempt.next_url if attempt else None
            return self.login_failure()

    @property
    def success_url(self) -> str:
        """Where a successful login lands (mozilla's hook): the attempt's safe ``next``, else
        ``AUTHGEAR_LOGIN_REDIRECT_URL``. A subclass may override it."""
        return safe_next_url(self.request, self.attempt.next_url) or resolve_url(
            conf.AUTHGEAR_LOGIN_REDIRECT_URL
        )

    def login_failure(self) -> HttpResponse:
        """mozilla's hook for a failed login: redirect to ``failure_url`` when a subclass sets
        one, otherwise render our error page. ``self.error`` holds the failure."""
        if self.failure_url:
            return HttpResponseRedirect(resolve_url(self.failure_url))
        return error_response(self.request, self.error, next_url=self.attempt_next_url)

    def login_success(self) -> HttpResponse:
        request = self.request
        result = self.result
        replaced = current_login(request)
        with transaction.atomic():
            auth.login(request, self.user)
            login = create_login(request, result.account, result.tokens, result.id_token_claims)
            # Until create_login records it itself (store.py): the address at sign-in.
            login.ip_address = sign_in_address(request.META.get("REMOTE_ADDR"))
            if login.ip_address:
                AuthgearLogin.objects.filter(pk=login.pk).update(ip_address=login.ip_address)
        if replaced is not None:
            # The browser logged in again: the old row's session is gone. Do not revoke at
            # Authgear: that could end the SSO session the new login belongs to.
            end_logins([replaced], reason="replaced", revoke=False, end_sessions=False)
        login_linked.send(
            sender=AuthgearAccount,
            request=request,
            user=self.user,
            account=result.account,
            login=login,
            created=result.created,
            claims=result.claims,
        )
        return HttpResponseRedirect(self.success_url)


SIGNED_OUT_MESSAGE = _("You have been signed out.")
LOGOUT_STATE_COOKIE = "authgear_logout_state"
LOGOUT_STATE_SALT = "authgear_django.views.logout_state"


def logout_landing_url() -> str:
    """Where a finished logout lands: ``LOGOUT_REDIRECT_URL``, never anything from the request."""
    return str(resolve_url(conf.LOGOUT_REDIRECT_URL))


def say_signed_out(request: HttpRequest) -> None:
    """Queue "You have been signed out" if the messages framework is in use; else nothing."""
    messages.success(request, SIGNED_OUT_MESSAGE, fail_silently=True)


@method_decorator([csrf_protect, never_cache], name="dispatch")
class AuthgearLogoutView(OIDCLogoutView):  # type: ignore[misc]
    """GET shows a confirmation form; POST logs out here, revokes the login at Authgear, and
    sends the browser to Authgear's end-session endpoint.

    Authgear sends the browser back to :class:`AuthgearLogoutReturnView` with the ``state`` we
    gave it. The Django session is flushed by the logout, so the state travels in a short-lived
    signed cookie instead, scoped to the return path: no session row is created for an
    anonymous visitor, and it works with every session engine.

    With ``everywhere=True`` (the ``logout/everywhere/`` URL) every login of the user is
    revoked at Authgear and their sessions on this site end too.

    A posted ``next`` (checked with :func:`safe_next_url`) is where the logout lands: at once
    when the logout is local, after Authgear's return otherwise (kept next to the state in the
    signed cookie, honoured only when the state matches).
    """

    http_method_names = ["get", "post", "options"]
    redirect_field_name = "next"
    template_name = "authgear_django/logout_confirm.html"

    @property
    def redirect_url(self) -> str:
        return logout_landing_url()

    everywhere = False

    def get(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return HttpResponseRedirect(self.redirect_url)
        context = {"user": request.user, "everywhere": self.everywhere}
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        is_authgear_user = bool(
            user.is_authenticated and AuthgearAccount.objects.filter(user_id=user.pk).exists()
        )
        login = current_login(request)
        id_token = None
        if login is not None:
            try:
                id_token = login.id_token
            except TokenDecryptionError:
                id_token = None
            end_logins([login], reason="logout", revoke=True, end_sessions=False)
        if self.everywhere and user.is_authenticated:
            end_logins(
                logins_of_user(user.pk),
                reason="logout_everywhere",
                revoke=True,
                end_sessions=True,
            )
        forget_login(request.session)
        auth.logout(request)
        next_url = safe_next_url(request, request.POST.get(self.redirect_field_name))
        if not is_authgear_user:
            say_signed_out(request)
            return HttpResponseRedirect(next_url or self.redirect_url)
        state = secrets.token_urlsafe(32)
        return_uri = conf.AUTHGEAR_POST_LOGOUT_REDIRECT_URI or request.build_absolute_uri(
            reverse("authgear_django:logout_return")
        )
        try:
            end_session = get_client().end_session_url(
                id_token_hint=id_token, post_logout_redirect_uri=return_uri, state=state
            )
        except AuthgearError as error:
            logger.warning(
                "authgear_django: no end-session redirect after logout: %s",
                printable(error, limit=MAX_LOGGED_DETAIL),
            )
            end_session = None
        if not end_session:
            say_signed_out(request)
            return HttpResponseRedirect(next_url or self.redirect_url)
        response = HttpResponseRedirect(end_session)
        response.set_signed_cookie(
            LOGOUT_STATE_COOKIE,
            logout_cookie_value(state, next_url),
            salt=LOGOUT_STATE_SALT,
            max_age=conf.AUTHGEAR_LOGOUT_STATE_MAX_AGE,
            path=urlsplit(return_uri).path or "/",
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",  # Authgear's redirect back is a cross-site top-level GET
        )
        return response


def logout_cookie_value(state: str, next_url: str | None) -> str:
    """What the signed logout cookie holds: the state, and the ``next`` it unlocks."""
    return json.dumps({"state": state, "next": next_url}, separators=(",", ":"))


def read_logout_cookie(value: str | None) -> tuple[str | None, str | None]:
    """``(state, next)`` from the signed cookie's value; a bare state is a cookie set before
    logouts carried ``next``. Anything else reads as no cookie."""
    if not value:
        return None, None
    if not value.startswith("{"):
        return value, None
    try:
        data = json.loads(value)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    state, next_url = data.get("state"), data.get("next")
    if not isinstance(state, str) or not state:
        return None, None
    return state, next_url if isinstance(next_url, str) else None


@method_decorator(never_cache, name="dispatch")
class AuthgearLogoutReturnView(View):
    """Where Authgear returns after ending its session (``post_logout_redirect_uri``).

    The ``state`` must match the signed cookie set by the logout in this browser; then the
    person sees "You have been signed out" and lands on the ``next`` the logout form posted (kept
    in that cookie, checked again with :func:`safe_next_url`), else on ``LOGOUT_REDIRECT_URL``.
    Anything else (no cookie, expired, forged, another state) just lands on
    ``LOGOUT_REDIRECT_URL`` silently. The landing URL never carries the state and never comes
    from this request, so this is no open redirect.
    """

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        expected, next_url = read_logout_cookie(
            request.get_signed_cookie(
                LOGOUT_STATE_COOKIE,
                default=None,
                salt=LOGOUT_STATE_SALT,
                max_age=conf.AUTHGEAR_LOGOUT_STATE_MAX_AGE,
            )
        )
        received = request.GET.get("state", "")
        landing = logout_landing_url()
        if (
            expected
            and received
            and len(received) <= MAX_PARAMETER_LENGTH
            and constant_time_compare(expected, received)
        ):
            say_signed_out(request)
            landing = safe_next_url(request, next_url) or landing
        elif received or expected:
            security_logger.info(
                "authgear_django: logout return without a matching state (cookie %s)",
                "present" if expected else "missing or expired",
            )
        response = HttpResponseRedirect(landing)
        if LOGOUT_STATE_COOKIE in request.COOKIES:
            # Single use: the same return link shows nothing a second time.
            response.delete_cookie(LOGOUT_STATE_COOKIE, path=request.path, samesite="Lax")
        return response

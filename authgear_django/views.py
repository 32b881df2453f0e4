"""Login, callback and logout views (subclasses of mozilla-django-oidc's views).

Every failure ends on :func:`error_response`: a page a person understands, a 4xx status (5xx
only when Authgear itself is down), a "try again" link, nobody logged in, and a log line
without secrets.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import auth, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
    OIDCLogoutView,
)

from authgear_django.authorization import (
    LOGIN_OPTIONS,
    LoginAttempt,
    clean_login_options,
    trusted_login_hint,
)
from authgear_django.backends import LoginResult
from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import (
    AccountError,
    AuthgearError,
    AuthorizationDenied,
    LoginAttemptError,
    ProviderError,
    ProviderRateLimited,
)
from authgear_django.logsafe import printable
from authgear_django.models import AuthgearAccount
from authgear_django.provider import get_client
from authgear_django.signals import login_linked
from authgear_django.store import (
    create_login,
    current_login,
    end_all_logins,
    end_login,
    forget_login,
    pop_attempt,
    remember_attempt,
)

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

MAX_PARAMETER_LENGTH = 4096
MAX_LOGGED_DETAIL = 500  # an error code and its description, cut short in logs


class ReauthenticationFailed(AccountError):
    """The reauthentication did not prove a fresh sign-in by the same user."""

    title = "We could not confirm it's you"
    user_message = "This page needs you to sign in again as the same user. Please try again."


class ConfigurationError(AuthgearError):
    """The site is set up wrongly (our backend missing): the system checks report it too."""

    http_status = 500
    title = "Sign-in is misconfigured"
    user_message = (
        "Sign-in is not configured correctly on this site. Please contact its administrators."
    )


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


def login_url(next_url: str | None = None, **options: str) -> str:
    """The login URL with ``next`` and Authgear options (``prompt``, ``login_hint``, ``ui_locales``,
    ``x_page``) in its query string, for links and redirects built in code.

    A query-string ``login_hint`` may only name a login ID; for other hint types call
    :func:`begin_login` with ``login_hint=`` instead."""
    params = {k: v for k, v in options.items() if k in LOGIN_OPTIONS and v}
    if next_url:
        params = {"next": next_url, **params}
    url = reverse("authgear_django:login")
    return f"{url}?{urlencode(params)}" if params else url


def error_response(
    request: HttpRequest,
    error: AuthgearError,
    *,
    next_url: str | None = None,
    status: int | None = None,
) -> HttpResponse:
    """Render the error page for ``error`` with its status (or ``status``) and a "try again"."""
    # The detail can carry the provider's or the browser's words (``error_description``, an
    # error body): printable() keeps them on one visible line.
    detail = printable(error, limit=MAX_LOGGED_DETAIL)
    if isinstance(error, (LoginAttemptError,)):
        security_logger.warning("authgear_django: %s: %s", type(error).__name__, detail)
    elif isinstance(error, ProviderError):
        logger.warning("authgear_django: %s: %s", type(error).__name__, detail)
    elif isinstance(error, AuthorizationDenied):
        logger.info("authgear_django: Authgear answered %s", detail)
    else:
        security_logger.warning("authgear_django: %s: %s", type(error).__name__, detail)
    status = status or error.http_status
    context = {
        "title": error.title,
        "message": error.user_message,
        "try_again_url": login_url(next_url),
        "status": status,
    }
    response = render(request, "authgear_django/error.html", context, status=status)
    if isinstance(error, ProviderRateLimited) and error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


def callback_uri(request: HttpRequest) -> str:
    return conf.AUTHGEAR_REDIRECT_URI or request.build_absolute_uri(
        reverse("authgear_django:callback")
    )


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


def begin_login(
    request: HttpRequest,
    *,
    next_url: str | None,
    options: dict[str, str],
    max_age: int | None = None,
    id_token_hint: str | None = None,
    expected_sub: str | None = None,
    login_hint: str | None = None,
) -> HttpResponse:
    """Remember a new login attempt in the session and redirect to Authgear's authorize page.

    ``options`` must already be cleaned (:func:`clean_login_options`). ``max_age`` +
    ``id_token_hint`` + ``expected_sub`` make it a reauthentication: the callback then accepts
    only the same user with a fresh ``auth_time``. ``login_hint`` is for the site's code only
    (any Authgear hint type, e.g. ``type=app_session_token``); never pass request input to it.
    """
    try:
        if login_hint is not None:
            options = {**options, "login_hint": trusted_login_hint(login_hint)}
        client = get_client()
        attempt = LoginAttempt.start(
            redirect_uri=callback_uri(request),
            next_url=next_url,
            max_age=max_age,
            expected_sub=expected_sub,
        )
        params = attempt.authorization_params(
            client_id=client.client_id, scope=conf.AUTHGEAR_SCOPES, options=options
        )
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        url = client.authorization_url(params)
    except AuthgearError as error:
        return error_response(request, error, next_url=next_url)
    remember_attempt(request.session, attempt, limit=conf.AUTHGEAR_MAX_LOGIN_ATTEMPTS)
    return HttpResponseRedirect(url)


@method_decorator(never_cache, name="dispatch")
class AuthgearCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Finish the login: check state, exchange the code, verify, log in, go to ``next``."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        attempt: LoginAttempt | None = None
        try:
            attempt = self._take_attempt(request)
            return self._complete(request, attempt)
        except AuthgearError as error:
            return error_response(request, error, next_url=attempt.next_url if attempt else None)

    def _take_attempt(self, request: HttpRequest) -> LoginAttempt:
        state = request.GET.get("state", "")
        attempt = None
        if state and len(state) <= MAX_PARAMETER_LENGTH:
            attempt = pop_attempt(request.session, state)
            if attempt is not None:
                request.session.save()  # burn the state now: a replayed callback finds nothing
        error = request.GET.get("error")
        if error:
            description = request.GET.get("error_description", "")
            raise AuthorizationDenied(error[:100], description[:300])
        if attempt is None:
            raise LoginAttemptError("callback state is missing, unknown or already used")
        if attempt.is_expired(conf.AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT):
            raise LoginAttemptError("login attempt expired")
        return attempt

    def _complete(self, request: HttpRequest, attempt: LoginAttempt) -> HttpResponse:
        code = request.GET.get("code", "")
        if not code or len(code) > MAX_PARAMETER_LENGTH:
            raise LoginAttemptError("callback has no usable code")
        # The exchange is slow; reload the session afterwards-safe so that attempts started in
        # other tabs meanwhile are not overwritten by our stale copy (mozilla-django-oidc does too).
        request.session = request.session.__class__(request.session.session_key)
        user = auth.authenticate(request, authgear_attempt=attempt, authgear_code=code)
        if user is None:
            raise ConfigurationError(
                "authenticate() returned None: is authgear_django.backends.AuthgearBackend "
                "in AUTHENTICATION_BACKENDS?"
            )
        if attempt.max_age is not None or attempt.expected_sub is not None:
            self._check_reauthentication(attempt, getattr(user, "authgear_login_result"))  # noqa: B009
        self.user = user
        self.attempt = attempt
        return self.login_success()

    def _check_reauthentication(self, attempt: LoginAttempt, result: LoginResult) -> None:
        claims = result.id_token_claims
        if attempt.expected_sub is not None and claims.get("sub") != attempt.expected_sub:
            raise ReauthenticationFailed("another Authgear user signed in during reauthentication")
        if attempt.max_age is not None:
            auth_time = claims.get("auth_time")
            if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)):
                raise ReauthenticationFailed("the ID token has no auth_time")
            if time.time() - auth_time > attempt.max_age + conf.AUTHGEAR_CLOCK_LEEWAY:
                raise ReauthenticationFailed("auth_time is older than the requested max_age")

    def login_success(self) -> HttpResponse:
        request = self.request
        result: LoginResult = getattr(self.user, "authgear_login_result")  # noqa: B009 - set by our backend
        replaced = current_login(request)
        with transaction.atomic():
            auth.login(request, self.user)
            login = create_login(request, result.account, result.tokens, result.id_token_claims)
        if replaced is not None:
            # The browser logged in again: the old row's session is gone. Do not revoke at
            # Authgear: that could end the SSO session the new login belongs to.
            end_login(replaced, reason="replaced", revoke=False)
        login_linked.send(
            sender=AuthgearAccount,
            request=request,
            user=self.user,
            account=result.account,
            login=login,
            created=result.created,
            claims=result.claims,
        )
        target = safe_next_url(request, self.attempt.next_url) or resolve_url(
            conf.AUTHGEAR_LOGIN_REDIRECT_URL
        )
        return HttpResponseRedirect(target)


SIGNED_OUT_MESSAGE = "You have been signed out."
LOGOUT_STATE_COOKIE = "authgear_logout_state"
LOGOUT_STATE_SALT = "authgear_django.views.logout_state"
# Authgear may first show its own "log out?" page: leave the person time to confirm there.
LOGOUT_STATE_MAX_AGE = 600


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
    """

    http_method_names = ["get", "post", "options"]
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
            end_login(login, reason="logout", revoke=True)
        if self.everywhere and user.is_authenticated:
            end_all_logins(user.pk, reason="logout_everywhere")
        forget_login(request.session)
        auth.logout(request)
        target = self.redirect_url
        if not is_authgear_user:
            say_signed_out(request)
            return HttpResponseRedirect(target)
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
            return HttpResponseRedirect(target)
        response = HttpResponseRedirect(end_session)
        response.set_signed_cookie(
            LOGOUT_STATE_COOKIE,
            state,
            salt=LOGOUT_STATE_SALT,
            max_age=LOGOUT_STATE_MAX_AGE,
            path=urlsplit(return_uri).path or "/",
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",  # Authgear's redirect back is a cross-site top-level GET
        )
        return response


@method_decorator(never_cache, name="dispatch")
class AuthgearLogoutReturnView(View):
    """Where Authgear returns after ending its session (``post_logout_redirect_uri``).

    The ``state`` must match the signed cookie set by the logout in this browser; then the
    person sees "You have been signed out". Anything else (no cookie, expired, forged, another
    state) just lands on ``LOGOUT_REDIRECT_URL`` silently. The landing URL never carries the
    state and never comes from the request, so this is no open redirect.
    """

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        expected = request.get_signed_cookie(
            LOGOUT_STATE_COOKIE,
            default=None,
            salt=LOGOUT_STATE_SALT,
            max_age=LOGOUT_STATE_MAX_AGE,
        )
        received = request.GET.get("state", "")
        if (
            expected
            and received
            and len(received) <= MAX_PARAMETER_LENGTH
            and constant_time_compare(expected, received)
        ):
            say_signed_out(request)
        elif received or expected:
            security_logger.info(
                "authgear_django: logout return without a matching state (cookie %s)",
                "present" if expected else "missing or expired",
            )
        response = HttpResponseRedirect(logout_landing_url())
        if LOGOUT_STATE_COOKIE in request.COOKIES:
            # Single use: the same return link shows nothing a second time.
            response.delete_cookie(LOGOUT_STATE_COOKIE, path=request.path, samesite="Lax")
        return response

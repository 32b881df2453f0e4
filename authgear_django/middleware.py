"""``TokenRefreshMiddleware``: keep each Authgear login's access token fresh, before it is used.

Place it after ``SessionMiddleware`` and ``AuthenticationMiddleware``. The check is lazy: it is
hooked into Django's lazy ``request.user`` (and ``request.auser``), so it runs when something
first reads the user (the view, a decorator, a later middleware, a template) and a request
that never does costs no session load and no query. On the hot path (token still fresh) it
reads one entry of the session the user lookup loads anyway: no query, no network call.
When a refresh is due it runs :func:`authgear_django.refresh.refresh_session_login`; a dead
login (``invalid_grant``: revoked, expired, user disabled at Authgear) logs the user out and
sends them to the login page (JSON 401 for API clients) instead of letting the view go on; an
unreachable Authgear keeps the user logged in on the current token until it expires (plus
``AUTHGEAR_REFRESH_GRACE``). Without a lazy ``request.user`` it checks eagerly, as before.

The same path confirms, at most once per ``AUTHGEAR_SESSION_CHECK_INTERVAL``, that the login's
Authgear session is still alive (one userinfo call): the session entry's one "come back at"
time covers both, so the hot path is unchanged. A session ended at Authgear is answered like
a dead refresh: logged out, redirected with ``next`` (JSON 401 for API callers).

With lazy refreshes (the default; ``AUTHGEAR_EAGER_REFRESH = False``) the middleware does not
refresh a merely expired access token: the page is served on the session, the liveness check
renews the token before its userinfo call, and ``get_access_token`` renews it on demand. A
view's uncaught :class:`~authgear_django.exceptions.NoAccessToken` is answered here: a login
that has ended logs out and goes to the login page (JSON 401 for API callers); a token that
cannot be had right now gets 503 with ``Retry-After``.

With ``AUTHGEAR_BROWSER_SSO_CHECK`` (off by default), the same hook also sends a signed-in
browser's page load through Authgear with ``prompt=none``, at most once per interval, to
learn whether Authgear's browser session still exists (:mod:`authgear_django.sso_check`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib import auth, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject, empty

from authgear_django.api import TokenEndpointBackingOff
from authgear_django.exceptions import (
    NoAccessToken,
    ProviderError,
    ProviderRateLimited,
    ProviderUnreachable,
)
from authgear_django.refresh import Outcome, refresh_due_in_session, refresh_session_login
from authgear_django.responses import SESSION_ENDED, error_page, error_response, login_url
from authgear_django.session_entry import refresh_due
from authgear_django.sso_check import (
    is_page_navigation,
    sso_check_due,
    sso_check_settings,
    start_sso_check,
)
from authgear_django.store import SESSION_LOGIN_KEY, forget_login

OUR_NAMESPACE = "authgear_django"


def wants_json(request: HttpRequest) -> bool:
    """API and XHR callers get JSON errors instead of a redirect to an HTML login page."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


class RefreshInterrupted(PermissionDenied):
    """Raised where ``request.user`` is first read when the request must not reach the view.

    ``process_exception`` answers it with the middleware's response when the view read the
    user. A middleware after ours that reads it (e.g. ``LoginRequiredMiddleware``) is outside
    ``process_exception``: being a ``PermissionDenied``, Django turns it into a 403 there (a
    warning, never a 500), which ``__call__`` then replaces with the same response.
    """

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("authgear_django: request stopped by the token refresh")
        self.response = response


class _LazyRefresh:
    """One request's deferred refresh check, run when Django first loads the user.

    Installed as the ``_setupfunc`` of the ``SimpleLazyObject`` Django puts in ``request.user``
    (and in front of ``request.auser``), so a view that never reads the user costs no session
    load, and one that does pays only a list lookup in the session the user lookup loads anyway.
    """

    __slots__ = (
        "done",
        "hook",
        "lazy_dict",
        "load_auser",
        "load_user",
        "middleware",
        "request",
        "stop",
    )

    def __init__(self, middleware: TokenRefreshMiddleware, request: HttpRequest) -> None:
        self.middleware = middleware
        self.request = request
        self.done = False
        self.stop: HttpResponse | None = None
        # the lazy object's own __dict__, fetched once: each attribute access on a LazyObject
        # goes through its Python-level __getattribute__, a cost on every request
        self.lazy_dict: dict[str, Any] = {}
        self.hook: Callable[[], Any] = self.user  # one bound method, compared by identity
        self.load_user: Callable[[], Any] | None = None
        self.load_auser: Callable[[], Awaitable[Any]] | None = None

    def user(self) -> Any:
        """``request.user``'s loader: check (once), then Django's own loader."""
        assert self.load_user is not None
        self.disarm()  # one shot: logout and the refresh path may read request.user themselves
        if not self.done:
            self.done = True
            session = getattr(self.request, "session", None)
            if session is not None:
                now = time.time()
                if refresh_due_in_session(session, now):
                    self.stop = self.middleware.refresh(self.request)
                if self.stop is None and self.request.method == "GET":
                    self.stop = self.middleware.browser_sso_check(self.request, now)
                if self.stop is not None:
                    raise RefreshInterrupted(self.stop)
        return self.load_user()

    async def auser(self) -> Any:
        """``request.auser``'s replacement: the same check, awaited."""
        assert self.load_auser is not None
        if not self.done:
            self.done = True
            self.disarm()
            session = getattr(self.request, "session", None)
            if session is not None:
                now = time.time()
                if await _adue(session):
                    self.stop = await sync_to_async(self.middleware.refresh)(self.request)
                if self.stop is None and self.request.method == "GET":
                    self.stop = await _abrowser_sso_check(self.middleware, self.request, now)
                if self.stop is not None:
                    raise RefreshInterrupted(self.stop)
        return await self.load_auser()

    def finish(self) -> None:
        """The response is made: layers outside ours that read the user start no refresh."""
        if not self.done:
            self.done = True
            self.disarm()

    def disarm(self) -> None:
        """Give ``request.user`` back Django's loader (after the check, or after the response)."""
        if self.lazy_dict.get("_setupfunc") is self.hook:
            self.lazy_dict["_setupfunc"] = self.load_user


async def _abrowser_sso_check(
    middleware: TokenRefreshMiddleware, request: HttpRequest, now: float
) -> HttpResponse | None:
    """The SSO check from async code: a thread only when it is switched on."""
    if not sso_check_settings().enabled:
        return None
    return await sync_to_async(middleware.browser_sso_check)(request, now)


async def _adue(session: Any) -> bool:
    if not hasattr(session, "aget"):  # Django 4.2: no async session API
        return await sync_to_async(refresh_due_in_session)(session, time.time())
    return refresh_due(await session.aget(SESSION_LOGIN_KEY), time.time())


class TokenRefreshMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        check = self._defer(request)
        if check is None:  # no lazy user to hook (no AuthenticationMiddleware, or already read)
            session = getattr(request, "session", None)
            if session is not None:
                now = time.time()
                response = self.refresh(request) if refresh_due_in_session(session, now) else None
                if response is None and request.method == "GET":
                    response = self.browser_sso_check(request, now)
                if response is not None:
                    return response
            return self.get_response(request)
        response = self.get_response(request)
        check.finish()
        return check.stop if check.stop is not None else response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        check = self._defer(request)
        if check is None:
            session = getattr(request, "session", None)
            if session is not None:
                now = time.time()
                stop = await sync_to_async(self.refresh)(request) if await _adue(session) else None
                if stop is None and request.method == "GET":
                    stop = await _abrowser_sso_check(self, request, now)
                if stop is not None:
                    return stop
            return await get_response(request)
        response = await get_response(request)
        check.finish()
        return check.stop if check.stop is not None else response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """The view read ``request.user`` and the refresh said stop: answer with its response.

        A view that asked for the access token and got none (uncaught :class:`NoAccessToken`)
        is answered as the refresh would have been: 503 + ``Retry-After`` when the token
        cannot be had right now, the login page when the login is gone. Never a 500.
        """
        if isinstance(exception, RefreshInterrupted):
            return exception.response
        if isinstance(exception, NoAccessToken):
            if exception.retry_after is not None:
                error: ProviderError = (
                    ProviderRateLimited(str(exception), retry_after=exception.retry_after)
                    if isinstance(exception, TokenEndpointBackingOff)
                    else ProviderUnreachable(str(exception))
                )
                return self.unavailable_response(request, error, retry_after=exception.retry_after)
            if SESSION_LOGIN_KEY in request.session:
                return self.logged_out_response(request)
            return self.login_required_response(request)
        return None

    def _defer(self, request: HttpRequest) -> _LazyRefresh | None:
        """Hook the refresh check into Django's lazy ``request.user``; ``None`` if impossible."""
        attributes = request.__dict__
        lazy = attributes.get("user")
        if type(lazy) is not SimpleLazyObject:
            return None
        lazy_dict: dict[str, Any] = object.__getattribute__(lazy, "__dict__")
        if lazy_dict.get("_wrapped") is not empty:
            return None
        check = _LazyRefresh(self, request)
        check.lazy_dict = lazy_dict
        check.load_user = lazy_dict["_setupfunc"]
        lazy_dict["_setupfunc"] = check.hook
        load_auser = attributes.get("auser")
        if load_auser is not None:
            check.load_auser = load_auser
            request.auser = check.auser
        return check

    # --- the refresh path (rare) -------------------------------------------------------------

    def refresh(self, request: HttpRequest) -> HttpResponse | None:
        """Refresh now; return a response only when the request must not reach the view."""
        if self._is_our_view(request):
            return None  # never refresh in front of login, callback or logout
        result = refresh_session_login(request.session)
        if result.usable:
            return None
        if result.outcome is Outcome.ENDED:
            return self.logged_out_response(request)
        return self.unavailable_response(request, result.error, retry_after=result.retry_after)

    def browser_sso_check(self, request: HttpRequest, now: float) -> HttpResponse | None:
        """With ``AUTHGEAR_BROWSER_SSO_CHECK``: a signed-in browser's page load whose SSO check
        is due goes through Authgear with ``prompt=none`` (:mod:`authgear_django.sso_check`);
        ``None`` for every other request. Cheap unless due: cached settings, a session key."""
        if not sso_check_due(request.session, now):
            return None
        if not is_page_navigation(request) or self._is_our_view(request):
            return None  # stays due: the next page load makes the check
        return start_sso_check(request, now)

    def _is_our_view(self, request: HttpRequest) -> bool:
        match = getattr(request, "resolver_match", None)  # set once the URL is resolved
        if match is not None:
            return OUR_NAMESPACE in match.namespaces
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return False
        return OUR_NAMESPACE in match.namespaces

    def logged_out_response(self, request: HttpRequest) -> HttpResponse:
        forget_login(request.session)
        auth.logout(request)
        target = login_url(next_url=request.get_full_path())
        if wants_json(request):
            return JsonResponse(
                {
                    "error": "login_expired",
                    "error_description": str(SESSION_ENDED),
                    "login_url": target,
                },
                status=401,
            )
        with contextlib.suppress(messages.MessageFailure):  # the messages app is optional
            messages.info(request, str(SESSION_ENDED))
        return HttpResponseRedirect(target)

    def login_required_response(self, request: HttpRequest) -> HttpResponse:
        """No Authgear login to take a token from (anonymous, or signed in another way): the
        login page with ``next``, nobody logged out (JSON 401 for API callers)."""
        target = login_url(next_url=request.get_full_path())
        if wants_json(request):
            return JsonResponse(
                {"error": "login_required", "login_url": target},
                status=401,
            )
        return HttpResponseRedirect(target)

    def unavailable_response(
        self,
        request: HttpRequest,
        error: ProviderError | Exception | None,
        *,
        retry_after: int | None = None,
    ) -> HttpResponse:
        """503: the login is fine but Authgear can't refresh it now (nothing was deleted).

        ``retry_after``: when the next attempt is due, if known (else the 429's, else 10 s).
        """
        if isinstance(error, ProviderError):
            provider_error = error
        else:  # retry interval not over yet: the last attempt found Authgear unreachable
            provider_error = ProviderUnreachable("refresh deferred until the retry interval")
        if wants_json(request):
            response: HttpResponse = JsonResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": str(error_page(provider_error).message),
                },
                status=503,
            )
        else:
            response = error_response(
                request, provider_error, next_url=request.get_full_path(), status=503
            )
        if retry_after is None and isinstance(provider_error, ProviderRateLimited):
            retry_after = provider_error.retry_after
        response["Retry-After"] = str(max(1, retry_after or 10))
        return response

"""``TokenRefreshMiddleware``: keep each Authgear login's access token fresh, before the view.

Place it after ``SessionMiddleware`` and ``AuthenticationMiddleware``. On the hot path (token
still fresh) it reads two values from the already-loaded session: no query, no network call.
When a refresh is due it runs :func:`authgear_django.refresh.refresh_session_login`; a dead
login (``invalid_grant``: revoked, expired, user disabled at Authgear) logs the user out and
sends them to the login page (JSON 401 for API clients); an unreachable Authgear keeps the user
logged in on the current token until it expires (plus ``AUTHGEAR_REFRESH_GRACE``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve

from authgear_django.exceptions import ProviderError, ProviderRateLimited, ProviderUnreachable
from authgear_django.refresh import Outcome, refresh_due_in_session, refresh_session_login
from authgear_django.store import SESSION_LOGIN_KEY, forget_login
from authgear_django.views import error_response, login_url

OUR_NAMESPACE = "authgear_django"


def wants_json(request: HttpRequest) -> bool:
    """API and XHR callers get JSON errors instead of a redirect to an HTML login page."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


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
        session = getattr(request, "session", None)
        if session is not None and refresh_due_in_session(session, time.time()):
            response = self.refresh(request)
            if response is not None:
                return response
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and await self._adue(session):
            response = await sync_to_async(self.refresh)(request)
            if response is not None:
                return response
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return await get_response(request)

    async def _adue(self, session: Any) -> bool:
        if not hasattr(session, "aget"):  # Django 4.2: no async session API
            return await sync_to_async(refresh_due_in_session)(session, time.time())
        state = await session.aget(SESSION_LOGIN_KEY)
        if not isinstance(state, list) or len(state) < 2 or state[1] is None:
            return False
        return bool(time.time() >= state[1])

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
        return self.unavailable_response(request, result.error)

    def _is_our_view(self, request: HttpRequest) -> bool:
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
                    "error_description": "Your session has ended. Please sign in again.",
                    "login_url": target,
                },
                status=401,
            )
        with contextlib.suppress(messages.MessageFailure):  # the messages app is optional
            messages.info(request, "Your session has ended. Please sign in again.")
        return HttpResponseRedirect(target)

    def unavailable_response(
        self, request: HttpRequest, error: ProviderError | Exception | None
    ) -> HttpResponse:
        """503: the login is fine but Authgear can't refresh it now (nothing was deleted)."""
        if isinstance(error, ProviderError):
            provider_error = error
        else:  # retry interval not over yet: the last attempt found Authgear unreachable
            provider_error = ProviderUnreachable("refresh deferred until the retry interval")
        if wants_json(request):
            response: HttpResponse = JsonResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": provider_error.user_message,
                },
                status=503,
            )
        else:
            response = error_response(
                request, provider_error, next_url=request.get_full_path(), status=503
            )
        retry_after = (
            provider_error.retry_after if isinstance(provider_error, ProviderRateLimited) else None
        )
        response["Retry-After"] = str(retry_after or 10)
        return response

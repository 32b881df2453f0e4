"""View decorators: ``reauthentication_required`` for sensitive pages.

Authgear's reauthentication: the browser goes back to Authgear with ``prompt=login``,
``max_age`` and the current ``id_token_hint``; the callback accepts only the same user with an
``auth_time`` newer than ``max_age`` seconds. The rules live in
:mod:`authgear_django.login_flow`; this module only wraps views with them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth import decorators as auth_decorators
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from authgear_django.exceptions import NotAnAuthgearUser
from authgear_django.login_flow import begin_reauthentication, signed_in_within
from authgear_django.store import current_login

__all__ = ["NotAnAuthgearUser", "reauthentication_required"]  # the error's old import path too

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


def reauthentication_required(view: ViewFunc | None = None, *, max_age: int = 300) -> Any:
    """Let the user in only if they signed in at Authgear within the last ``max_age`` seconds.

    Anonymous users go to the login page as with ``login_required``; users whose Authgear
    sign-in is older are sent through Authgear's reauthentication and come back to the view.
    On an ``async def`` view the wrapper is async and the check runs in Django's sync thread.
    """
    if max_age < 0:
        raise ValueError("max_age must be >= 0")

    def decorate(func: ViewFunc) -> ViewFunc:
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await sync_to_async(_admit_recent_sign_in)(request, max_age)
                if refused is not None:
                    return refused
                return await func(request, *args, **kwargs)

            return cast(ViewFunc, async_wrapper)

        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = _admit_recent_sign_in(request, max_age)
            if refused is not None:
                return refused
            return func(request, *args, **kwargs)

        return cast(ViewFunc, wrapper)

    if view is not None:
        return decorate(view)
    return decorate


def _admit_recent_sign_in(request: HttpRequest, max_age: int) -> HttpResponse | None:
    """None when the view may run, else the redirect (login page or Authgear).

    Sync (session, database, maybe Authgear's discovery document): async views call it in a
    thread.
    """
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    login = current_login(request)
    if signed_in_within(login.auth_time if login is not None else None, max_age):
        return None
    return begin_reauthentication(request, max_age=max_age, login=login)


ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])

_django_login_not_required: Callable[[Any], Any] | None = getattr(
    auth_decorators, "login_not_required", None
)


def login_not_required(view: ViewFunction) -> ViewFunction:
    """Django 5.1's ``login_not_required``; on older Django the same attribute, set by hand
    (``LoginRequiredMiddleware`` reads nothing else), so one import works on 4.2 too."""
    if _django_login_not_required is not None:
        marked: ViewFunction = _django_login_not_required(view)
        return marked
    view.login_required = False  # type: ignore[attr-defined]
    return view

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
    """
    if max_age < 0:
        raise ValueError("max_age must be >= 0")

    def decorate(func: ViewFunc) -> ViewFunc:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            login = current_login(request)
            if signed_in_within(login.auth_time if login is not None else None, max_age):
                return func(request, *args, **kwargs)
            return begin_reauthentication(request, max_age=max_age, login=login)

        return cast(ViewFunc, wrapper)

    if view is not None:
        return decorate(view)
    return decorate

"""View decorators: ``reauthentication_required`` for sensitive pages.

Authgear's reauthentication: the browser goes back to Authgear with ``prompt=login``,
``max_age`` and the current ``id_token_hint``; the callback accepts only the same user with an
``auth_time`` newer than ``max_age`` seconds (see ``AuthgearCallbackView``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AccountError
from authgear_django.models import AuthgearAccount
from authgear_django.store import current_login
from authgear_django.views import begin_login, error_response

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


class NotAnAuthgearUser(AccountError):
    title = "Sign-in with Authgear needed"
    user_message = "This page is only for users who sign in with Authgear."


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
            auth_time = login.auth_time if login is not None else None
            if auth_time is not None and (timezone.now() - auth_time).total_seconds() <= max_age:
                return func(request, *args, **kwargs)
            account = AuthgearAccount.objects.filter(user_id=request.user.pk).first()
            if account is None:
                return error_response(request, NotAnAuthgearUser("password user on a reauth page"))
            id_token_hint = None
            if login is not None:
                try:
                    id_token_hint = login.id_token
                except TokenDecryptionError:
                    id_token_hint = None
            return begin_login(
                request,
                next_url=request.get_full_path(),
                options={"prompt": "login"},
                max_age=max_age,
                id_token_hint=id_token_hint,
                expected_sub=account.sub,
            )

        return cast(ViewFunc, wrapper)

    if view is not None:
        return decorate(view)
    return decorate

"""The app's URLs: ``path("auth/", include("authgear_django.urls"))``.

Every view here is reachable without a Django login (it is how one logs in, out, or how
Authgear calls us), so each is marked ``login_not_required``: a project using Django 5.1's
``LoginRequiredMiddleware`` must not send its visitors from the login page to the login page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth import decorators as auth_decorators
from django.urls import path

from authgear_django.sessions_views import AuthgearSessionsView
from authgear_django.views import (
    AuthgearCallbackView,
    AuthgearLoginView,
    AuthgearLogoutReturnView,
    AuthgearLogoutView,
)
from authgear_django.webhooks import AuthgearWebhookView

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


app_name = "authgear_django"

urlpatterns = [
    path("login/", login_not_required(AuthgearLoginView.as_view()), name="login"),
    path(
        "signup/",
        login_not_required(AuthgearLoginView.as_view(extra_params={"x_page": "signup"})),
        name="signup",
    ),
    path("callback/", login_not_required(AuthgearCallbackView.as_view()), name="callback"),
    # An anonymous GET lands on LOGOUT_REDIRECT_URL; a POST after the session expired still
    # clears what is left. Neither may bounce through the login page.
    path("logout/", login_not_required(AuthgearLogoutView.as_view()), name="logout"),
    # Authgear's post_logout_redirect_uri: checks the logout state, then LOGOUT_REDIRECT_URL.
    # The visitor is already logged out here.
    path(
        "logout/return/",
        login_not_required(AuthgearLogoutReturnView.as_view()),
        name="logout_return",
    ),
    path(
        "logout/everywhere/",
        login_not_required(AuthgearLogoutView.as_view(everywhere=True)),
        name="logout_everywhere",
    ),
    # Called by Authgear's servers, which never have a session: the signature authenticates.
    path("webhook/", login_not_required(AuthgearWebhookView.as_view()), name="webhook"),
    # The one page for signed-in users only (not marked): anonymous visitors go to LOGIN_URL.
    path("sessions/", AuthgearSessionsView.as_view(), name="sessions"),
]

"""The app's URLs: ``path("auth/", include("authgear_django.urls"))``.

Every view here but the sessions page is reachable without a Django login (it is how one logs
in, out, or how Authgear calls us), so each is marked ``login_not_required``: a project using
Django 5.1's ``LoginRequiredMiddleware`` must not send visitors from the login page to it.
"""

from __future__ import annotations

from django.urls import path

from authgear_django.decorators import login_not_required
from authgear_django.sessions_views import AuthgearSessionsView
from authgear_django.views import (
    AuthgearCallbackView,
    AuthgearLoginView,
    AuthgearLogoutReturnView,
    AuthgearLogoutView,
)
from authgear_django.webhooks import AuthgearWebhookView

__all__ = ["login_not_required", "urlpatterns"]  # login_not_required: imported here before

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

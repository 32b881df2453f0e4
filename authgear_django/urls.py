"""The app's URLs: ``path("auth/", include("authgear_django.urls"))``."""

from __future__ import annotations

from django.urls import path

from authgear_django.views import (
    AuthgearCallbackView,
    AuthgearLoginView,
    AuthgearLogoutReturnView,
    AuthgearLogoutView,
)
from authgear_django.webhooks import AuthgearWebhookView

app_name = "authgear_django"

urlpatterns = [
    path("login/", AuthgearLoginView.as_view(), name="login"),
    path("signup/", AuthgearLoginView.as_view(extra_params={"x_page": "signup"}), name="signup"),
    path("callback/", AuthgearCallbackView.as_view(), name="callback"),
    path("logout/", AuthgearLogoutView.as_view(), name="logout"),
    # Authgear's post_logout_redirect_uri: checks the logout state, then LOGOUT_REDIRECT_URL.
    path("logout/return/", AuthgearLogoutReturnView.as_view(), name="logout_return"),
    path(
        "logout/everywhere/",
        AuthgearLogoutView.as_view(everywhere=True),
        name="logout_everywhere",
    ),
    path("webhook/", AuthgearWebhookView.as_view(), name="webhook"),
]

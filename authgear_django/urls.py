"""The app's URLs: ``path("auth/", include("authgear_django.urls"))``."""

from __future__ import annotations

from django.urls import path

from authgear_django.views import AuthgearCallbackView, AuthgearLoginView, AuthgearLogoutView
from authgear_django.webhooks import AuthgearWebhookView

app_name = "authgear_django"

urlpatterns = [
    path("login/", AuthgearLoginView.as_view(), name="login"),
    path("signup/", AuthgearLoginView.as_view(extra_params={"x_page": "signup"}), name="signup"),
    path("callback/", AuthgearCallbackView.as_view(), name="callback"),
    path("logout/", AuthgearLogoutView.as_view(), name="logout"),
    path(
        "logout/everywhere/",
        AuthgearLogoutView.as_view(everywhere=True),
        name="logout_everywhere",
    ),
    path("webhook/", AuthgearWebhookView.as_view(), name="webhook"),
]

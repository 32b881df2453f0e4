"""URLs of the local provider, at Authgear's paths (no trailing slashes).

DOT builds the URLs in its discovery document with ``reverse("oauth2_provider:<name>")``,
so its views are mounted here under that namespace with DOT's URL names.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from oauth2_provider import views as dot_views

from example_project.local_provider import testhooks, views

oauth2_patterns = [
    path(
        ".well-known/openid-configuration",
        testhooks.CountingDiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    # Authgear serves the same document at the RFC 8414 location.
    path(
        ".well-known/oauth-authorization-server",
        testhooks.CountingDiscoveryView.as_view(),
        name="oauth-server-metadata",
    ),
    path("oauth2/authorize", views.AuthorizeView.as_view(), name="authorize"),
    path("oauth2/token", testhooks.CountingTokenView.as_view(), name="token"),
    path("oauth2/userinfo", dot_views.UserInfoView.as_view(), name="user-info"),
    path("oauth2/jwks", testhooks.CountingJwksView.as_view(), name="jwks-info"),
    path("oauth2/revoke", testhooks.CountingRevokeTokenView.as_view(), name="revoke-token"),
    path("oauth2/end_session", views.EndSessionView.as_view(), name="rp-initiated-logout"),
]

urlpatterns = [
    path("", include((oauth2_patterns, "oauth2_provider"))),
    path("login", views.LoginView.as_view(), name="login"),
    path("login/cancel", views.cancel_login, name="login_cancel"),
    path("logout", LogoutView.as_view(), name="logout"),
    path("settings", views.home, name="settings"),
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),  # operator: end a user's sessions (demo_op/admin.py)
]

if settings.LOCAL_OP_TEST_HOOKS:
    # Test-only: request counters for end-to-end tests (see testhooks.py).
    urlpatterns.append(path("_test/stats", testhooks.stats, name="test-stats"))

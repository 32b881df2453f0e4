"""A URLconf whose callback view is a project's subclass using mozilla's view hooks."""

from __future__ import annotations

from django.urls import include, path

from authgear_django.views import AuthgearCallbackView


class ProjectCallbackView(AuthgearCallbackView):
    """mozilla's documented customisation: fixed landing pages for success and failure."""

    failure_url = "/login-failed/"

    @property
    def success_url(self) -> str:
        return "/dashboard/"


urlpatterns = [
    path("auth/callback/", ProjectCallbackView.as_view()),
    path("", include("tests.urls")),
]

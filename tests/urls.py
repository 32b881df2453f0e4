from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def public(request: HttpRequest) -> HttpResponse:
    return HttpResponse("public")


@login_required
def private(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"private for {request.user.get_username()}")


urlpatterns = [
    path("", public, name="home"),
    path("private/", private, name="private"),
    path("auth/", include("authgear_django.urls")),
    path("admin/", admin.site.urls),
]

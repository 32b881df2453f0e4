from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from example_project.site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("welcome/", views.welcome, name="welcome"),
    path("private/", views.private, name="private"),
    path("call-api/", views.call_api, name="call_api"),
    path("api/me/", views.api_me, name="api_me"),
    path("sensitive/", views.sensitive, name="sensitive"),
    path("auth/", include("authgear_django.urls")),
    path("admin/", admin.site.urls),
]

"""URLs of the request benchmark: the test suite's, plus mozilla-django-oidc's own.

mozilla's ``SessionRefresh`` reverses its view names on its first request, so its side needs
them; every side uses this one URLconf so that URL resolution costs them all the same.
"""

from __future__ import annotations

from django.urls import include, path

from tests.urls import urlpatterns as test_urlpatterns

urlpatterns = [*test_urlpatterns, path("oidc/", include("mozilla_django_oidc.urls"))]

"""Django REST framework views for the DRF integration tests."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from authgear_django.contrib.drf import AuthgearAccessTokenAuthentication, HasAuthgearScopes


class Me(APIView):
    authentication_classes = [AuthgearAccessTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Any) -> Response:
        return Response({"sub": request.auth.sub, "username": request.user.get_username()})


class Orders(APIView):
    authentication_classes = [AuthgearAccessTokenAuthentication]
    permission_classes = [HasAuthgearScopes]
    required_scopes = ["orders:read"]

    def get(self, request: Any) -> Response:
        return Response({"orders": []})


urlpatterns = [path("me/", Me.as_view()), path("orders/", Orders.as_view())]

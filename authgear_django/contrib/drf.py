"""Django REST framework integration: ``pip install authgear-django[drf]``.

.. code-block:: python

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "authgear_django.contrib.drf.AuthgearAccessTokenAuthentication",
        ],
    }

    class OrderList(APIView):
        permission_classes = [HasAuthgearScopes]
        required_scopes = ["orders:read"]
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from authgear_django.access_tokens import AccessToken, AccessTokenError
from authgear_django.bearer import authenticate_bearer, bearer_token


class AuthgearUnavailable(exceptions.APIException):  # type: ignore[misc]
    """Authgear's keys could not be fetched: the token cannot be judged now (503, not 500)."""

    status_code = 503
    default_detail = _("Authgear is unavailable; try again shortly.")
    default_code = "temporarily_unavailable"


class AuthgearAccessTokenAuthentication(BaseAuthentication):  # type: ignore[misc]
    """``Authorization: Bearer <Authgear access token>`` → ``(user, AccessToken)``."""

    def authenticate(self, request: Any) -> tuple[Any, AccessToken] | None:
        django_request = request._request
        if bearer_token(django_request) is None:
            return None  # not ours: let other authentication classes try
        try:
            return authenticate_bearer(django_request)
        except AccessTokenError as error:
            if error.status == 503:
                raise AuthgearUnavailable(error.description) from None
            if error.status == 403:
                raise exceptions.PermissionDenied(error.description) from None
            raise exceptions.AuthenticationFailed(error.description) from None

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api", error="invalid_token"'


class HasAuthgearScopes(BasePermission):  # type: ignore[misc]
    """Allow only requests whose Authgear access token has the view's ``required_scopes``."""

    message = _("The access token lacks a required scope.")

    def has_permission(self, request: Any, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, AccessToken):
            return False
        return token.has_scopes(getattr(view, "required_scopes", ()))

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware

from authgear_django.backends import AuthgearBackend


class CustomBackend(AuthgearBackend):
    """A project's subclass, as the README suggests for customising user creation."""


class CustomAuthMiddleware(AuthenticationMiddleware):
    """A project's own authentication middleware: the order check must accept subclasses."""

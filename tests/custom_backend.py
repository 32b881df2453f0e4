from __future__ import annotations

from authgear_django.backends import AuthgearBackend


class CustomBackend(AuthgearBackend):
    """A project's subclass, as the README suggests for customising user creation."""

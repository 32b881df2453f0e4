"""System checks: catch misconfiguration at start-up, not at a user's first login.

IDs are stable and listed in the README's catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from authgear_django.conf import conf

BACKEND_PATH = "authgear_django.backends.AuthgearBackend"


@checks.register(checks.Tags.security)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for name in ("AUTHGEAR_ENDPOINT", "AUTHGEAR_CLIENT_ID", "AUTHGEAR_CLIENT_SECRET"):
        value = getattr(settings, name, None)
        if not isinstance(value, str) or not value.strip():
            messages.append(
                checks.Error(
                    f"{name} is missing or blank.",
                    hint=f"Set {name} to the value shown for your application in the portal.",
                    id="authgear_django.E001",
                )
            )
    try:
        conf.AUTHGEAR_HTTP_TIMEOUT  # noqa: B018 - the property validates
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(str(exc), id="authgear_django.E002"))

    if not any(_is_our_backend(path) for path in settings.AUTHENTICATION_BACKENDS):
        messages.append(
            checks.Error(
                "authgear_django's backend is not in AUTHENTICATION_BACKENDS.",
                hint=f"Add '{BACKEND_PATH}' to AUTHENTICATION_BACKENDS.",
                id="authgear_django.E003",
            )
        )

    endpoint = getattr(settings, "AUTHGEAR_ENDPOINT", None)
    if isinstance(endpoint, str) and endpoint.strip():
        parts = urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            messages.append(
                checks.Error(
                    "AUTHGEAR_ENDPOINT is not an absolute URL.",
                    hint="Use the project's origin, e.g. https://myapp.authgear.cloud",
                    id="authgear_django.E004",
                )
            )
        elif parts.path.strip("/") or parts.query:
            messages.append(
                checks.Error(
                    "AUTHGEAR_ENDPOINT must be an origin without a path or query.",
                    hint="Authgear's issuer is the bare origin, e.g. https://myapp.authgear.cloud",
                    id="authgear_django.E005",
                )
            )
        elif parts.scheme != "https" and not settings.DEBUG:
            messages.append(
                checks.Warning(
                    "AUTHGEAR_ENDPOINT does not use https while DEBUG is off.",
                    hint="Tokens would cross the network in clear text; use https in production.",
                    id="authgear_django.W001",
                )
            )
    return messages


def _is_our_backend(path: str) -> bool:
    if path == BACKEND_PATH:
        return True
    try:
        backend = import_string(path)
    except ImportError:
        return False
    from authgear_django.backends import AuthgearBackend

    return isinstance(backend, type) and issubclass(backend, AuthgearBackend)

from __future__ import annotations

from django.apps import AppConfig


class AuthgearDjangoConfig(AppConfig):
    name = "authgear_django"
    label = "authgear_django"
    verbose_name = "Authgear"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from authgear_django import checks  # noqa: F401  (registers the system checks)

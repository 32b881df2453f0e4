from __future__ import annotations

from django.apps import AppConfig, apps


class AuthgearDjangoConfig(AppConfig):
    name = "authgear_django"
    label = "authgear_django"
    verbose_name = "Authgear"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from authgear_django import checks  # noqa: F401  (registers the system checks)

        if apps.is_installed("django.contrib.admin"):
            # Here, not at import: by now django.contrib.admin (listed before us) has imported
            # every app's admin module, so the project's own user admin is the one we extend.
            from authgear_django.admin import attach_to_user_admin

            attach_to_user_admin()

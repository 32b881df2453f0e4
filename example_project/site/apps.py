from __future__ import annotations

from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "example_project.site"
    label = "example_site"
    verbose_name = "Example site"

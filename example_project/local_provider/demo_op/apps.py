from __future__ import annotations

from django.apps import AppConfig


class DemoOPConfig(AppConfig):
    """Demo data and login backend of the local provider (no models)."""

    name = "example_project.local_provider.demo_op"
    label = "local_provider_demo_op"
    verbose_name = "Local OpenID provider demo"

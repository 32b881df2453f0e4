"""ASGI entry point of the example site: ``uvicorn example_project.asgi:application``.

Same settings module as ``wsgi.py``. Our views run in Django's sync thread under ASGI; the
refresh middleware and the decorators work on both handlers.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
application = get_asgi_application()

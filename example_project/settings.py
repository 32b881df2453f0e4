"""Settings of the example site: the guide's Express app, as a Django site using authgear_django.

Configuration comes from environment variables named as in Authgear's guide (and from a
``.env`` file next to manage.py when python-dotenv is installed):

- ``AUTHGEAR_ENDPOINT``, ``AUTHGEAR_CLIENT_ID``, ``AUTHGEAR_CLIENT_SECRET`` (required)
- ``AUTHGEAR_REDIRECT_URL`` (optional; default built from the request: ``/auth/callback/``)
- ``AUTHGEAR_POST_LOGOUT_REDIRECT_URL`` (optional; default ``<site>/``)
- ``AUTHGEAR_WEBHOOK_SECRET`` (optional; turns on the webhook endpoint ``/auth/webhook/``)
- ``DATABASE_URL`` (optional; SQLite by default), ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``
"""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

try:  # optional convenience, as in the guide's .env
    from dotenv import load_dotenv
except ImportError:  # pragma: no cover
    pass
else:
    load_dotenv(BASE_DIR / ".env")

DEBUG = os.environ.get("DJANGO_DEBUG", "true").lower() in ("1", "true", "yes")
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "example-only-insecure-secret-key-change-me-0123456789"
)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "authgear_django",
    "example_project.site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "authgear_django.middleware.TokenRefreshMiddleware",  # after Session and Authentication
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "authgear_django.backends.AuthgearBackend",
    "django.contrib.auth.backends.ModelBackend",  # the admin's password login
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("EXAMPLE_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # runserver is threaded: let writers wait for each other instead of failing
            "OPTIONS": {"timeout": 20},
        }
    }
    if django.VERSION >= (5, 1):
        # take the write lock when a transaction starts, so a refresh never fails half-way
        DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("REDIS_URL"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
    }

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "example_sessionid"
CSRF_COOKIE_NAME = "example_csrftoken"

LOGIN_URL = "authgear_django:login"
LOGIN_REDIRECT_URL = "welcome"
LOGOUT_REDIRECT_URL = "home"

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authgear --------------------------------------------------------------------------------
AUTHGEAR_ENDPOINT = os.environ.get("AUTHGEAR_ENDPOINT", "")
AUTHGEAR_CLIENT_ID = os.environ.get("AUTHGEAR_CLIENT_ID", "")
AUTHGEAR_CLIENT_SECRET = os.environ.get("AUTHGEAR_CLIENT_SECRET", "")
AUTHGEAR_REDIRECT_URI = os.environ.get("AUTHGEAR_REDIRECT_URL") or None
AUTHGEAR_POST_LOGOUT_REDIRECT_URI = os.environ.get("AUTHGEAR_POST_LOGOUT_REDIRECT_URL") or None
AUTHGEAR_WEBHOOK_SECRET = os.environ.get("AUTHGEAR_WEBHOOK_SECRET") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "authgear_django": {"handlers": ["console"], "level": "INFO"},
        "django.security": {"handlers": ["console"], "level": "WARNING"},
    },
}

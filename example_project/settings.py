"""Settings of the example site: the guide's Express app, as a Django site using authgear_django.

Configuration comes from environment variables named as in Authgear's guide (and from a
``.env`` file next to manage.py when python-dotenv is installed):

- ``AUTHGEAR_ENDPOINT``, ``AUTHGEAR_CLIENT_ID``, ``AUTHGEAR_CLIENT_SECRET`` (required)
- ``AUTHGEAR_REDIRECT_URL`` (optional; default built from the request: ``/auth/callback/``)
- ``AUTHGEAR_POST_LOGOUT_REDIRECT_URL`` (optional; default ``<site>/``)
- ``AUTHGEAR_WEBHOOK_SECRET`` (optional; turns on the webhook endpoint ``/auth/webhook/``)
- ``AUTHGEAR_SESSION_CHECK_INTERVAL`` (optional seconds, or ``none``; default 300) and
  ``AUTHGEAR_BROWSER_SSO_CHECK`` (optional ``true``: the ``prompt=none`` check on navigations)
- ``DATABASE_URL`` (optional; SQLite by default)
- ``DJANGO_DEBUG``: ``true`` for local development; **off by default**.
- ``DJANGO_SECRET_KEY`` (required unless DEBUG is on), ``DJANGO_SECRET_KEY_FALLBACKS``
  (optional, comma-separated: previous keys while rotating), ``AUTHGEAR_TOKEN_ENCRYPTION_KEYS``
  (optional, comma-separated; by default the stored tokens are encrypted with keys derived from
  the secret key).
- ``DJANGO_ALLOWED_HOSTS`` (comma-separated; default ``127.0.0.1,localhost,[::1]``).
- ``EXAMPLE_SECRET_KEY_FILE`` (DEBUG only; default ``example_project/.secret_key``).

With DEBUG off and no ``DJANGO_SECRET_KEY`` the site refuses to start: the secret key signs
sessions and encrypts the stored Authgear tokens, and a key anyone can read would hand both
out. With DEBUG on and no key, a random key is generated once and kept in a git-ignored file
(``EXAMPLE_SECRET_KEY_FILE``), so that logins and stored refresh tokens survive a restart of
the development server; delete the file to start over.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

try:  # optional convenience, as in the guide's .env
    from dotenv import load_dotenv
except ImportError:  # pragma: no cover
    pass
else:
    load_dotenv(BASE_DIR / ".env")

# Keys this example once published as defaults: in anyone's hands, so never accepted.
PUBLISHED_SECRET_KEYS = frozenset(
    {
        "example-only-insecure-secret-key-change-me-0123456789",  # this site's former default
        "local-op-insecure-development-key-do-not-deploy",  # the local provider's
    }
)


def _env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated variable as a list, blanks dropped (an empty variable is no value)."""
    return [item.strip() for item in (os.environ.get(name) or default).split(",") if item.strip()]


def _development_secret_key(path: Path) -> str:
    """The key kept in ``path``, created (random, owner-only) on first use.

    A file, not a key per process: the key encrypts the stored refresh tokens and signs
    sessions, so a new key at each restart of ``runserver`` would log everyone out and leave
    undecryptable token rows behind. Created with a link so that two processes starting
    together (``migrate`` and ``runserver``, or parallel tests) end up with the same key.
    """
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(50) + "\n")
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile
            os.link(temporary, path)
    finally:
        temporary.unlink()
    return path.read_text(encoding="ascii").strip()


DEBUG = os.environ.get("DJANGO_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if SECRET_KEY in PUBLISHED_SECRET_KEYS:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is a key published in this repository; set a secret one."
    )
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. With DEBUG off the example site needs a secret key "
            "from the environment (it signs sessions and encrypts the stored Authgear tokens): "
            'generate one with  python -c "import secrets; print(secrets.token_urlsafe(50))"  '
            "and export it, or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = _development_secret_key(
        Path(
            os.environ.get("EXAMPLE_SECRET_KEY_FILE")
            or BASE_DIR / "example_project" / ".secret_key"
        )
    )
SECRET_KEY_FALLBACKS = _env_list("DJANGO_SECRET_KEY_FALLBACKS")
# Hosts this site answers to (the Host header of each request is checked against them).
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

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
if django.VERSION >= (5, 1):
    # Every page needs a login unless its view is marked login_not_required (the landing page,
    # the bearer-token API, and all of authgear_django's views are).
    MIDDLEWARE.append("django.contrib.auth.middleware.LoginRequiredMiddleware")

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
if _env_list("AUTHGEAR_TOKEN_ENCRYPTION_KEYS"):
    AUTHGEAR_TOKEN_ENCRYPTION_KEYS = _env_list("AUTHGEAR_TOKEN_ENCRYPTION_KEYS")
# Authgear's role "admin" (the local provider's demo user has it) makes a Django admin: staff
# and superuser, set at each login and refresh, and cleared when the role is removed. Grant the
# role in the portal (User Management -> Roles) only to people who may administer this site.
# How often a login's Authgear session is confirmed (seconds); "none" turns the check off.
if os.environ.get("AUTHGEAR_SESSION_CHECK_INTERVAL"):
    _interval = os.environ["AUTHGEAR_SESSION_CHECK_INTERVAL"].strip().lower()
    AUTHGEAR_SESSION_CHECK_INTERVAL = None if _interval == "none" else int(_interval)
# Refresh access tokens before every expiry ("true"), or only when a page asks for the token and
# at the liveness check (unset or "false": the library's default, far fewer token calls).
AUTHGEAR_EAGER_REFRESH = os.environ.get("AUTHGEAR_EAGER_REFRESH", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}
# A prompt=none trip through Authgear on page navigations, once per interval (off by default).
AUTHGEAR_BROWSER_SSO_CHECK = os.environ.get("AUTHGEAR_BROWSER_SSO_CHECK", "").lower() in {
    "1",
    "true",
    "yes",
    "on",
}
AUTHGEAR_STAFF_ROLES = ["admin"]
AUTHGEAR_SUPERUSER_ROLES = ["admin"]

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

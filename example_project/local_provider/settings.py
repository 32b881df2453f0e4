"""Settings of the local OpenID provider (django-oauth-toolkit in OIDC mode, Authgear layout).

Development only: DEBUG is on by default, the secret key is public, HTTP is allowed.

Environment variables (all optional):

- ``LOCAL_OP_PORT``: port the provider is reached on (default 9000); used for the issuer.
- ``LOCAL_OP_ISSUER``: issuer URL (default ``http://127.0.0.1:$LOCAL_OP_PORT``, no trailing
  slash; a trailing slash is stripped). Endpoint URLs in discovery use its scheme and host.
- ``LOCAL_OP_DB``: SQLite file (default ``op.sqlite3`` next to this file).
- ``LOCAL_OP_KEY_FILE``: PEM file of the RSA signing key (default ``op_rsa_key.pem`` next to
  the database); a 2048-bit key is generated there on first start.
- ``LOCAL_OP_ACCESS_TOKEN_LIFETIME``: access-token lifetime in seconds (default 3600).
- ``LOCAL_OP_REQUIRE_PKCE``: ``1`` requires PKCE from every client; by default, like
  Authgear, only public clients must send it (confidential clients may, and it is checked).
- ``LOCAL_OP_SECRET_KEY``: Django SECRET_KEY (default: a fixed, public development key).
- ``LOCAL_OP_DEBUG``: ``0`` turns DEBUG off (default on).
- ``LOCAL_OP_REDIRECT_URIS``, ``LOCAL_OP_POST_LOGOUT_REDIRECT_URIS``: read by ``seed_demo``.
- ``LOCAL_OP_TOKEN_RATE_LIMIT``: ``/oauth2/token`` calls allowed per minute per client IP, as
  Authgear limits them (120 there); over it, 429 ``x_rate_limited`` without ``Retry-After``
  (token_rate_limit.py). Default 0: no limit.
- ``LOCAL_OP_TEST_HOOKS``: ``1`` serves the test-only ``/_test/stats`` counters (testhooks.py).
- ``LOCAL_OP_FAST_HASHES``: ``1`` hashes passwords and client secrets with Django's fast, insecure
  MD5 hasher (load tests: PBKDF2 costs about 0.7 s of CPU per login and per token request).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import django

BASE_DIR = Path(__file__).resolve().parent


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {value!r}") from None


def _load_or_create_rsa_key(path: Path) -> str:
    """Return the PEM of the signing key, generating a 2048-bit RSA key on first use.

    The file is created with O_EXCL and mode 0600, so two processes starting at once do
    not overwrite each other's key; the loser reads the winner's file.
    """
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
    return path.read_text()


LOCAL_OP_PORT = _env_int("LOCAL_OP_PORT", 9000)
LOCAL_OP_ISSUER = (
    os.environ.get("LOCAL_OP_ISSUER", "").strip() or f"http://127.0.0.1:{LOCAL_OP_PORT}"
).rstrip("/")
LOCAL_OP_DB = Path(os.environ.get("LOCAL_OP_DB", "").strip() or BASE_DIR / "op.sqlite3")
LOCAL_OP_KEY_FILE = Path(
    os.environ.get("LOCAL_OP_KEY_FILE", "").strip() or LOCAL_OP_DB.parent / "op_rsa_key.pem"
)
LOCAL_OP_ACCESS_TOKEN_LIFETIME = _env_int("LOCAL_OP_ACCESS_TOKEN_LIFETIME", 3600)
LOCAL_OP_REQUIRE_PKCE = _env_flag("LOCAL_OP_REQUIRE_PKCE", False)
LOCAL_OP_TEST_HOOKS = _env_flag("LOCAL_OP_TEST_HOOKS", False)
LOCAL_OP_TOKEN_RATE_LIMIT = _env_int("LOCAL_OP_TOKEN_RATE_LIMIT", 0)
LOCAL_OP_FAST_HASHES = _env_flag("LOCAL_OP_FAST_HASHES", False)

SECRET_KEY = (
    os.environ.get("LOCAL_OP_SECRET_KEY") or "local-op-insecure-development-key-do-not-deploy"
)
DEBUG = _env_flag("LOCAL_OP_DEBUG", True)
ALLOWED_HOSTS = sorted(
    {"127.0.0.1", "localhost", "[::1]", urlsplit(LOCAL_OP_ISSUER).hostname or ""} - {""}
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "example_project.local_provider.demo_op",
    # the operator's admin: "End sessions (revoke grants)" on users, like Authgear's portal
    "django.contrib.admin",
    "django.contrib.messages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.local_provider.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Our templates directory comes first so it can override oauth2_provider/base.html.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": LOCAL_OP_DB,
        # runserver is threaded: let writers wait for each other instead of failing
        "OPTIONS": {"timeout": 20},
    }
}
if django.VERSION >= (5, 1):
    # Take the write lock when a transaction starts. With SQLite's default (deferred), a
    # token request that read and then writes fails at once with "database is locked" when
    # another request writes meanwhile (seen as HTTP 500s on /oauth2/token under load).
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = ["example_project.local_provider.demo_op.backends.EmailBackend"]

if LOCAL_OP_FAST_HASHES:
    # DOT checks the hashed client secret on every token request (refresh included), and
    # PBKDF2's cost is made for one login per user, not for a load test. Hashes made with
    # the default hashers still verify; new ones (seed_demo, upgrades) use MD5.
    from django.conf import global_settings

    PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *global_settings.PASSWORD_HASHERS,
    ]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Cookies ignore ports: the example site on 127.0.0.1:8000 uses Django's default names,
# so the provider uses its own.
SESSION_COOKIE_NAME = "localop_sessionid"
CSRF_COOKIE_NAME = "localop_csrftoken"
LANGUAGE_COOKIE_NAME = "localop_language"

LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": LOCAL_OP_ISSUER,
    "OIDC_RSA_PRIVATE_KEY": _load_or_create_rsa_key(LOCAL_OP_KEY_FILE),
    "OAUTH2_VALIDATOR_CLASS": "example_project.local_provider.validators.LocalOPValidator",
    # Opaque tokens shaped like Authgear's: access token = 32 alphanumerics, refresh token =
    # "<grant uuid>.<32 alphanumerics>".
    "ACCESS_TOKEN_GENERATOR": "example_project.local_provider.validators.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "example_project.local_provider.validators.generate_refresh_token",
    "SCOPES": {
        "openid": "OpenID Connect",
        "offline_access": "Refresh tokens",
        "profile": "Profile attributes",
        "email": "Email address",
        "https://authgear.com/scopes/full-userinfo": "All user attributes",
    },
    "DEFAULT_SCOPES": ["openid"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": LOCAL_OP_ACCESS_TOKEN_LIFETIME,
    # Authgear: ID tokens live 5 minutes; authorization codes 5 minutes.
    "ID_TOKEN_EXPIRE_SECONDS": 300,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 300,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "REFRESH_TOKEN_REUSE_PROTECTION": False,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "none",
        "client_secret_post",
        "client_secret_basic",
    ],
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": True,
    # PKCE: see LocalOPValidator.is_pkce_required; "plain" is refused, as by Authgear.
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
}

"""The one reader of this app's settings.

Every property reads ``django.conf.settings`` on each access, so ``override_settings`` works
in tests and nothing is frozen at import time. Defaults live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_SCOPES = "openid offline_access https://authgear.com/scopes/full-userinfo"
DEFAULT_HTTP_TIMEOUT = 5.0


class AuthgearSettings:
    """Typed access to the ``AUTHGEAR_*`` settings (and the few Django ones we depend on)."""

    def _get(self, name: str, default: Any = None) -> Any:
        return getattr(django_settings, name, default)

    # --- required -----------------------------------------------------------------------------

    @property
    def AUTHGEAR_ENDPOINT(self) -> str:
        """Origin of the Authgear project, e.g. ``https://myapp.authgear.cloud``, no trailing slash.

        Authgear's issuer is the bare origin, so a trailing slash is dropped here once rather
        than compared loosely later.
        """
        value = self._get("AUTHGEAR_ENDPOINT", "") or ""
        if not isinstance(value, str) or not value.strip():
            raise ImproperlyConfigured(
                "AUTHGEAR_ENDPOINT must be set, e.g. https://myapp.authgear.cloud"
            )
        return value.strip().rstrip("/")

    @property
    def AUTHGEAR_CLIENT_ID(self) -> str:
        value = self._get("AUTHGEAR_CLIENT_ID", "") or ""
        if not isinstance(value, str) or not value.strip():
            raise ImproperlyConfigured("AUTHGEAR_CLIENT_ID must be set.")
        return value.strip()

    @property
    def AUTHGEAR_CLIENT_SECRET(self) -> str:
        value = self._get("AUTHGEAR_CLIENT_SECRET", "") or ""
        if not isinstance(value, str):
            raise ImproperlyConfigured("AUTHGEAR_CLIENT_SECRET must be a string.")
        return value

    # --- optional -----------------------------------------------------------------------------

    @property
    def AUTHGEAR_SCOPES(self) -> str:
        value = self._get("AUTHGEAR_SCOPES", DEFAULT_SCOPES)
        if isinstance(value, (list, tuple)):
            value = " ".join(value)
        scopes = str(value).split()
        if "openid" not in scopes:
            # Authgear refuses an authorization request without it.
            scopes.insert(0, "openid")
        return " ".join(scopes)

    @property
    def AUTHGEAR_REDIRECT_URI(self) -> str | None:
        """Absolute callback URL registered in the portal; ``None`` builds it from the request."""
        value = self._get("AUTHGEAR_REDIRECT_URI", None)
        return str(value) if value else None

    @property
    def AUTHGEAR_POST_LOGOUT_REDIRECT_URI(self) -> str | None:
        """Absolute URL Authgear returns to after logout; ``None``: LOGOUT_REDIRECT_URL."""
        value = self._get("AUTHGEAR_POST_LOGOUT_REDIRECT_URI", None)
        return str(value) if value else None

    @property
    def AUTHGEAR_HTTP_TIMEOUT(self) -> float:
        """Seconds to wait for Authgear on every call; never unlimited."""
        value = self._get("AUTHGEAR_HTTP_TIMEOUT", DEFAULT_HTTP_TIMEOUT)
        try:
            timeout = float(value)
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                "AUTHGEAR_HTTP_TIMEOUT must be a number of seconds."
            ) from None
        if not 0 < timeout <= 120:
            raise ImproperlyConfigured("AUTHGEAR_HTTP_TIMEOUT must be between 0 and 120 seconds.")
        return timeout

    @property
    def AUTHGEAR_CACHE_ALIAS(self) -> str:
        """Django cache holding discovery and JWKS; share it across workers in production."""
        return str(self._get("AUTHGEAR_CACHE_ALIAS", "default"))

    @property
    def AUTHGEAR_DISCOVERY_CACHE_TTL(self) -> int:
        return int(self._get("AUTHGEAR_DISCOVERY_CACHE_TTL", 3600))

    @property
    def AUTHGEAR_JWKS_CACHE_TTL(self) -> int:
        return int(self._get("AUTHGEAR_JWKS_CACHE_TTL", 3600))

    @property
    def AUTHGEAR_REFRESH_LEEWAY(self) -> int:
        """Refresh this long before the access token expires (at most half its lifetime)."""
        return max(0, int(self._get("AUTHGEAR_REFRESH_LEEWAY", 60)))

    @property
    def AUTHGEAR_REFRESH_GRACE(self) -> int:
        """While Authgear is unreachable, keep serving an expired login this many seconds more."""
        return max(0, int(self._get("AUTHGEAR_REFRESH_GRACE", 30)))

    @property
    def AUTHGEAR_REFRESH_RETRY_INTERVAL(self) -> int:
        """After a failed refresh (Authgear down), wait this long before the next try."""
        return max(0, int(self._get("AUTHGEAR_REFRESH_RETRY_INTERVAL", 10)))

    @property
    def AUTHGEAR_CLOCK_LEEWAY(self) -> int:
        """Seconds of clock skew tolerated on ``exp``/``iat`` of ID tokens."""
        return int(self._get("AUTHGEAR_CLOCK_LEEWAY", 60))

    @property
    def AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT(self) -> int:
        """Seconds a started login (state, nonce, PKCE verifier) stays valid."""
        return int(self._get("AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT", 1800))

    @property
    def AUTHGEAR_MAX_LOGIN_ATTEMPTS(self) -> int:
        """Concurrent login attempts kept per session (several tabs); the oldest is dropped."""
        return max(1, int(self._get("AUTHGEAR_MAX_LOGIN_ATTEMPTS", 10)))

    @property
    def AUTHGEAR_CREATE_USERS(self) -> bool:
        return bool(self._get("AUTHGEAR_CREATE_USERS", True))

    @property
    def AUTHGEAR_LINK_USERS_BY_EMAIL(self) -> bool:
        """Link a new Authgear user to an existing Django user with the same *verified* email."""
        return bool(self._get("AUTHGEAR_LINK_USERS_BY_EMAIL", False))

    @property
    def AUTHGEAR_ROLE_GROUPS(self) -> dict[str, list[str]] | str | None:
        """Authgear roles → Django groups: ``None`` (off), ``"*"`` (a group per role, same
        name), or a mapping ``{"role": "Group"}`` / ``{"role": ["Group", ...]}``."""
        value = self._get("AUTHGEAR_ROLE_GROUPS", None)
        if value is None or value == "*":
            return None if value is None else "*"
        if not isinstance(value, dict):
            raise ImproperlyConfigured('AUTHGEAR_ROLE_GROUPS must be None, "*" or a dict.')
        mapping: dict[str, list[str]] = {}
        for role, groups in value.items():
            names = [groups] if isinstance(groups, str) else list(groups)
            if not isinstance(role, str) or not all(isinstance(n, str) and n for n in names):
                raise ImproperlyConfigured("AUTHGEAR_ROLE_GROUPS maps role keys to group names.")
            mapping[role] = names
        return mapping

    @property
    def AUTHGEAR_STAFF_ROLES(self) -> list[str] | None:
        """Roles that make a user ``is_staff`` (set and cleared at each login and refresh)."""
        value = self._get("AUTHGEAR_STAFF_ROLES", None)
        return None if value is None else [str(role) for role in value]

    @property
    def AUTHGEAR_SUPERUSER_ROLES(self) -> list[str] | None:
        """Roles that make a user ``is_superuser`` (set and cleared at each login and refresh)."""
        value = self._get("AUTHGEAR_SUPERUSER_ROLES", None)
        return None if value is None else [str(role) for role in value]

    @property
    def AUTHGEAR_API_AUDIENCE(self) -> str:
        """The ``aud`` API access tokens must carry; Authgear puts the project origin there."""
        value = self._get("AUTHGEAR_API_AUDIENCE", None)
        return str(value) if value else self.AUTHGEAR_ENDPOINT

    @property
    def AUTHGEAR_API_CREATE_USERS(self) -> bool:
        """Create a Django user for a valid access token of an Authgear user never seen here."""
        return bool(self._get("AUTHGEAR_API_CREATE_USERS", False))

    @property
    def AUTHGEAR_API_OPAQUE_TOKENS(self) -> bool:
        """Accept opaque (non-JWT) access tokens by asking Authgear's userinfo endpoint."""
        return bool(self._get("AUTHGEAR_API_OPAQUE_TOKENS", False))

    @property
    def AUTHGEAR_API_USERINFO_CACHE_TTL(self) -> int:
        """Seconds an opaque token's userinfo answer is reused (per token, in the cache)."""
        return max(0, int(self._get("AUTHGEAR_API_USERINFO_CACHE_TTL", 60)))

    @property
    def AUTHGEAR_WEBHOOK_SECRET(self) -> str | None:
        """The webhook signing secret (portal: Advanced → Hooks); ``None``: endpoint off."""
        value = self._get("AUTHGEAR_WEBHOOK_SECRET", None)
        return str(value) if value else None

    @property
    def AUTHGEAR_WEBHOOK_MAX_BODY_SIZE(self) -> int:
        """Largest webhook body accepted, in bytes (larger: 413)."""
        return int(self._get("AUTHGEAR_WEBHOOK_MAX_BODY_SIZE", 1_048_576))

    @property
    def AUTHGEAR_WEBHOOK_DELETED_USERS(self) -> str:
        """What ``user.deleted`` / ``user.anonymized`` do here: ``"deactivate"`` or ``"delete"``."""
        value = str(self._get("AUTHGEAR_WEBHOOK_DELETED_USERS", "deactivate"))
        if value not in ("deactivate", "delete"):
            raise ImproperlyConfigured(
                'AUTHGEAR_WEBHOOK_DELETED_USERS is "deactivate" or "delete".'
            )
        return value

    @property
    def AUTHGEAR_TOKEN_ENCRYPTION_KEYS(self) -> list[str]:
        """Secrets the stored tokens are encrypted with; the first encrypts, all decrypt.

        Defaults to keys derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, so rotating
        Django's secret the documented way keeps old tokens readable.
        """
        value = self._get("AUTHGEAR_TOKEN_ENCRYPTION_KEYS", None)
        if value:
            if isinstance(value, str):
                return [value]
            return [str(key) for key in value]
        keys = [str(self._get("SECRET_KEY", ""))]
        keys.extend(str(key) for key in self._get("SECRET_KEY_FALLBACKS", ()) or ())
        return [key for key in keys if key]

    @property
    def token_keys_derived_from_secret_key(self) -> bool:
        return not self._get("AUTHGEAR_TOKEN_ENCRYPTION_KEYS", None)

    @property
    def AUTHGEAR_LOGIN_REDIRECT_URL(self) -> str:
        return str(self._get("AUTHGEAR_LOGIN_REDIRECT_URL", None) or self.LOGIN_REDIRECT_URL)

    @property
    def AUTHGEAR_REDIRECT_ALLOWED_HOSTS(self) -> Sequence[str]:
        """Extra hosts ``?next=`` may point at, besides the request's own host."""
        return tuple(self._get("AUTHGEAR_REDIRECT_ALLOWED_HOSTS", ()) or ())

    # --- Django settings this app depends on -----------------------------------------------------

    @property
    def LOGIN_REDIRECT_URL(self) -> str:
        return str(self._get("LOGIN_REDIRECT_URL", "/") or "/")

    @property
    def LOGOUT_REDIRECT_URL(self) -> str:
        return str(self._get("LOGOUT_REDIRECT_URL", None) or "/")

    @property
    def SESSION_ENGINE(self) -> str:
        return str(self._get("SESSION_ENGINE", "django.contrib.sessions.backends.db"))

    @property
    def DEBUG(self) -> bool:
        return bool(self._get("DEBUG", False))

    def mozilla_setting(self, name: str, *default: Any) -> Any:
        """Answer mozilla-django-oidc's ``OIDC_*`` lookups from our settings.

        Users never set ``OIDC_*`` themselves; the inherited code paths that still ask get the
        values that match Authgear.
        """
        values: dict[str, Any] = {
            "OIDC_RP_CLIENT_ID": lambda: self.AUTHGEAR_CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": lambda: self.AUTHGEAR_CLIENT_SECRET,
            "OIDC_RP_SCOPES": lambda: self.AUTHGEAR_SCOPES,
            "OIDC_RP_SIGN_ALGO": lambda: "RS256",
            "OIDC_TIMEOUT": lambda: self.AUTHGEAR_HTTP_TIMEOUT,
            "OIDC_USE_NONCE": lambda: True,
            "OIDC_USE_PKCE": lambda: True,
            "OIDC_PKCE_CODE_CHALLENGE_METHOD": lambda: "S256",
            "OIDC_VERIFY_SSL": lambda: True,
            "OIDC_CREATE_USER": lambda: self.AUTHGEAR_CREATE_USERS,
            "OIDC_STORE_ACCESS_TOKEN": lambda: False,
            "OIDC_STORE_ID_TOKEN": lambda: False,
            "OIDC_ALLOW_UNSECURED_JWT": lambda: False,
            "OIDC_MAX_STATES": lambda: self.AUTHGEAR_MAX_LOGIN_ATTEMPTS,
            "OIDC_REDIRECT_FIELD_NAME": lambda: "next",
            "OIDC_AUTHENTICATION_CALLBACK_URL": lambda: "authgear_django:callback",
            "LOGIN_REDIRECT_URL": lambda: self.AUTHGEAR_LOGIN_REDIRECT_URL,
            "LOGOUT_REDIRECT_URL": lambda: self.LOGOUT_REDIRECT_URL,
        }
        if name in values:
            return values[name]()
        if default:
            return default[0]
        raise ImproperlyConfigured(f"{name} is not used with authgear_django.")


conf = AuthgearSettings()

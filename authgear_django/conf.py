"""The one reader of this app's settings.

Every property reads ``django.conf.settings`` on each access, so ``override_settings`` works
in tests and nothing is frozen at import time. Defaults live here and nowhere else.

Each setting has one rule, written once, in its property: a broken value raises
:class:`SettingError` when the setting is used, and ``checks.py`` reports the very same error
at start-up (:meth:`AuthgearSettings.problems`), so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

DEFAULT_SCOPES = "openid offline_access https://authgear.com/scopes/full-userinfo"
DEFAULT_HTTP_TIMEOUT = 5.0
DEFAULT_LOGOUT_STATE_MAX_AGE = 600
DEFAULT_WEBHOOK_MAX_EVENT_AGE = 7 * 24 * 3600
DEFAULT_WEBHOOK_EVENT_RETENTION = 30 * 24 * 3600
# Authgear caches its userinfo answers for 5 minutes: checking more often mostly sees them.
DEFAULT_SESSION_CHECK_INTERVAL = 300
# Authgear counts 120 token-endpoint calls a minute per client IP (not configurable there).
DEFAULT_TOKEN_RATE_LIMIT_PER_MINUTE = 120
DEFAULT_TOKEN_BACKOFF_MAX = 120
# How long a login may go unproven past its due liveness check while Authgear cannot answer.
DEFAULT_MAX_STALENESS = 300

# System check IDs of the setting rules (docs/reference/system-checks.md lists them).
MISSING = "authgear_django.E001"
BAD_TIMEOUT = "authgear_django.E002"
ENDPOINT_NOT_URL = "authgear_django.E004"
ENDPOINT_NOT_ORIGIN = "authgear_django.E005"
BAD_ROLE_GROUPS = "authgear_django.E008"
INVALID = "authgear_django.E011"


class SettingError(ImproperlyConfigured):
    """A setting breaks its rule: raised at use, reported by ``manage.py check`` as ``check_id``.

    Messages never echo the value: a secret pasted into the wrong setting must not be shown.
    """

    def __init__(self, message: str, *, check_id: str = INVALID, hint: str | None = None) -> None:
        super().__init__(message)
        self.check_id = check_id
        self.hint = hint


def _integer(name: str, value: Any, *, minimum: int | None = None) -> int:
    """An int setting (a numeric string is accepted, a bool is not); ``minimum`` is inclusive."""
    if isinstance(value, bool):
        raise SettingError(f"{name} must be a whole number.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name} must be a whole number.") from None
    if minimum is not None and number < minimum:
        raise SettingError(f"{name} must be at least {minimum}.")
    return number


def _role_names(name: str, value: Any) -> list[str] | None:
    """``None`` or a list of role names; one role may be given as a string (never split)."""
    if value is None:
        return None
    roles = [value] if isinstance(value, str) else value
    if not isinstance(roles, (list, tuple, set, frozenset)) or not all(
        isinstance(role, str) and role for role in roles
    ):
        raise SettingError(f"{name} must be None or a list of role names.")
    return list(roles)


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
        value = self._required_string("AUTHGEAR_ENDPOINT").rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingError(
                "AUTHGEAR_ENDPOINT is not an absolute URL.",
                check_id=ENDPOINT_NOT_URL,
                hint="Use the project's origin, e.g. https://myapp.authgear.cloud",
            )
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise SettingError(
                "AUTHGEAR_ENDPOINT must be an origin without a path or query.",
                check_id=ENDPOINT_NOT_ORIGIN,
                hint="Authgear's issuer is the bare origin, e.g. https://myapp.authgear.cloud",
            )
        return value

    @property
    def AUTHGEAR_CLIENT_ID(self) -> str:
        return self._required_string("AUTHGEAR_CLIENT_ID")

    @property
    def AUTHGEAR_CLIENT_SECRET(self) -> str:
        """Required unless ``AUTHGEAR_CLIENT_AUTH_METHOD`` is ``none`` (a public client)."""
        value = self._get("AUTHGEAR_CLIENT_SECRET", "") or ""
        if not isinstance(value, str):
            raise SettingError("AUTHGEAR_CLIENT_SECRET must be a string.")
        if not value.strip() and not self._is_public_client():
            raise SettingError(
                "AUTHGEAR_CLIENT_SECRET must be set (it is missing or blank).",
                check_id=MISSING,
                hint="Set AUTHGEAR_CLIENT_SECRET to the value shown for your application in "
                'the portal, or AUTHGEAR_CLIENT_AUTH_METHOD = "none" for a public client.',
            )
        return value

    def _required_string(self, name: str) -> str:
        value = self._get(name, "") or ""
        if not isinstance(value, str) or not value.strip():
            raise SettingError(
                f"{name} must be set (it is missing or blank).",
                check_id=MISSING,
                hint=f"Set {name} to the value shown for your application in the portal.",
            )
        return value.strip()

    def _is_public_client(self) -> bool:
        """The auth method is ``none``; an invalid method counts as confidential (it is
        reported by its own rule, and the secret stays required)."""
        from authgear_django.client import CLIENT_AUTH_NONE

        try:
            return self.AUTHGEAR_CLIENT_AUTH_METHOD == CLIENT_AUTH_NONE
        except ImproperlyConfigured:
            return False

    # --- optional -----------------------------------------------------------------------------

    @property
    def AUTHGEAR_CLIENT_AUTH_METHOD(self) -> str:
        """How the app authenticates to Authgear's token and revocation endpoints.

        The portal's client type decides: a Confidential Client uses ``client_secret_post``
        (default, every Authgear version) or ``client_secret_basic``; a Public Client, Cookie
        SSO or Native App has no secret and uses ``none``.
        """
        from authgear_django.client import CLIENT_AUTH_METHODS, CLIENT_SECRET_POST

        value = self._get("AUTHGEAR_CLIENT_AUTH_METHOD", None) or CLIENT_SECRET_POST
        if value not in CLIENT_AUTH_METHODS:
            raise SettingError(
                f"AUTHGEAR_CLIENT_AUTH_METHOD must be one of {', '.join(CLIENT_AUTH_METHODS)}.",
                check_id="authgear_django.E009",
                hint="Use the method for your application's type in the portal: "
                "client_secret_post or client_secret_basic for a Confidential Client, none for a "
                "Public Client, Cookie SSO or Native App.",
            )
        return str(value)

    @property
    def AUTHGEAR_SCOPES(self) -> str:
        value = self._get("AUTHGEAR_SCOPES", DEFAULT_SCOPES)
        if isinstance(value, (list, tuple)) and all(isinstance(scope, str) for scope in value):
            value = " ".join(value)
        if not isinstance(value, str):
            raise SettingError("AUTHGEAR_SCOPES must be a string or a list of scopes.")
        scopes = value.split()
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
            raise SettingError(
                "AUTHGEAR_HTTP_TIMEOUT must be a number of seconds.", check_id=BAD_TIMEOUT
            ) from None
        if isinstance(value, bool) or not 0 < timeout <= 120:
            raise SettingError(
                "AUTHGEAR_HTTP_TIMEOUT must be between 0 and 120 seconds.", check_id=BAD_TIMEOUT
            )
        return timeout

    @property
    def AUTHGEAR_CACHE_ALIAS(self) -> str:
        """Django cache holding discovery and JWKS; share it across workers in production."""
        alias = self._get("AUTHGEAR_CACHE_ALIAS", "default")
        if not isinstance(alias, str) or alias not in self.CACHES:
            raise SettingError(
                f"AUTHGEAR_CACHE_ALIAS {alias!r} is not in CACHES.",
                check_id="authgear_django.E007",
                hint="Name a cache from CACHES, e.g. 'default'.",
            )
        return alias

    @property
    def AUTHGEAR_DISCOVERY_CACHE_TTL(self) -> int:
        return _integer(
            "AUTHGEAR_DISCOVERY_CACHE_TTL", self._get("AUTHGEAR_DISCOVERY_CACHE_TTL", 3600)
        )

    @property
    def AUTHGEAR_JWKS_CACHE_TTL(self) -> int:
        return _integer("AUTHGEAR_JWKS_CACHE_TTL", self._get("AUTHGEAR_JWKS_CACHE_TTL", 3600))

    @property
    def AUTHGEAR_REFRESH_LEEWAY(self) -> int:
        """Refresh this long before the access token expires (at most half its lifetime)."""
        return max(0, _integer("AUTHGEAR_REFRESH_LEEWAY", self._get("AUTHGEAR_REFRESH_LEEWAY", 60)))

    @property
    def AUTHGEAR_REFRESH_GRACE(self) -> int:
        """While Authgear is unreachable, keep serving an expired login this many seconds more."""
        return max(0, _integer("AUTHGEAR_REFRESH_GRACE", self._get("AUTHGEAR_REFRESH_GRACE", 30)))

    @property
    def AUTHGEAR_REFRESH_RETRY_INTERVAL(self) -> int:
        """After a failed refresh (Authgear down), wait this long before the next try."""
        return max(
            0,
            _integer(
                "AUTHGEAR_REFRESH_RETRY_INTERVAL", self._get("AUTHGEAR_REFRESH_RETRY_INTERVAL", 10)
            ),
        )

    @property
    def AUTHGEAR_TOKEN_BACKOFF_MAX(self) -> int:
        """Longest pause of refreshes after Authgear's token endpoint answered 429, in seconds
        (the backoff starts at 5 s and doubles while 429s keep coming)."""
        value = self._get("AUTHGEAR_TOKEN_BACKOFF_MAX", DEFAULT_TOKEN_BACKOFF_MAX)
        return _integer("AUTHGEAR_TOKEN_BACKOFF_MAX", value, minimum=1)

    @property
    def AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE(self) -> int:
        """Authgear's token-endpoint budget per client IP and minute (120, not configurable
        there): ``manage.py authgear_status --fail-above`` measures the site's calls against it."""
        value = self._get(
            "AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE", DEFAULT_TOKEN_RATE_LIMIT_PER_MINUTE
        )
        return _integer("AUTHGEAR_TOKEN_RATE_LIMIT_PER_MINUTE", value, minimum=1)

    @property
    def AUTHGEAR_SESSION_CHECK_INTERVAL(self) -> int | None:
        """Seconds between two confirmations that a login's Authgear session is alive (one
        userinfo call); ``None``: never. Bounds how long a session ended at Authgear stays
        signed in here (Authgear has no back-channel logout)."""
        value = self._get("AUTHGEAR_SESSION_CHECK_INTERVAL", DEFAULT_SESSION_CHECK_INTERVAL)
        if value is None:
            return None
        try:
            return _integer("AUTHGEAR_SESSION_CHECK_INTERVAL", value, minimum=1)
        except SettingError:
            raise SettingError(
                "AUTHGEAR_SESSION_CHECK_INTERVAL must be a positive whole number of seconds "
                "or None.",
                hint="Use 300 (Authgear caches userinfo for 5 minutes) or None to turn it off.",
            ) from None

    @property
    def AUTHGEAR_EAGER_REFRESH(self) -> bool:
        """Refresh every login's access token before it expires, on any request (``True``), or
        only when code asks for the token and at the liveness check (``False``, the default:
        far fewer calls to Authgear's rate-limited token endpoint). Without a liveness check
        (``AUTHGEAR_SESSION_CHECK_INTERVAL = None``) refreshes are eager whatever this says."""
        return bool(self._get("AUTHGEAR_EAGER_REFRESH", False))

    @property
    def AUTHGEAR_MAX_STALENESS(self) -> int:
        """Seconds past its due liveness check a login may go unproven (no successful refresh
        or check) while Authgear is unreachable or rate limiting, before its requests get 503
        with ``Retry-After`` (never a logout)."""
        value = self._get("AUTHGEAR_MAX_STALENESS", DEFAULT_MAX_STALENESS)
        return _integer("AUTHGEAR_MAX_STALENESS", value, minimum=0)

    @property
    def AUTHGEAR_BROWSER_SSO_CHECK(self) -> bool:
        """Once per ``AUTHGEAR_SESSION_CHECK_INTERVAL``, send a signed-in browser's page load
        through Authgear with ``prompt=none`` and end the login here when Authgear's browser
        session is gone (``authgear_django.sso_check``). Off by default: it costs a redirect."""
        return bool(self._get("AUTHGEAR_BROWSER_SSO_CHECK", False))

    @property
    def AUTHGEAR_CLOCK_LEEWAY(self) -> int:
        """Seconds of clock skew tolerated on ``exp``/``iat`` of ID tokens."""
        return _integer("AUTHGEAR_CLOCK_LEEWAY", self._get("AUTHGEAR_CLOCK_LEEWAY", 60))

    @property
    def AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT(self) -> int:
        """Seconds a started login (state, nonce, PKCE verifier) stays valid."""
        return _integer(
            "AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT", self._get("AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT", 1800)
        )

    @property
    def AUTHGEAR_MAX_LOGIN_ATTEMPTS(self) -> int:
        """Concurrent login attempts kept per session (several tabs); the oldest is dropped."""
        return max(
            1, _integer("AUTHGEAR_MAX_LOGIN_ATTEMPTS", self._get("AUTHGEAR_MAX_LOGIN_ATTEMPTS", 10))
        )

    @property
    def AUTHGEAR_CREATE_USERS(self) -> bool:
        return bool(self._get("AUTHGEAR_CREATE_USERS", True))

    @property
    def AUTHGEAR_LINK_USERS_BY_EMAIL(self) -> bool:
        """Link a new Authgear user to an existing Django user with the same *verified* email."""
        return bool(self._get("AUTHGEAR_LINK_USERS_BY_EMAIL", False))

    @property
    def AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF(self) -> bool:
        """Let the email link reach staff and superuser accounts too (off: refused, because
        whoever controls the address at Authgear would become an administrator here)."""
        return bool(self._get("AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF", False))

    @property
    def AUTHGEAR_USERNAME_ALGO(self) -> Callable[..., Any] | None:
        """mozilla's ``OIDC_USERNAME_ALGO``: a callable (or its dotted path) taking ``(email)``
        or ``(email, claims)`` that names new users; ``None``: ``generate_username``."""
        value = self._get("AUTHGEAR_USERNAME_ALGO", None)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError:
                raise SettingError(
                    "AUTHGEAR_USERNAME_ALGO is not an importable dotted path."
                ) from None
        if not callable(value):
            raise SettingError("AUTHGEAR_USERNAME_ALGO must be a callable or its dotted path.")
        algorithm: Callable[..., Any] = value
        return algorithm

    @property
    def AUTHGEAR_ROLE_GROUPS(self) -> dict[str, list[str]] | str | None:
        """Authgear roles → Django groups: ``None`` (off), ``"*"`` (a group per role, same
        name), or a mapping ``{"role": "Group"}`` / ``{"role": ["Group", ...]}``."""
        value = self._get("AUTHGEAR_ROLE_GROUPS", None)
        if value is None or value == "*":
            return None if value is None else "*"
        if not isinstance(value, dict):
            raise SettingError(
                'AUTHGEAR_ROLE_GROUPS must be None, "*" or a dict.', check_id=BAD_ROLE_GROUPS
            )
        mapping: dict[str, list[str]] = {}
        for role, groups in value.items():
            names = [groups] if isinstance(groups, str) else groups
            if (
                not isinstance(role, str)
                or not isinstance(names, (list, tuple, set, frozenset))
                or not all(isinstance(n, str) and n for n in names)
            ):
                raise SettingError(
                    "AUTHGEAR_ROLE_GROUPS maps role keys to group names.",
                    check_id=BAD_ROLE_GROUPS,
                )
            mapping[role] = list(names)
        return mapping

    @property
    def AUTHGEAR_STAFF_ROLES(self) -> list[str] | None:
        """Roles that make a user ``is_staff`` (set and cleared at each login and refresh)."""
        return _role_names("AUTHGEAR_STAFF_ROLES", self._get("AUTHGEAR_STAFF_ROLES", None))

    @property
    def AUTHGEAR_SUPERUSER_ROLES(self) -> list[str] | None:
        """Roles that make a user ``is_superuser`` (set and cleared at each login and refresh)."""
        value = self._get("AUTHGEAR_SUPERUSER_ROLES", None)
        return _role_names("AUTHGEAR_SUPERUSER_ROLES", value)

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
        return max(
            0,
            _integer(
                "AUTHGEAR_API_USERINFO_CACHE_TTL", self._get("AUTHGEAR_API_USERINFO_CACHE_TTL", 60)
            ),
        )

    @property
    def AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS(self) -> frozenset[str] | None:
        """Client IDs whose access tokens API views accept (their ``client_id`` claim).

        ``None``: any client of the project, since Authgear's ``aud`` is the project origin.
        """
        value = self._get("AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS", None)
        if value is None:
            return None
        client_ids = [value] if isinstance(value, str) else value
        if (
            not isinstance(client_ids, (list, tuple, set, frozenset))
            or not client_ids
            or not all(isinstance(item, str) and item.strip() for item in client_ids)
        ):
            raise SettingError(
                "AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS must be None or a non-empty list of client IDs."
            )
        return frozenset(item.strip() for item in client_ids)

    @property
    def AUTHGEAR_WEBHOOK_SECRET(self) -> str | None:
        """The webhook signing secret (portal: Advanced → Hooks); ``None``: endpoint off."""
        value = self._get("AUTHGEAR_WEBHOOK_SECRET", None)
        return str(value) if value else None

    @property
    def AUTHGEAR_WEBHOOK_MAX_BODY_SIZE(self) -> int:
        """Largest webhook body accepted, in bytes (larger: 413)."""
        value = self._get("AUTHGEAR_WEBHOOK_MAX_BODY_SIZE", 1_048_576)
        return _integer("AUTHGEAR_WEBHOOK_MAX_BODY_SIZE", value, minimum=1)

    @property
    def AUTHGEAR_WEBHOOK_MAX_EVENT_AGE(self) -> int:
        """Seconds after which a webhook event is too old to apply (a replay, or a redelivery
        overtaken by newer state); Authgear redelivers for up to 3 days."""
        value = self._get("AUTHGEAR_WEBHOOK_MAX_EVENT_AGE", DEFAULT_WEBHOOK_MAX_EVENT_AGE)
        return _integer("AUTHGEAR_WEBHOOK_MAX_EVENT_AGE", value, minimum=1)

    @property
    def AUTHGEAR_WEBHOOK_EVENT_RETENTION(self) -> int:
        """Seconds a received event's record is kept (``authgear_cleanup`` deletes older ones).

        Must exceed ``AUTHGEAR_WEBHOOK_MAX_EVENT_AGE``: a record deleted while its event could
        still be accepted would let a redelivery of it be applied twice.
        """
        value = self._get("AUTHGEAR_WEBHOOK_EVENT_RETENTION", DEFAULT_WEBHOOK_EVENT_RETENTION)
        retention = _integer("AUTHGEAR_WEBHOOK_EVENT_RETENTION", value, minimum=1)
        if retention <= self.AUTHGEAR_WEBHOOK_MAX_EVENT_AGE:
            raise SettingError(
                "AUTHGEAR_WEBHOOK_EVENT_RETENTION must be longer than "
                "AUTHGEAR_WEBHOOK_MAX_EVENT_AGE.",
                hint="Otherwise a redelivered event could be applied twice.",
            )
        return retention

    @property
    def AUTHGEAR_WEBHOOK_DELETED_USERS(self) -> str:
        """What ``user.deleted`` / ``user.anonymized`` do here: ``"deactivate"`` or ``"delete"``."""
        value = str(self._get("AUTHGEAR_WEBHOOK_DELETED_USERS", "deactivate"))
        if value not in ("deactivate", "delete"):
            raise SettingError('AUTHGEAR_WEBHOOK_DELETED_USERS is "deactivate" or "delete".')
        return value

    @property
    def AUTHGEAR_TOKEN_ENCRYPTION_KEYS(self) -> list[str]:
        """Secrets the stored tokens are encrypted with; the first encrypts, all decrypt.

        Defaults to keys derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, so rotating
        Django's secret the documented way keeps old tokens readable.
        """
        value = self._get("AUTHGEAR_TOKEN_ENCRYPTION_KEYS", None)
        if value:
            keys = [value] if isinstance(value, str) else value
            if not isinstance(keys, (list, tuple)) or not all(
                isinstance(key, str) and key for key in keys
            ):
                raise SettingError(
                    "AUTHGEAR_TOKEN_ENCRYPTION_KEYS must be a list of non-empty strings."
                )
            return list(keys)
        keys = [str(self._get("SECRET_KEY", ""))]
        keys.extend(str(key) for key in self._get("SECRET_KEY_FALLBACKS", ()) or ())
        keys = [key for key in keys if key]
        if not keys:
            raise SettingError(
                "No token encryption key: AUTHGEAR_TOKEN_ENCRYPTION_KEYS and SECRET_KEY are empty."
            )
        return keys

    @property
    def token_keys_derived_from_secret_key(self) -> bool:
        return not self._get("AUTHGEAR_TOKEN_ENCRYPTION_KEYS", None)

    @property
    def AUTHGEAR_LOGIN_REDIRECT_URL(self) -> str:
        return str(self._get("AUTHGEAR_LOGIN_REDIRECT_URL", None) or self.LOGIN_REDIRECT_URL)

    @property
    def AUTHGEAR_REDIRECT_ALLOWED_HOSTS(self) -> Sequence[str]:
        """Extra hosts ``?next=`` may point at, besides the request's own host."""
        hosts = self._get("AUTHGEAR_REDIRECT_ALLOWED_HOSTS", ()) or ()
        if not isinstance(hosts, (list, tuple, set, frozenset)) or not all(
            isinstance(host, str) for host in hosts
        ):
            raise SettingError("AUTHGEAR_REDIRECT_ALLOWED_HOSTS must be a list of host names.")
        return tuple(hosts)

    @property
    def AUTHGEAR_LOGOUT_STATE_MAX_AGE(self) -> int:
        """Seconds the signed logout ``state`` cookie is accepted on the way back from
        Authgear's end-session endpoint."""
        value = self._get("AUTHGEAR_LOGOUT_STATE_MAX_AGE", DEFAULT_LOGOUT_STATE_MAX_AGE)
        return _integer("AUTHGEAR_LOGOUT_STATE_MAX_AGE", value, minimum=1)

    @property
    def AUTHGEAR_UI_LOCALES_FROM_LANGUAGE(self) -> bool:
        """Send the active Django language to Authgear as ``ui_locales`` (when no explicit
        ``ui_locales`` option is given), so Authgear's pages match the site's language."""
        return bool(self._get("AUTHGEAR_UI_LOCALES_FROM_LANGUAGE", True))

    # --- Django settings this app depends on -----------------------------------------------------

    @property
    def LOGIN_REDIRECT_URL(self) -> str:
        return str(self._get("LOGIN_REDIRECT_URL", "/") or "/")

    @property
    def LOGOUT_REDIRECT_URL(self) -> str:
        return str(self._get("LOGOUT_REDIRECT_URL", None) or "/")

    @property
    def LOGIN_URL(self) -> str:
        """Where Django sends anonymous visitors: a URL name or a URL (``reverse_lazy`` too)."""
        return str(self._get("LOGIN_URL", None) or "/accounts/login/")

    @property
    def SESSION_ENGINE(self) -> str:
        return str(self._get("SESSION_ENGINE", "django.contrib.sessions.backends.db"))

    @property
    def DEBUG(self) -> bool:
        return bool(self._get("DEBUG", False))

    @property
    def AUTH_USER_MODEL(self) -> str:
        return str(self._get("AUTH_USER_MODEL", "auth.User"))

    @property
    def CACHES(self) -> dict[str, dict[str, Any]]:
        return dict(self._get("CACHES", {}) or {})

    @property
    def MIDDLEWARE(self) -> list[str]:
        return list(self._get("MIDDLEWARE", ()) or ())

    @property
    def AUTHENTICATION_BACKENDS(self) -> list[str]:
        return list(self._get("AUTHENTICATION_BACKENDS", ()) or ())

    # --- for the system checks ---------------------------------------------------------------

    def problems(self) -> list[SettingError]:
        """Every ``AUTHGEAR_*`` setting that breaks its rule, exactly as its property raises it
        at use (each error once: a derived setting repeats the error of its source)."""
        found: dict[tuple[str, str], SettingError] = {}
        for name in vars(AuthgearSettings):
            if not name.startswith("AUTHGEAR_"):
                continue
            try:
                getattr(self, name)
            except SettingError as error:
                found.setdefault((error.check_id, str(error)), error)
            except ImproperlyConfigured:
                continue  # a rule without a check ID reports itself (e.g. E009)
        return list(found.values())

    def leftover_mozilla_settings(self) -> dict[str, str]:
        """mozilla-django-oidc ``OIDC_*`` settings still defined, each with what replaces it.

        We never read them, so e.g. ``OIDC_CREATE_USER = False`` silently does nothing.
        """
        names = sorted(name for name in dir(django_settings) if name.startswith("OIDC_"))
        return {name: _mozilla_equivalent(name) for name in names}

    # --- mozilla-django-oidc's backend lookups -----------------------------------------------

    def mozilla_setting(self, name: str, *default: Any) -> Any:
        """Answer ``AuthgearBackend.get_settings``: the ``OIDC_*`` names mozilla's backend (and a
        subclass written for it) asks, from our settings. Django's ``OIDC_*`` are never read."""
        values: dict[str, Callable[[], Any]] = {
            "OIDC_RP_CLIENT_ID": lambda: self.AUTHGEAR_CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": lambda: self.AUTHGEAR_CLIENT_SECRET,
            "OIDC_RP_SCOPES": lambda: self.AUTHGEAR_SCOPES,
            "OIDC_RP_SIGN_ALGO": lambda: "RS256",
            "OIDC_TIMEOUT": lambda: self.AUTHGEAR_HTTP_TIMEOUT,
            "OIDC_USE_NONCE": lambda: True,
            "OIDC_VERIFY_SSL": lambda: True,
            "OIDC_ALLOW_UNSECURED_JWT": lambda: False,
            "OIDC_CREATE_USER": lambda: self.AUTHGEAR_CREATE_USERS,
            "OIDC_USERNAME_ALGO": lambda: self.AUTHGEAR_USERNAME_ALGO,
            "OIDC_STORE_ACCESS_TOKEN": lambda: False,
            "OIDC_STORE_ID_TOKEN": lambda: False,
        }
        if name in values:
            return values[name]()
        if default:
            return default[0]
        raise ImproperlyConfigured(f"{name} is not used with authgear_django.")


# mozilla-django-oidc settings → what to set instead (docs/howto/migrate-from-mozilla.md, shorter).
MOZILLA_EQUIVALENTS: dict[str, str] = {
    "OIDC_RP_CLIENT_ID": "AUTHGEAR_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET": "AUTHGEAR_CLIENT_SECRET",
    "OIDC_RP_SCOPES": "AUTHGEAR_SCOPES",
    "OIDC_CREATE_USER": "AUTHGEAR_CREATE_USERS",
    "OIDC_USERNAME_ALGO": "AUTHGEAR_USERNAME_ALGO",
    "OIDC_TIMEOUT": "AUTHGEAR_HTTP_TIMEOUT",
    "OIDC_TOKEN_USE_BASIC_AUTH": "AUTHGEAR_CLIENT_AUTH_METHOD",
    "OIDC_AUTHENTICATION_CALLBACK_URL": "AUTHGEAR_REDIRECT_URI",
    "OIDC_MAX_STATES": "AUTHGEAR_MAX_LOGIN_ATTEMPTS",
    "OIDC_REDIRECT_ALLOWED_HOSTS": "AUTHGEAR_REDIRECT_ALLOWED_HOSTS",
    "OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS": "TokenRefreshMiddleware and AUTHGEAR_REFRESH_LEEWAY",
    "OIDC_AUTH_REQUEST_EXTRA_PARAMS": "AuthgearLoginView.as_view(extra_params={...})",
    "OIDC_STORE_ACCESS_TOKEN": "nothing: tokens are always stored encrypted; read them with "
    "authgear_django.api.get_access_token(request)",
    "OIDC_STORE_ID_TOKEN": "nothing: tokens are always stored encrypted",
}


def _mozilla_equivalent(name: str) -> str:
    if name in MOZILLA_EQUIVALENTS:
        return MOZILLA_EQUIVALENTS[name]
    if name.startswith("OIDC_OP_"):
        return "AUTHGEAR_ENDPOINT (endpoints come from discovery)"
    return (
        "nothing: authgear_django always does this the Authgear way "
        "(see the docs: howto/migrate-from-mozilla)"
    )


conf = AuthgearSettings()

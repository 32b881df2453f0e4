"""Protecting API views with Authgear access tokens (``Authorization: Bearer``).

``bearer_token_required`` (plain Django views) and ``authgear_django.contrib.drf`` (Django
REST framework) both call :func:`authenticate_bearer`: JWT access tokens are validated locally
(:mod:`authgear_django.access_tokens`); opaque ones, when ``AUTHGEAR_API_OPAQUE_TOKENS`` is on,
through Authgear's userinfo endpoint with a short per-token cache. ``request.user`` becomes
the Django user linked to the token's ``sub``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse

from authgear_django.access_tokens import (
    MAX_TOKEN_LENGTH,
    AccessToken,
    AccessTokenError,
    AccessTokenValidator,
)
from authgear_django.conf import conf
from authgear_django.exceptions import AccountError, AuthgearError, OAuthError, ProviderError
from authgear_django.models import AuthgearAccount
from authgear_django.provider import get_client
from authgear_django.responses import error_page

logger = logging.getLogger("authgear_django")

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])
_validators: dict[tuple[str, str, int, frozenset[str] | None], AccessTokenValidator] = {}
# RFC 6750 §2.1 b64token: anything else is refused before it reaches a parser or Authgear.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def get_validator() -> AccessTokenValidator:
    """The per-process validator for the configured project (keys and tokens cached in it)."""
    issuer, audience, leeway, client_ids = (
        conf.AUTHGEAR_ENDPOINT,
        conf.AUTHGEAR_API_AUDIENCE,
        conf.AUTHGEAR_CLOCK_LEEWAY,
        conf.AUTHGEAR_ACCESS_TOKEN_CLIENT_IDS,
    )
    key = (issuer, audience, leeway, client_ids)
    validator = _validators.get(key)
    if validator is None:
        validator = AccessTokenValidator(
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            keys_ttl=conf.AUTHGEAR_JWKS_CACHE_TTL,
            fetch_jwks=lambda force: get_client().jwks(force_refresh=force),
            client_ids=client_ids,
        )
        _validators[key] = validator
    return validator


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive), if any."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def authenticate_bearer(
    request: HttpRequest, *, required_scopes: Iterable[str] = ()
) -> tuple[AbstractBaseUser, AccessToken]:
    """Validate the request's bearer token and find its user; raise AccessTokenError if not."""
    token = bearer_token(request)
    if token is None:
        raise AccessTokenError("no bearer token", error="invalid_request")
    if len(token) > MAX_TOKEN_LENGTH or not _B64TOKEN.fullmatch(token):
        raise AccessTokenError("the token is malformed")
    scopes = tuple(required_scopes)
    if token.count(".") == 2:
        access_token = get_validator().validate(token, required_scopes=scopes)
    elif conf.AUTHGEAR_API_OPAQUE_TOKENS:
        access_token = _validate_opaque(token)
        if scopes:
            raise AccessTokenError(
                "scopes cannot be checked on opaque tokens; enable JWT access tokens",
                error="insufficient_scope",
                status=403,
            )
    else:
        raise AccessTokenError("the token is not a JWT access token")
    return _user_for(access_token), access_token


def _validate_opaque(token: str) -> AccessToken:
    """Ask Authgear's userinfo endpoint, caching the answer per token for a short time."""
    cache = caches[conf.AUTHGEAR_CACHE_ALIAS]
    cache_key = "authgear_django:opaque:" + hashlib.sha256(token.encode()).hexdigest()
    claims = cache.get(cache_key)
    if not isinstance(claims, dict):
        try:
            claims = get_client().userinfo(token)
        except OAuthError:
            raise AccessTokenError("Authgear does not accept this token") from None
        except ProviderError as exc:
            raise AccessTokenError(
                f"cannot check the token with Authgear now ({type(exc).__name__})",
                error="temporarily_unavailable",
                status=503,
            ) from None
        if not isinstance(claims.get("sub"), str):
            raise AccessTokenError("Authgear's answer has no subject")
        cache.set(cache_key, claims, conf.AUTHGEAR_API_USERINFO_CACHE_TTL)
    return AccessToken(claims={"exp": float("inf"), **claims})


def _user_for(access_token: AccessToken) -> AbstractBaseUser:
    account = AuthgearAccount.objects.select_related("user").filter(sub=access_token.sub).first()
    if account is None:
        if not conf.AUTHGEAR_API_CREATE_USERS:
            raise AccessTokenError(
                "no user here is linked to this token", error="unknown_user", status=403
            )
        from authgear_django.backends import AuthgearBackend

        try:
            account, _ = AuthgearBackend().link_new_account(access_token.claims, allow_create=True)
        except AccountError as exc:
            raise AccessTokenError(str(exc), error="unknown_user", status=403) from None
    user = account.user
    if not getattr(user, "is_active", True):
        raise AccessTokenError("the user is inactive", error="inactive_user", status=403)
    return cast(AbstractBaseUser, user)


def error_response(error: AccessTokenError, *, required_scopes: Iterable[str] = ()) -> JsonResponse:
    """401/403/503 JSON with an RFC 6750 ``WWW-Authenticate`` header."""
    response = JsonResponse(
        {"error": error.error, "error_description": error.description}, status=error.status
    )
    if error.status == 401 and error.error == "invalid_request":
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    elif error.status == 401:
        response["WWW-Authenticate"] = (
            f'Bearer realm="api", error="invalid_token", error_description="{error.description}"'
        )
    elif error.error == "insufficient_scope":
        scope = " ".join(required_scopes)
        response["WWW-Authenticate"] = (
            f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'
        )
    elif error.status == 503:
        response["Retry-After"] = "10"
    return response


def bearer_token_required(view: ViewFunc | None = None, *, scopes: Iterable[str] = ()) -> Any:
    """Decorator for API views: a valid Authgear access token, optionally with ``scopes``.

    ``@bearer_token_required`` or ``@bearer_token_required(scopes=["orders:read"])``. The view
    sees ``request.user`` (and ``await request.auser()``) and ``request.authgear_token`` (an
    :class:`AccessToken`). Works on ``async def`` views too: the wrapper is then async and the
    check (database, and Authgear when keys must be fetched) runs in Django's sync thread.
    """
    required = tuple(scopes)

    def decorate(func: ViewFunc) -> ViewFunc:
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await sync_to_async(_admit_bearer)(request, required)
                if refused is not None:
                    return refused
                return await func(request, *args, **kwargs)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                refused = _admit_bearer(request, required)
                if refused is not None:
                    return refused
                return func(request, *args, **kwargs)

            wrapper = sync_wrapper
        setattr(wrapper, "csrf_exempt", True)  # noqa: B010 - bearer tokens are not cookies
        # The token decides, not a session: Django 5.1's LoginRequiredMiddleware must let the
        # request through to us (this is what its ``login_not_required`` sets).
        setattr(wrapper, "login_required", False)  # noqa: B010
        return cast(ViewFunc, wrapper)

    if view is not None:
        return decorate(view)
    return decorate


def _admit_bearer(request: HttpRequest, required: tuple[str, ...]) -> HttpResponse | None:
    """Check the token; on success put its user on the request and return None, else the
    401/403/503 answer. Sync (database, maybe Authgear): async views call it in a thread."""
    try:
        user, access_token = authenticate_bearer(request, required_scopes=required)
    except AccessTokenError as error:
        if error.status >= 500:
            logger.warning("authgear_django: bearer check unavailable: %s", error)
        return error_response(error, required_scopes=required)
    except AuthgearError as error:  # pragma: no cover - defensive: never a 500
        logger.warning("authgear_django: bearer check failed: %s", error)
        return error_response(
            AccessTokenError(
                str(error_page(error).message), error="temporarily_unavailable", status=503
            )
        )

    async def token_user() -> AbstractBaseUser:
        return user

    request.user = user  # type: ignore[assignment]
    # Django's own request.auser would load the session's user (usually anonymous here)
    request.auser = token_user  # type: ignore[assignment]
    request.authgear_token = access_token  # type: ignore[attr-defined]
    return None

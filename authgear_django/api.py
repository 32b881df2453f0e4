"""Calling an API with the user's Authgear access token (the guide's last step).

``get_access_token(request)`` returns a valid access token, refreshing it first when due (with
lazy refreshes, the default, this is where a page's expired token is renewed) and never an
expired one: when none can be had right now it raises :class:`NoAccessToken` with
``retry_after`` (``TokenRefreshMiddleware`` answers an uncaught one with 503 + ``Retry-After``,
or with a logout and the login page when the login has ended).
``AuthgearBearerAuth(request)`` is a ``requests`` auth that adds ``Authorization: Bearer`` and,
when the API answers 401, refreshes once and retries once; the token only ever goes to the
origin of the URL the caller asked for (never to where a redirect leads elsewhere).
``authgear_session(request)`` is a ``requests.Session`` with that auth and our timeout as
default.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from django.http import HttpRequest, HttpResponse, JsonResponse
from requests.structures import CaseInsensitiveDict

from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AuthgearError, NoAccessToken, ProviderRateLimited
from authgear_django.models import AuthgearLogin
from authgear_django.refresh import (
    Outcome,
    RefreshResult,
    refresh_due_in_session,
    refresh_session_login,
)
from authgear_django.store import access_token_due, current_login, read_entry
from authgear_django.token_endpoint import current_backoff

__all__ = [  # NoAccessToken lives in authgear_django.exceptions; this path keeps working
    "AuthgearBearerAuth",
    "NoAccessToken",
    "TokenEndpointBackingOff",
    "authgear_session",
    "get_access_token",
    "refresh_access_token",
    "retry_later_response",
]


class TokenEndpointBackingOff(NoAccessToken):
    """No usable token right now: the access token has expired while refreshes back off after
    Authgear's token endpoint answered 429. Not a logout: retry after ``retry_after`` seconds
    (answer 503 with ``Retry-After``: :func:`retry_later_response`). ``retry_after`` itself
    lives on :class:`NoAccessToken`; this name says why."""

    def __init__(self, description: str, *, outcome: Any = None, retry_after: int) -> None:
        super().__init__(description, outcome=outcome, retry_after=retry_after)


def retry_later_response(error: AuthgearError) -> HttpResponse | None:
    """503 JSON with ``Retry-After`` for an error that says when to come back, else ``None``.

    For views that call :func:`get_access_token` themselves (no middleware needed)::

        try:
            token = get_access_token(request)
        except NoAccessToken as error:
            return retry_later_response(error) or redirect_to_login(request.get_full_path())
    """
    retry_after = getattr(error, "retry_after", None)
    if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 1:
        return None
    response = JsonResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "Sign-in service busy; please retry shortly.",
        },
        status=503,
    )
    response["Retry-After"] = str(retry_after)
    return response


def _no_access_token(result: RefreshResult) -> NoAccessToken:
    """The error for a refresh that left no token: with ``retry_after`` unless it ended."""
    description = f"refresh {result.outcome.value}"
    if result.outcome is Outcome.ENDED:
        return NoAccessToken(description, outcome=result.outcome)
    if isinstance(result.error, ProviderRateLimited):
        return TokenEndpointBackingOff(
            description,
            outcome=result.outcome,
            retry_after=result.retry_after or result.error.retry_after or 1,
        )
    return NoAccessToken(
        description,
        outcome=result.outcome,
        retry_after=result.retry_after or conf.AUTHGEAR_REFRESH_RETRY_INTERVAL or 1,
    )


def get_access_token(request: HttpRequest) -> str:
    """A valid, unexpired access token of this request's Authgear login; refreshes it first
    when it is due (single flight: one refresh per login however many requests ask).

    Raises :class:`NoAccessToken`: without ``retry_after`` when there is no login to use,
    with it when the token has expired and Authgear cannot renew it right now.
    """
    now = time.time()
    login = current_login(request)
    if login is None:
        raise NoAccessToken("no Authgear login in this session", outcome=Outcome.ENDED)
    if refresh_due_in_session(request.session, now) or access_token_due(login, now):
        result = refresh_session_login(request.session, need_token=True)
        if result.outcome in (Outcome.ENDED, Outcome.UNAVAILABLE):
            raise _no_access_token(result)
        login = result.login if result.login is not None else current_login(request)
        if login is None:
            raise NoAccessToken("no Authgear login in this session", outcome=Outcome.ENDED)
    return _unexpired_token(request, login)


def _unexpired_token(request: HttpRequest, login: AuthgearLogin) -> str:
    """The login's access token, unless it has expired (the refresh was put off: Authgear is
    unreachable or rate limiting). An expired token would only earn a 401 from the API."""
    token = _decrypted_access_token(login)
    expires_at = login.access_token_expires_at
    now = time.time()
    if expires_at is None or now < expires_at.timestamp():
        return token
    if not login.encrypted_refresh_token:
        # nothing can renew it: the login is over as far as APIs are concerned
        raise NoAccessToken("the access token has expired", outcome=Outcome.ENDED)
    entry = read_entry(request.session)
    wait = conf.AUTHGEAR_REFRESH_RETRY_INTERVAL
    if entry is not None and entry.retry_at is not None and entry.retry_at > now:
        wait = math.ceil(entry.retry_at - now)
    backoff = current_backoff(now)
    description = "the access token has expired and cannot be refreshed right now"
    if backoff is not None:
        raise TokenEndpointBackingOff(
            description,
            outcome=Outcome.UNAVAILABLE,
            retry_after=max(wait, backoff.retry_after(now)),
        )
    raise NoAccessToken(description, outcome=Outcome.UNAVAILABLE, retry_after=max(1, wait))


def refresh_access_token(request: HttpRequest, *, rejected_access_token: str | None) -> str:
    """Force a refresh because an API rejected ``rejected_access_token``; returns the new one.

    An empty ``rejected_access_token`` is nothing to compare (like None): the refresh happens.
    Compared as a token, it would match none and turn the refresh into a no-op.
    """
    result = refresh_session_login(
        request.session, force=True, rejected_access_token=rejected_access_token or None
    )
    if not result.usable:
        raise _no_access_token(result)
    return _stored_access_token(request)


def _stored_access_token(request: HttpRequest) -> str:
    login = current_login(request)
    if login is None:
        raise NoAccessToken("no Authgear login in this session", outcome=Outcome.ENDED)
    return _decrypted_access_token(login)


def _decrypted_access_token(login: AuthgearLogin) -> str:
    try:
        token = login.access_token
    except TokenDecryptionError as exc:
        raise NoAccessToken(str(exc), outcome=Outcome.ENDED) from None
    if not token:
        raise NoAccessToken("login has no access token", outcome=Outcome.ENDED)
    return token


class AuthgearBearerAuth(requests.auth.AuthBase):
    """``requests`` auth: Bearer token of the request's login; one refresh-and-retry on 401.

    The token goes only to the origin (scheme, host, port) of the URL the caller asked for: a
    redirect elsewhere drops it, and a 401 from elsewhere is passed on, never retried with it.
    """

    def __init__(self, request: HttpRequest) -> None:
        self.django_request = request

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        token = get_access_token(self.django_request)
        prepared.headers["Authorization"] = f"Bearer {token}"
        call = _BearerCall(self.django_request, asked_origin=_origin(prepared.url))
        prepared.register_hook("response", call.on_response)  # type: ignore[no-untyped-call]
        return prepared


Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str | None) -> Origin | None:
    """``(scheme, host, port)`` of ``url``; None when it cannot be told (it then matches none)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. a port out of range, a broken IPv6 literal
        return None
    scheme = parts.scheme.lower()
    port = port or _DEFAULT_PORTS.get(scheme)
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname, port


def _redirect_target(response: requests.Response) -> str | None:
    """Where ``requests`` will go next, resolved as it does (relative and ``//host`` forms)."""
    if not response.is_redirect:
        return None
    try:
        return urljoin(response.url, response.headers["Location"])
    except ValueError:
        return ""  # unparsable: an unknown origin, so the token is dropped


def _sent_bearer_token(prepared: requests.PreparedRequest) -> str | None:
    """The Bearer token ``prepared`` carried; None when it carried none (or an empty one)."""
    header = prepared.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


if TYPE_CHECKING:
    _Headers = CaseInsensitiveDict[str]
else:  # not subscriptable at run time before requests 2.33
    _Headers = CaseInsensitiveDict


class _NextHopHeaders(_Headers):
    """The headers of a request already sent, whose copies carry ``authorization`` instead.

    ``requests`` builds the next redirect hop from ``copy()`` of the request that got the
    redirect (and strips ``Authorization`` only on a change of host, or of port or scheme
    except http -> https). Overriding ``copy`` decides what that hop sends, and leaves the sent
    request showing what it really sent (``response.history``, ``responses.calls``).
    """

    def __init__(self, sent: CaseInsensitiveDict[str], *, authorization: str | None) -> None:
        super().__init__(sent)
        self.next_hop_authorization = authorization

    def copy(self) -> CaseInsensitiveDict[str]:
        headers = super().copy()
        if self.next_hop_authorization is None:
            headers.pop("Authorization", None)
        else:
            headers["Authorization"] = self.next_hop_authorization
        return headers


class _BearerCall:
    """One call through :class:`AuthgearBearerAuth`, shared by all of its hops.

    ``requests`` gives each redirect hop and our retry a copy of the hooks but of no other
    attribute, so the asked origin and the one-retry budget live here, in the hook's object.
    """

    def __init__(self, django_request: HttpRequest, *, asked_origin: Origin | None) -> None:
        self.django_request = django_request
        self.asked_origin = asked_origin
        self.retried = False

    def is_asked_origin(self, url: str | None) -> bool:
        return self.asked_origin is not None and _origin(url) == self.asked_origin

    def on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Retry a 401 of the asked origin once; keep the token off a redirect elsewhere."""
        sent = response.request
        next_hop_authorization = sent.headers.get("Authorization")
        if response.status_code == 401 and not self.retried and self.is_asked_origin(sent.url):
            response = self._retry(response, **kwargs)
            next_hop_authorization = response.request.headers["Authorization"]
        target = _redirect_target(response)
        if target is not None and not self.is_asked_origin(target):
            next_hop_authorization = None
        if next_hop_authorization != sent.headers.get("Authorization"):
            sent.headers = _NextHopHeaders(sent.headers, authorization=next_hop_authorization)
        return response

    def _retry(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        self.retried = True
        rejected = _sent_bearer_token(response.request)
        if rejected is None:
            # The API saw no token of ours (a hop through another origin dropped it): nothing
            # was rejected, so nothing to refresh; send the current one.
            token = get_access_token(self.django_request)
        else:
            token = refresh_access_token(self.django_request, rejected_access_token=rejected)
        response.content  # noqa: B018 - drain so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        new_response: requests.Response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response


class _TimeoutSession(requests.Session):
    def request(self, method: str | bytes, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", conf.AUTHGEAR_HTTP_TIMEOUT)
        return super().request(method, url, **kwargs)


def authgear_session(request: HttpRequest) -> requests.Session:
    """A ``requests.Session`` calling APIs as the request's user, with a default timeout."""
    session = _TimeoutSession()
    session.auth = AuthgearBearerAuth(request)
    return session

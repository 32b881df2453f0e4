"""Calling an API with the user's Authgear access token (the guide's last step).

``get_access_token(request)`` returns a valid access token, refreshing it first when due.
``AuthgearBearerAuth(request)`` is a ``requests`` auth that adds ``Authorization: Bearer`` and,
when the API answers 401, refreshes once and retries once. ``authgear_session(request)`` is a
``requests.Session`` with that auth and our timeout as default.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from django.http import HttpRequest

from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import AuthgearError
from authgear_django.refresh import Outcome, refresh_due_in_session, refresh_session_login
from authgear_django.store import current_login


class NoAccessToken(AuthgearError):
    """The request has no usable Authgear login (anonymous, logged out, or Authgear down)."""

    http_status = 401
    title = "Not signed in with Authgear"
    user_message = "Please sign in again."

    def __init__(self, detail: str, *, outcome: Outcome | None = None) -> None:
        super().__init__(detail)
        self.outcome = outcome


def get_access_token(request: HttpRequest) -> str:
    """A valid access token of this request's Authgear login; refreshes first when it is due.

    Raises :class:`NoAccessToken` when there is none to give.
    """
    if refresh_due_in_session(request.session, time.time()):
        result = refresh_session_login(request.session)
        if result.outcome in (Outcome.ENDED, Outcome.UNAVAILABLE):
            raise NoAccessToken(f"refresh {result.outcome.value}", outcome=result.outcome)
    return _stored_access_token(request)


def refresh_access_token(request: HttpRequest, *, rejected_access_token: str | None) -> str:
    """Force a refresh because an API rejected ``rejected_access_token``; returns the new one."""
    result = refresh_session_login(
        request.session, force=True, rejected_access_token=rejected_access_token
    )
    if not result.usable:
        raise NoAccessToken(f"refresh {result.outcome.value}", outcome=result.outcome)
    return _stored_access_token(request)


def _stored_access_token(request: HttpRequest) -> str:
    login = current_login(request)
    if login is None:
        raise NoAccessToken("no Authgear login in this session", outcome=Outcome.ENDED)
    try:
        token = login.access_token
    except TokenDecryptionError as exc:
        raise NoAccessToken(str(exc), outcome=Outcome.ENDED) from None
    if not token:
        raise NoAccessToken("login has no access token", outcome=Outcome.ENDED)
    return token


class AuthgearBearerAuth(requests.auth.AuthBase):
    """``requests`` auth: Bearer token of the request's login; one refresh-and-retry on 401."""

    def __init__(self, request: HttpRequest) -> None:
        self.django_request = request

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        token = get_access_token(self.django_request)
        prepared.headers["Authorization"] = f"Bearer {token}"
        prepared.register_hook("response", self._retry_once_on_401)  # type: ignore[no-untyped-call]
        return prepared

    def _retry_once_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or getattr(response.request, "_authgear_retried", False):
            return response
        used = (response.request.headers.get("Authorization") or "")[7:]
        token = refresh_access_token(self.django_request, rejected_access_token=used)
        response.content  # noqa: B018 - drain so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        retry._authgear_retried = True  # type: ignore[attr-defined]
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

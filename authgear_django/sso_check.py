"""The optional browser SSO check (``AUTHGEAR_BROWSER_SSO_CHECK``, off by default).

The userinfo liveness check (:mod:`authgear_django.refresh`) asks whether the login's *grant*
is alive. Authgear also keeps a *browser* session (its own cookie, on its own domain), which
ends when the person signs out at Authgear or another app of the same Authgear project; the
grant of this site may outlive it. Only the browser can tell, so, at most once per
``AUTHGEAR_SESSION_CHECK_INTERVAL`` per Django session, a signed-in person's top-level page
load makes a round trip through Authgear's authorize endpoint with ``prompt=none``:

- the middleware (:class:`~authgear_django.middleware.TokenRefreshMiddleware`) sees a GET
  navigation of a signed-in session whose check is due, records the time of the attempt
  *first* (so whatever happens next, there is one attempt per interval and never a loop) and
  answers with :func:`start_sso_check`'s redirect: ``prompt=none``, scope ``openid`` only, our
  callback, a fresh state/nonce/PKCE, and ``next`` = the page asked for. The attempt is a
  normal login attempt whose state starts with :data:`SSO_STATE_PREFIX`: that prefix marks it,
  so the callback never turns it into a login, even with several tabs in flight;
- the callback (:func:`finish_sso_check`): ``login_required`` (or ``interaction_required``,
  ``consent_required``) ends the Django login (reason ``sso_ended``, no revocation); a code is
  exchanged and its ID token verified, the tokens are dropped (never stored; scope ``openid``
  issues no refresh token), and a ``sub`` other than the login's ends the login too; anything
  else (Authgear down, a bad answer, an expired attempt) keeps the person signed in. Either
  way the browser lands on the page it asked for (which asks an ended login to sign in).

Never for POST, XHR/fetch, API (an ``Authorization`` header) or prefetch requests, nor in
front of this app's own views. Authgear refuses ``prompt=none`` with ``max_age``: none is sent.

The due time lives under its own session key (:data:`SSO_CHECK_AT_KEY`, ``[login id, due
at]``), not in the session entry, because the entry is rewritten by every refresh; it is read
only when ``request.user`` is loaded (the session is loaded then anyway), only for a GET and
only with the setting on (the settings are cached: ~0.2 µs per such request when off). A login
seen for the first time starts its clock (first check one interval later): it has just been
through Authgear.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from django.contrib import auth, messages
from django.contrib.sessions.backends.base import SessionBase
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.cache import add_never_cache_headers

from authgear_django.authorization import LoginAttempt
from authgear_django.conf import conf
from authgear_django.exceptions import AuthgearError
from authgear_django.login_flow import callback_uri, exchange_code, verify_id_token
from authgear_django.logsafe import printable
from authgear_django.models import AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.responses import (
    MAX_LOGGED_DETAIL,
    MAX_PARAMETER_LENGTH,
    SESSION_ENDED,
    safe_next_url,
)
from authgear_django.session_entry import SESSION_LOGIN_KEY
from authgear_django.store import (
    current_login,
    end_logins,
    forget_login,
    pop_attempt,
    read_entry,
    remember_attempt,
)

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

#: Session key of ``[login id, Unix time the next SSO check of that login is due]``.
SSO_CHECK_AT_KEY = "_authgear_sso_check_at"
#: The state of every SSO-check attempt starts with this: the callback tells it from a login.
SSO_STATE_PREFIX = "sso."
SSO_SCOPE = "openid"
#: ``login_revoked``'s reason when the SSO check ended a login.
SSO_ENDED = "sso_ended"
#: Authgear's answers to ``prompt=none`` meaning "no usable browser session for this user".
ENDED_ERRORS = frozenset({"login_required", "interaction_required", "consent_required"})


# --- the middleware's side --------------------------------------------------------------------


def is_page_navigation(request: HttpRequest) -> bool:
    """A top-level page load by a browser, the only request a redirect to Authgear may answer.

    Fetch metadata decides when the browser sends it (``Sec-Fetch-Mode: navigate``,
    ``Sec-Fetch-Dest: document``: not an iframe, image or fetch); otherwise an ``Accept``
    with ``text/html`` and no XHR marker. An ``Authorization`` header is an API client, and a
    prefetch must not spend the interval's one attempt.
    """
    if request.method != "GET":
        return False
    headers = request.headers
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None and mode != "navigate":
        return False
    destination = headers.get("Sec-Fetch-Dest")
    if destination is not None and destination != "document":
        return False
    if headers.get("X-Requested-With") == "XMLHttpRequest" or "Authorization" in headers:
        return False
    purpose = f"{headers.get('Sec-Purpose', '')} {headers.get('Purpose', '')}".lower()
    if "prefetch" in purpose or "prerender" in purpose:
        return False
    return "text/html" in headers.get("Accept", "")


@dataclass(frozen=True)
class SsoCheckSettings:
    """The two settings the middleware reads on every GET that loads the user."""

    enabled: bool
    interval: int  # AUTHGEAR_SESSION_CHECK_INTERVAL (``None`` there turns the check off)


_cached_settings: list[SsoCheckSettings] = []


def sso_check_settings() -> SsoCheckSettings:
    """``AUTHGEAR_BROWSER_SSO_CHECK`` and the interval, read once (until a setting changes, as
    in tests): read through ``conf`` on each request, a missing setting cost ~5 µs, ten times
    the refresh middleware's own hot-path check."""
    if not _cached_settings:
        enabled = conf.AUTHGEAR_BROWSER_SSO_CHECK
        interval = conf.AUTHGEAR_SESSION_CHECK_INTERVAL if enabled else None
        _cached_settings.append(SsoCheckSettings(interval is not None, interval or 0))
    return _cached_settings[0]


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("AUTHGEAR_BROWSER_SSO_CHECK", "AUTHGEAR_SESSION_CHECK_INTERVAL"):
        _cached_settings.clear()


def sso_check_due(session: SessionBase, now: float) -> bool:
    """Whether this signed-in session's SSO check is due. A due time belongs to one login (it
    is stored as ``[login id, due at]``): a session without one for its current login (new,
    signed in again, or from before the setting) gets one, an interval from now, and is not
    due."""
    settings = sso_check_settings()
    if not settings.enabled:
        return False
    entry = session.get(SESSION_LOGIN_KEY)
    if not isinstance(entry, (list, tuple)) or not entry:
        return False  # not signed in through Authgear
    stored = session.get(SSO_CHECK_AT_KEY)
    if isinstance(stored, (list, tuple)) and len(stored) == 2 and stored[0] == entry[0]:
        due_at = stored[1]
        if (
            not isinstance(due_at, bool)
            and isinstance(due_at, (int, float))
            and math.isfinite(due_at)
            and due_at <= now + settings.interval  # else tampered, or the interval shortened
        ):
            return now >= due_at
    _plan_next_check(session, entry[0], now)
    return False


def _plan_next_check(session: SessionBase, login_id: object, now: float) -> None:
    session[SSO_CHECK_AT_KEY] = [login_id, math.ceil(now + sso_check_settings().interval)]


def start_sso_check(request: HttpRequest, now: float) -> HttpResponse | None:
    """Record this attempt, then the redirect through Authgear with ``prompt=none``; ``None``
    (the page is served as usual) when the attempt cannot be built (e.g. discovery down)."""
    session = request.session
    entry = session.get(SESSION_LOGIN_KEY)
    if not sso_check_settings().enabled or not isinstance(entry, (list, tuple)):
        return None
    if read_entry(session) is None:
        return None  # a malformed entry: no login to check
    _plan_next_check(session, entry[0], now)  # first: one attempt per interval, whatever comes
    try:
        client = get_client()
        attempt = LoginAttempt.start(
            redirect_uri=callback_uri(request), next_url=request.get_full_path()
        )
        attempt = replace(attempt, state=SSO_STATE_PREFIX + attempt.state)
        params = attempt.authorization_params(
            client_id=client.client_id, scope=SSO_SCOPE, options={"prompt": "none"}
        )
        url = client.authorization_url(params)
    except AuthgearError as error:
        logger.warning(
            "authgear_django: SSO check skipped: %s", printable(error, limit=MAX_LOGGED_DETAIL)
        )
        return None
    remember_attempt(session, attempt, limit=conf.AUTHGEAR_MAX_LOGIN_ATTEMPTS)
    response = HttpResponseRedirect(url)
    add_never_cache_headers(response)  # the page's URL answered with a one-off redirect
    return response


# --- the callback's side ----------------------------------------------------------------------


def is_sso_check_callback(request: HttpRequest) -> bool:
    """The callback carries the state of an SSO check, not of a login."""
    return request.GET.get("state", "").startswith(SSO_STATE_PREFIX)


def finish_sso_check(request: HttpRequest) -> HttpResponse:
    """Answer Authgear's reply to an SSO check: end the login if its browser session is gone,
    keep it otherwise, and land on the page asked for. Never logs anyone in, never an error
    page (the person did not ask for this round trip)."""
    session = request.session
    state = request.GET.get("state", "")
    attempt = pop_attempt(session, state) if len(state) <= MAX_PARAMETER_LENGTH else None
    if attempt is None:
        security_logger.info("authgear_django: SSO check reply with an unknown or used state")
        return _land(request, None)
    session.save()  # burn the state now: a replayed reply finds nothing
    login = current_login(request)
    if login is None:
        return _land(request, attempt)  # signed out meanwhile: nothing left to check
    error = request.GET.get("error", "")[:100]
    if error in ENDED_ERRORS:
        logger.info(
            "authgear_django: login %s: Authgear browser session ended (%s)",
            login.pk,
            printable(error, limit=MAX_LOGGED_DETAIL),
        )
        return _end_login(request, login, attempt)
    if error:
        return _kept(request, login, attempt, f"Authgear answered {error}")
    if attempt.is_expired(conf.AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT):
        return _kept(request, login, attempt, "the attempt expired")
    code = request.GET.get("code", "")
    if not code or len(code) > MAX_PARAMETER_LENGTH:
        return _kept(request, login, attempt, "the reply has no usable code")
    try:
        tokens = exchange_code(attempt, code)
        assert tokens.id_token  # exchange_code refuses a response without one
        claims = verify_id_token(tokens.id_token, nonce=attempt.nonce)
    except AuthgearError as failure:
        return _kept(request, login, attempt, str(failure))
    # The tokens are dropped here: the check needed only the ID token's verified sub.
    if claims.get("sub") != login.account.sub:
        security_logger.warning(
            "authgear_django: login %s: Authgear's browser session is another user's; ending it",
            login.pk,
        )
        return _end_login(request, login, attempt)
    return _land(request, attempt)


def _kept(
    request: HttpRequest, login: AuthgearLogin, attempt: LoginAttempt, reason: str
) -> HttpResponse:
    """An SSO check that told nothing: the person stays signed in (next one an interval on)."""
    logger.warning(
        "authgear_django: SSO check of login %s inconclusive: %s",
        login.pk,
        printable(reason, limit=MAX_LOGGED_DETAIL),
    )
    return _land(request, attempt)


def _end_login(request: HttpRequest, login: AuthgearLogin, attempt: LoginAttempt) -> HttpResponse:
    """End the login here (Authgear ended it already: nothing to revoke) and land."""
    end_logins([login], reason=SSO_ENDED, revoke=False, end_sessions=False)
    forget_login(request.session)
    auth.logout(request)
    messages.info(request, SESSION_ENDED, fail_silently=True)
    return _land(request, attempt)


def _land(request: HttpRequest, attempt: LoginAttempt | None) -> HttpResponse:
    """The page the check interrupted (checked again), else ``AUTHGEAR_LOGIN_REDIRECT_URL``."""
    next_url = safe_next_url(request, attempt.next_url) if attempt is not None else None
    response = HttpResponseRedirect(next_url or resolve_url(conf.AUTHGEAR_LOGIN_REDIRECT_URL))
    add_never_cache_headers(response)
    return response

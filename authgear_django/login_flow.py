"""The login flow, in one place: start, take the attempt back, exchange, verify, reauthenticate.

1. :func:`start_login` builds a :class:`~authgear_django.authorization.LoginAttempt` (state,
   nonce, PKCE S256, Authgear options), remembers it in the session and returns Authgear's
   authorize URL (:func:`begin_login` wraps it in a redirect or an error page).
2. At the callback, :func:`take_attempt` takes the attempt back by ``state`` (single use).
3. :func:`authenticate_callback` runs Django's ``authenticate`` (the backend exchanges the code
   with :func:`exchange_code` and verifies the ID token with :func:`verify_id_token`), receives
   the backend's :class:`LoginResult` through the request (:func:`record_login_result`) and
   applies the reauthentication rules (:func:`check_reauthentication`).

:func:`verify_id_token` is the one place where our settings meet the ID-token rules: logins and
refreshes (:mod:`authgear_django.refresh`) both verify through it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import authenticate, user_login_failed
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone, translation

from authgear_django import token_endpoint, verification
from authgear_django.authorization import LoginAttempt, clean_login_options, trusted_login_hint
from authgear_django.client import AuthgearClient, TokenSet
from authgear_django.conf import conf
from authgear_django.crypto import TokenDecryptionError
from authgear_django.exceptions import (
    AuthgearError,
    AuthorizationDenied,
    ConfigurationError,
    LoginAttemptError,
    NotAnAuthgearUser,
    ProviderRateLimited,
    ReauthenticationFailed,
    TokenValidationError,
)
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.provider import get_client
from authgear_django.responses import MAX_PARAMETER_LENGTH, error_response
from authgear_django.store import pop_attempt, remember_attempt

REAUTHENTICATION_OPTIONS = {"prompt": "login"}


@dataclass
class LoginResult:
    """What the backend hands the callback view after it accepted a login."""

    tokens: TokenSet = field(repr=False)
    id_token_claims: dict[str, Any] = field(repr=False)
    claims: dict[str, Any] = field(repr=False)
    account: AuthgearAccount
    created: bool


# --- 1. start ---------------------------------------------------------------------------------


def callback_uri(request: HttpRequest) -> str:
    """Our ``redirect_uri``: ``AUTHGEAR_REDIRECT_URI``, else the callback URL on this host."""
    return conf.AUTHGEAR_REDIRECT_URI or request.build_absolute_uri(
        reverse("authgear_django:callback")
    )


def language_tag(language_code: str) -> str:
    """A Django language code as the BCP 47 tag Authgear expects: ``zh-hant`` → ``zh-Hant``,
    ``en-us`` → ``en-US``, ``fr`` → ``fr``, ``es-419`` unchanged.

    Django lowercases its codes; BCP 47 writes scripts in title case and regions in capitals,
    and Authgear matches its locales by those tags.
    """
    first, *rest = language_code.replace("_", "-").split("-")
    subtags = [first.lower()]
    for index, subtag in enumerate(rest):
        if len(subtag) == 1:  # an extension or private-use singleton: the rest is not cased
            subtags.extend(part.lower() for part in rest[index:])
            break
        if len(subtag) == 4 and subtag.isalpha():
            subtags.append(subtag.title())
        elif len(subtag) == 2 and subtag.isalpha():
            subtags.append(subtag.upper())
        else:
            subtags.append(subtag.lower())
    return "-".join(subtags)


def with_default_ui_locales(options: dict[str, str]) -> dict[str, str]:
    """``options`` plus ``ui_locales`` from the active language, so Authgear's pages speak the
    language of the page the person came from; an explicit ``ui_locales`` wins, and
    ``AUTHGEAR_UI_LOCALES_FROM_LANGUAGE = False`` turns this off."""
    if options.get("ui_locales") or not conf.AUTHGEAR_UI_LOCALES_FROM_LANGUAGE:
        return options
    language = translation.get_language()
    if not language:
        return options  # translations deactivated: no language to pass on
    try:
        default = clean_login_options({"ui_locales": language_tag(language)}, trusted=True)
    except AuthgearError:
        return options  # a LANGUAGE_CODE that is no language tag: let Authgear choose
    return {**options, **default}


def start_login(
    request: HttpRequest,
    *,
    next_url: str | None,
    options: dict[str, str],
    max_age: int | None = None,
    id_token_hint: str | None = None,
    expected_sub: str | None = None,
    login_hint: str | None = None,
) -> str:
    """Remember a new login attempt in the session; return Authgear's authorize URL for it.

    Arguments as for :func:`begin_login`. Raises an :class:`AuthgearError` (a bad option, or
    Authgear's discovery document unavailable); then nothing is remembered.
    """
    options = with_default_ui_locales(options)
    if login_hint is not None:
        options = {**options, "login_hint": trusted_login_hint(login_hint)}
    client = get_client()
    attempt = LoginAttempt.start(
        redirect_uri=callback_uri(request),
        next_url=next_url,
        max_age=max_age,
        expected_sub=expected_sub,
    )
    params = attempt.authorization_params(
        client_id=client.client_id, scope=conf.AUTHGEAR_SCOPES, options=options
    )
    if id_token_hint:
        params["id_token_hint"] = id_token_hint
    url = client.authorization_url(params)
    remember_attempt(request.session, attempt, limit=conf.AUTHGEAR_MAX_LOGIN_ATTEMPTS)
    return url


def begin_login(
    request: HttpRequest,
    *,
    next_url: str | None,
    options: dict[str, str],
    max_age: int | None = None,
    id_token_hint: str | None = None,
    expected_sub: str | None = None,
    login_hint: str | None = None,
) -> HttpResponse:
    """Remember a new login attempt in the session and redirect to Authgear's authorize page.

    ``options`` must already be cleaned (:func:`~authgear_django.authorization.
    clean_login_options`). ``max_age`` + ``id_token_hint`` + ``expected_sub`` make it a
    reauthentication: the callback then accepts only the same user with a fresh ``auth_time``.
    ``login_hint`` is for the site's code only (any Authgear hint type, e.g.
    ``type=app_session_token``); never pass request input to it. Without a ``ui_locales``
    option, Authgear is asked for the active language (:func:`with_default_ui_locales`).
    """
    try:
        url = start_login(
            request,
            next_url=next_url,
            options=options,
            max_age=max_age,
            id_token_hint=id_token_hint,
            expected_sub=expected_sub,
            login_hint=login_hint,
        )
    except AuthgearError as error:
        return error_response(request, error, next_url=next_url)
    return HttpResponseRedirect(url)


# --- 2. the callback takes its attempt back ---------------------------------------------------


def take_attempt(request: HttpRequest) -> LoginAttempt:
    """The attempt the callback's ``state`` names, removed from the session for good.

    Raises :class:`AuthorizationDenied` when Authgear sent ``?error=`` (the state is burnt all
    the same) and :class:`LoginAttemptError` for a missing, unknown, used or expired state.
    """
    state = request.GET.get("state", "")
    attempt = None
    if state and len(state) <= MAX_PARAMETER_LENGTH:
        attempt = pop_attempt(request.session, state)
        if attempt is not None:
            request.session.save()  # burn the state now: a replayed callback finds nothing
    error = request.GET.get("error")
    if error:
        description = request.GET.get("error_description", "")
        raise AuthorizationDenied(error[:100], description[:300])
    if attempt is None:
        raise LoginAttemptError("callback state is missing, unknown or already used")
    if attempt.is_expired(conf.AUTHGEAR_LOGIN_ATTEMPT_TIMEOUT):
        raise LoginAttemptError("login attempt expired")
    return attempt


# --- 3. exchange and verify -------------------------------------------------------------------


def exchange_code(attempt: LoginAttempt, code: str) -> TokenSet:
    """Trade the callback's code for tokens with the attempt's PKCE verifier; an ID token is
    required (it is what proves who signed in).

    Each attempt is one call of Authgear's token-endpoint budget (counted for
    ``authgear_status``); a 429 starts the shared backoff of refreshes, so that the budget
    left goes to the people signing in.
    """
    token_endpoint.count("exchanges")
    try:
        tokens = get_client().exchange_code(
            code=code, redirect_uri=attempt.redirect_uri, code_verifier=attempt.code_verifier
        )
    except ProviderRateLimited as exc:
        token_endpoint.record_rate_limited(exc.retry_after)
        raise
    if not tokens.id_token:
        raise TokenValidationError("token response has no id_token (is 'openid' requested?)")
    return tokens


def verify_id_token(
    token: str,
    *,
    client: AuthgearClient | None = None,
    signing_key: verification.KeyLookup | None = None,
    nonce: str | None = None,
    expected_sub: str | None = None,
    extra_leeway: int = 0,
) -> dict[str, Any]:
    """Verify an ID token of our Authgear: its issuer, our client id as audience, a key of its
    JWKS, ``AUTHGEAR_CLOCK_LEEWAY`` (plus ``extra_leeway``) and, when given, the nonce and sub.

    ``signing_key`` replaces the JWKS lookup (the refresh tells "no such key yet" apart).
    Raises :class:`TokenValidationError`, or a :class:`ProviderError` when the discovery
    document or the keys cannot be fetched.
    """
    client = client or get_client()
    return verification.verify_id_token(
        token,
        signing_key=signing_key or client.signing_key,
        issuer=client.metadata().issuer,
        client_id=client.client_id,
        leeway=conf.AUTHGEAR_CLOCK_LEEWAY + extra_leeway,
        nonce=nonce,
        expected_sub=expected_sub,
    )


# --- the backend's answer, handed over on the request -----------------------------------------

_LOGIN_RESULT_ATTRIBUTE = "_authgear_login_result"


def record_login_result(request: HttpRequest, result: LoginResult) -> None:
    """Called by the backend's ``authenticate`` once it accepted a login: the view reads the
    result back with :func:`take_login_result` (the request is the one both of them hold)."""
    setattr(request, _LOGIN_RESULT_ATTRIBUTE, result)


def take_login_result(request: HttpRequest) -> LoginResult | None:
    """The :class:`LoginResult` the backend recorded on ``request``, removed; else ``None``."""
    result = request.__dict__.pop(_LOGIN_RESULT_ATTRIBUTE, None)
    return result if isinstance(result, LoginResult) else None


def authenticate_callback(
    request: HttpRequest, attempt: LoginAttempt
) -> tuple[AbstractBaseUser, LoginResult]:
    """Authenticate the callback's code for ``attempt``: the user and the backend's result.

    Raises an :class:`AuthgearError` for every refusal; nobody is logged in here.
    """
    code = request.GET.get("code", "")
    if not code or len(code) > MAX_PARAMETER_LENGTH:
        raise LoginAttemptError("callback has no usable code")
    # The exchange is slow; reload the session afterwards-safe so that attempts started in
    # other tabs meanwhile are not overwritten by our stale copy (mozilla-django-oidc does too).
    request.session = request.session.__class__(request.session.session_key)
    take_login_result(request)  # never one left over from another authenticate() call
    user = authenticate(request, authgear_attempt=attempt, authgear_code=code)
    result = take_login_result(request) if user is not None else None
    if user is None or result is None:
        raise ConfigurationError(
            "authenticate() returned no Authgear login: is "
            "authgear_django.backends.AuthgearBackend in AUTHENTICATION_BACKENDS?"
        )
    check_reauthentication(attempt, result.id_token_claims)
    return user, result


def login_failed(request: HttpRequest, error: AuthgearError) -> None:
    """Send Django's ``user_login_failed`` for a failed callback, as ``authenticate`` does for
    other backends. The credentials name the failure only: no code, state, token or claim."""
    user_login_failed.send(
        sender=__name__,
        credentials={"authgear_error": error.error, "authgear_failure": type(error).__name__},
        request=request,
    )


# --- reauthentication rules -------------------------------------------------------------------


def check_reauthentication(
    attempt: LoginAttempt, id_token_claims: dict[str, Any], *, now: float | None = None
) -> None:
    """A reauthentication attempt must end with the same ``sub`` and an ``auth_time`` within
    its ``max_age`` (plus the clock leeway); any other attempt passes unchecked."""
    if attempt.expected_sub is not None and id_token_claims.get("sub") != attempt.expected_sub:
        raise ReauthenticationFailed("another Authgear user signed in during reauthentication")
    if attempt.max_age is not None:
        auth_time = id_token_claims.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)):
            raise ReauthenticationFailed("the ID token has no auth_time")
        now = time.time() if now is None else now
        if now - auth_time > attempt.max_age + conf.AUTHGEAR_CLOCK_LEEWAY:
            raise ReauthenticationFailed("auth_time is older than the requested max_age")


def signed_in_within(auth_time: datetime | None, max_age: int) -> bool:
    """The stored Authgear sign-in time is at most ``max_age`` seconds old."""
    return auth_time is not None and (timezone.now() - auth_time).total_seconds() <= max_age


def begin_reauthentication(
    request: HttpRequest, *, max_age: int, login: AuthgearLogin | None
) -> HttpResponse:
    """Send a signed-in user through Authgear's reauthentication and back to this URL.

    ``prompt=login`` + ``max_age`` + the current ID token as ``id_token_hint``; the callback
    then insists on the same ``sub`` (:func:`check_reauthentication`). ``login`` is the
    request's current login, if any. A user with no Authgear account gets a 403 page: there is
    nobody at Authgear to reauthenticate.
    """
    account = AuthgearAccount.objects.filter(user_id=request.user.pk).first()
    if account is None:
        return error_response(request, NotAnAuthgearUser("password user on a reauth page"))
    id_token_hint = None
    if login is not None:
        try:
            id_token_hint = login.id_token
        except TokenDecryptionError:
            id_token_hint = None
    return begin_login(
        request,
        next_url=request.get_full_path(),
        options=dict(REAUTHENTICATION_OPTIONS),
        max_age=max_age,
        id_token_hint=id_token_hint,
        expected_sub=account.sub,
    )

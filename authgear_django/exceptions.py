"""Errors raised by the protocol core and turned into error pages by the views.

Each error carries the HTTP status the user should see and a message a person understands.
``str(error)`` is for logs: it never contains a token, a code, a secret or a verifier.
"""

from __future__ import annotations


class AuthgearError(Exception):
    """Base class: something stopped a login, a refresh or a logout."""

    http_status = 400
    title = "Sign-in failed"
    user_message = "We could not sign you in. Please try again."

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail or self.user_message)
        if user_message is not None:
            self.user_message = user_message


# --- the provider is unreachable or misbehaving (5xx pages) -----------------------------------


class ProviderError(AuthgearError):
    """Authgear could not be used right now; nothing on our side is wrong with the user."""

    http_status = 502
    title = "Authgear is not responding correctly"
    user_message = (
        "The sign-in service returned an unexpected answer. Please try again in a moment."
    )


class ProviderTimeout(ProviderError):
    http_status = 504
    title = "Authgear took too long to answer"
    user_message = "The sign-in service did not answer in time. Please try again in a moment."


class ProviderUnreachable(ProviderError):
    http_status = 503
    title = "Authgear is unreachable"
    user_message = "The sign-in service cannot be reached right now. Please try again in a moment."


class ProviderRateLimited(ProviderError):
    http_status = 503
    title = "Too many sign-in attempts"
    user_message = "The sign-in service is busy. Please wait a minute and try again."

    def __init__(self, detail: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ProviderMisconfigured(ProviderError):
    """Discovery does not match the configured endpoint (e.g. another issuer)."""

    title = "Sign-in is misconfigured"
    user_message = (
        "The sign-in service is not configured correctly for this site. "
        "Please contact the site's administrators."
    )


class OAuthError(ProviderError):
    """The token endpoint answered with an OAuth error body (``error``, ``error_description``)."""

    def __init__(self, error: str, description: str = "", *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        if error == "invalid_grant":
            # The code expired, was used twice, or the refresh token is dead: the user retries.
            self.http_status = 400
            self.title = "Sign-in expired"
            self.user_message = "This sign-in has expired or was already used. Please try again."

    @property
    def is_invalid_grant(self) -> bool:
        return self.error == "invalid_grant"


# --- the request or the tokens are not acceptable (4xx pages) ---------------------------------


class LoginAttemptError(AuthgearError):
    """Unknown, expired, tampered or replayed ``state``: possibly an attack, always a 400."""

    title = "Sign-in link expired"
    user_message = (
        "This sign-in link has expired or was already used. Please start signing in again."
    )


class AuthorizationDenied(AuthgearError):
    """Authgear redirected back with ``?error=`` (the user cancelled, or it refused)."""

    title = "Sign-in was not completed"

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        if error == "access_denied":
            self.http_status = 403
            self.title = "Sign-in cancelled"
            self.user_message = "You cancelled signing in, so you are not signed in."
        elif error == "login_required":
            self.http_status = 401
            self.user_message = "You need to sign in at Authgear first."
        else:
            self.user_message = (
                "The sign-in service refused this sign-in request. Please try again."
            )


class TokenValidationError(AuthgearError):
    """An ID token failed signature or claim checks; never trust it."""

    title = "Sign-in could not be verified"
    user_message = "We could not verify your sign-in. Please try again."


class AccountError(AuthgearError):
    """The Authgear user is valid but may not use this site (inactive, not linked, ...)."""

    http_status = 403
    title = "Account not available"


class InvalidLoginOption(AuthgearError):
    """A login option (``prompt``, ``login_hint``, ``ui_locales``, ``x_page``) has a bad value."""

    title = "Invalid sign-in link"
    user_message = "This sign-in link has an invalid option. Please use the site's sign-in button."

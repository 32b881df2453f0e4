"""One error tree for the whole package: every error it raises is an :class:`AuthgearError`.

Django-free. An error carries what the protocol knows: an OAuth ``error`` code and a
``description`` for logs and developers. ``str(error)`` is for logs: it never contains a token,
a code, a secret or a verifier. What a person sees (HTTP status, page title, a translatable
sentence) is chosen by the Django glue, :mod:`authgear_django.responses`, from the class.

The tree::

    AuthgearError
    ├── ProviderError ── ProviderTimeout, ProviderUnreachable, ProviderRateLimited,
    │                    ProviderMisconfigured, OAuthError
    ├── LoginAttemptError
    ├── AuthorizationDenied
    ├── TokenValidationError
    ├── AccountError ── ReauthenticationFailed, NotAnAuthgearUser
    ├── InvalidLoginOption
    ├── ConfigurationError
    └── NoAccessToken
"""

from __future__ import annotations

from typing import Any


class AuthgearError(Exception):
    """The root: something stopped a login, a refresh, a logout or an API call.

    ``user_message`` lets the site's own code choose the sentence the person reads (e.g.
    ``AccountError("log detail", user_message="...")`` in a backend hook); without it the
    sentence of the error's class is shown.
    """

    #: The OAuth 2.0 / OpenID Connect error code that best names the failure.
    error: str = "server_error"
    #: A sentence chosen by the site's code, shown instead of the class's own; ``None``: none.
    user_message: str | None = None

    def __init__(self, description: str = "", *, user_message: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description
        if user_message is not None:
            self.user_message = user_message


# --- the provider is unreachable or misbehaving -----------------------------------------------


class ProviderError(AuthgearError):
    """Authgear could not be used right now; nothing on our side is wrong with the user."""

    error = "temporarily_unavailable"


class ProviderTimeout(ProviderError):
    """Authgear did not answer within ``AUTHGEAR_HTTP_TIMEOUT``."""


class ProviderUnreachable(ProviderError):
    """No connection to Authgear (DNS, refused, TLS)."""


class ProviderRateLimited(ProviderError):
    """Authgear answered 429; ``retry_after`` is its ``Retry-After`` in seconds, if given."""

    def __init__(self, description: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class ProviderMisconfigured(ProviderError):
    """Discovery does not match the configured endpoint (e.g. another issuer)."""

    error = "server_error"


class OAuthError(ProviderError):
    """The token endpoint answered with an OAuth error body (``error``, ``error_description``).

    ``status`` is the HTTP status Authgear answered with (protocol data, not ours to show).
    """

    def __init__(self, error: str, description: str = "", *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status

    @property
    def is_invalid_grant(self) -> bool:
        return self.error == "invalid_grant"


# --- the request or the tokens are not acceptable ---------------------------------------------


class LoginAttemptError(AuthgearError):
    """Unknown, expired, tampered or replayed ``state``: possibly an attack."""

    error = "invalid_request"


class AuthorizationDenied(AuthgearError):
    """Authgear redirected back with ``?error=`` (the user cancelled, or it refused)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


class TokenValidationError(AuthgearError):
    """An ID token failed signature or claim checks; never trust it."""

    error = "invalid_token"


class AccountError(AuthgearError):
    """The Authgear user is valid but may not use this site (inactive, not linked, ...)."""

    error = "access_denied"


class ReauthenticationFailed(AccountError):
    """The reauthentication did not prove a fresh sign-in by the same user."""


class NotAnAuthgearUser(AccountError):
    """A page that needs an Authgear sign-in was asked for by a user who has none."""


class InvalidLoginOption(AuthgearError):
    """A login option (``prompt``, ``login_hint``, ``ui_locales``, ``x_page``) has a bad value."""

    error = "invalid_request"


class ConfigurationError(AuthgearError):
    """The site is set up wrongly (our backend missing): the system checks report it too."""


class NoAccessToken(AuthgearError):
    """The request has no usable Authgear login (anonymous, logged out, or Authgear down).

    ``outcome`` is the :class:`authgear_django.refresh.Outcome` that left no token, if any.
    ``retry_after`` (whole seconds, at least 1) tells the two kinds apart: set, the login is
    fine but no fresh token can be had right now (Authgear unreachable, or refreshes back off
    after its 429): answer 503 with ``Retry-After``, never a logout. ``None``: there is no
    login to use (anonymous, logged out, ended at Authgear): send the person to sign in.
    """

    error = "login_required"

    def __init__(
        self, description: str, *, outcome: Any = None, retry_after: int | None = None
    ) -> None:
        super().__init__(description)
        self.outcome = outcome
        self.retry_after = None if retry_after is None else max(1, int(retry_after))
        if self.retry_after is not None:
            self.error = "temporarily_unavailable"

    @property
    def temporarily_unavailable(self) -> bool:
        """The login is fine; retry after ``retry_after`` seconds (not a logout)."""
        return self.retry_after is not None

"""The authentication backend: an Authgear login becomes a Django user, linked by ``sub``.

A subclass of mozilla-django-oidc's backend that keeps its public contract: the hooks its
documentation teaches (``verify_token``, ``get_userinfo``, ``verify_claims``,
``filter_users_by_claims``, ``create_user``, ``get_username``, ``update_user``,
``describe_user_by_claims``, ``get_or_create_user``) are called with mozilla's meaning, so a
project can switch its backend to ours and keep its subclass. The protocol work is done by
:mod:`authgear_django.client` and :mod:`authgear_django.verification`; the inherited mozilla
methods that would bypass it refuse to run (see ``NOT_CALLED``).

Order of one login: code exchange → ``verify_token`` → ``get_or_create_user``, which runs
``get_userinfo`` → ``verify_claims`` → the link by ``sub`` (an existing link wins) → for a
first-seen ``sub``: ``filter_users_by_claims`` (one match is linked, several refuse the login)
or ``create_user`` (which asks ``get_username``) → ``update_user`` (every later login) →
``sync_roles``. Inactive users are refused last.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import IntegrityError, models, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from authgear_django.authorization import LoginAttempt
from authgear_django.client import TokenSet
from authgear_django.conf import conf
from authgear_django.exceptions import AccountError, TokenValidationError
from authgear_django.login_flow import (
    LoginResult,
    exchange_code,
    record_login_result,
    verify_id_token,
)
from authgear_django.models import AuthgearAccount
from authgear_django.provider import get_client
from authgear_django.roles import sync_roles

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")
CLAIM_TO_FIELD = {"given_name": "first_name", "family_name": "last_name"}
CONTACT_ADMINS = "Please contact the site's administrators."

# Inherited mozilla-django-oidc methods this backend never calls, and what to use instead.
# Calling one raises NotImplementedError; overriding one in a subclass raises
# ImproperlyConfigured at import time, so no project code is silently ignored.
NOT_CALLED: dict[str, str] = {
    "get_token": "The code is exchanged by authgear_django.client.AuthgearClient.exchange_code "
    "(AUTHGEAR_CLIENT_AUTH_METHOD + PKCE); it has no backend hook. To act on the tokens, "
    "receive the login_linked signal or call authgear_django.api.get_access_token(request).",
    "raise_token_response_error": "Token endpoint errors become "
    "authgear_django.exceptions.OAuthError and an error page; there is nothing to override.",
    "retrieve_matching_jwk": "Signing keys come from Authgear's JWKS, cached in "
    "AUTHGEAR_CACHE_ALIAS by authgear_django.client. To add checks on the ID token, override "
    "verify_token and call super().",
    "get_payload_data": "ID tokens are verified by authgear_django.verification.verify_id_token "
    "(RS256 only, never unsigned). To add checks, override verify_token and call super().",
    "_verify_jws": "ID tokens are verified by authgear_django.verification.verify_id_token "
    "(RS256 only). To add checks, override verify_token and call super().",
    "store_tokens": "Tokens are stored encrypted, one AuthgearLogin row per login, never in the "
    "session (OIDC_STORE_*_TOKEN do not apply). Read the access token with "
    "authgear_django.api.get_access_token(request).",
}


def username_from_algorithm(algorithm: str | Callable[..., Any], claims: dict[str, Any]) -> str:
    """Apply an ``OIDC_USERNAME_ALGO`` the way mozilla-django-oidc does.

    ``algorithm`` is a callable or its dotted path; it takes ``(email)`` (the old one-argument
    form) or ``(email, claims)``.
    """
    function = import_string(algorithm) if isinstance(algorithm, str) else algorithm
    email = claims.get("email")
    if len(inspect.getfullargspec(function).args) == 1:
        return str(function(email))
    return str(function(email, claims))


def _not_called(name: str) -> Callable[..., NoReturn]:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(f"AuthgearBackend does not use {name}(). {NOT_CALLED[name]}")

    refuse.__name__ = name
    refuse.__doc__ = f"Not used by AuthgearBackend: {NOT_CALLED[name]}"
    return refuse


class AuthgearBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Authenticate with an Authgear authorization code; find users by Authgear ``sub``."""

    # Django builds a backend on every request (``get_user``); mozilla's __init__ reads a dozen
    # settings and would need discovery. Ours is object's (as ModelBackend's): values are read
    # when used, through ``get_settings``.
    __init__ = object.__init__

    #: The request being authenticated (mozilla sets it too; hooks may read it). ``None``
    #: outside ``authenticate``, e.g. for API tokens.
    request: HttpRequest | None = None
    # The full token response of the login in progress; ``get_or_create_user``'s arguments
    # carry only two of its tokens.
    _login_tokens: TokenSet | None = None
    # What ``get_or_create_user`` linked, for ``authenticate`` to record on the request.
    _login_result: LoginResult | None = None

    get_token = _not_called("get_token")
    raise_token_response_error = _not_called("raise_token_response_error")
    retrieve_matching_jwk = _not_called("retrieve_matching_jwk")
    get_payload_data = _not_called("get_payload_data")
    _verify_jws = _not_called("_verify_jws")
    store_tokens = _not_called("store_tokens")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a subclass that overrides a mozilla method we never call: it would be dead."""
        super().__init_subclass__(**kwargs)
        overridden = sorted(name for name in NOT_CALLED if name in vars(cls))
        if overridden:
            reasons = " ".join(f"{name}(): {NOT_CALLED[name]}" for name in overridden)
            raise ImproperlyConfigured(
                f"{cls.__module__}.{cls.__qualname__} overrides {', '.join(overridden)}, which "
                f"authgear_django's backend never calls. {reasons}"
            )

    @property
    def UserModel(self) -> Any:
        return get_user_model()

    def get_settings(self, attr: str, *args: Any) -> Any:
        """mozilla's ``OIDC_*`` lookups, answered from our settings (see ``conf.py``)."""
        return conf.mozilla_setting(attr, *args)

    # --- entry points Django calls -------------------------------------------------------------

    def authenticate(
        self,
        request: HttpRequest | None,
        authgear_attempt: LoginAttempt | None = None,
        authgear_code: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        """Exchange the code, verify the tokens, then ``get_or_create_user`` as mozilla does.

        Returns ``None`` for credentials that are not ours (e.g. the admin's password form), so
        other backends still work. Raises an :class:`AuthgearError` when an Authgear login fails.
        An accepted login's :class:`~authgear_django.login_flow.LoginResult` is recorded on
        ``request`` (:func:`~authgear_django.login_flow.record_login_result`) for the view.
        """
        if request is None or authgear_attempt is None or not authgear_code:
            return None
        self.request = request
        tokens = exchange_code(authgear_attempt, authgear_code)
        assert tokens.id_token  # exchange_code refuses a response without one
        self._login_tokens = tokens
        try:
            payload = self.verify_token(tokens.id_token, nonce=authgear_attempt.nonce)
            if not payload:
                raise TokenValidationError("verify_token() returned no claims")
            user = self.get_or_create_user(tokens.access_token, tokens.id_token, payload)
            result = self._login_result
        except SuspiciousOperation as exc:
            # mozilla's hooks refuse a login by raising this; it is a refusal, not an attack page.
            raise AccountError(
                f"the backend refused the login: {type(exc).__name__}: {str(exc)[:200]}",
                user_message=f"You may not sign in to this site. {CONTACT_ADMINS}",
            ) from None
        finally:
            self._login_tokens = None
            self._login_result = None
        if user is None:
            raise AccountError(
                "get_or_create_user() returned no user",
                user_message=f"You may not sign in to this site. {CONTACT_ADMINS}",
            )
        if result is None or result.account.user_id != user.pk:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.get_or_create_user() returned a user that is not linked "
                "to this Authgear user: return the user from super().get_or_create_user()."
            )
        if not self.user_can_authenticate(user):
            security_logger.info("authgear_django: refused inactive user %s", user.pk)
            raise AccountError(
                f"user {user.pk} is inactive",
                user_message=f"Your account on this site is disabled. {CONTACT_ADMINS}",
            )
        record_login_result(request, result)
        return user

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        """Django's own lookup (one query, inactive users refused), not mozilla's variant."""
        return ModelBackend.get_user(self, user_id)

    # --- protocol hooks (mozilla-django-oidc names and meaning) -----------------------------------

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Verify an ID token: RS256 from the JWKS, exact ``iss``, ``aud``, ``azp``, time, nonce.

        Override to add checks (call ``super()`` first); raise ``SuspiciousOperation`` or return
        nothing to refuse the login.
        """
        return verify_id_token(
            token, nonce=kwargs.get("nonce"), expected_sub=kwargs.get("expected_sub")
        )

    def get_userinfo(
        self, access_token: str, id_token: str | None, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Fetch userinfo; its ``sub`` must be the ID token's, or the answer is not about us."""
        userinfo = get_client().userinfo(access_token)
        if userinfo.get("sub") != payload.get("sub"):
            security_logger.warning("authgear_django: userinfo sub differs from the ID token's")
            raise TokenValidationError("userinfo sub does not match the ID token sub")
        return userinfo

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """mozilla's hook: ``False`` refuses the login (for linked users too), before any
        user is looked up or created. Ours accepts every user with a ``sub``."""
        return isinstance(claims.get("sub"), str) and bool(claims["sub"])

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        """How log lines name this Authgear user (no email: logs are not a place for PII)."""
        return f"Authgear sub {claims.get('sub')}"

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[Any]:
        """Existing users a first-seen Authgear user may be linked to (mozilla's hook).

        Called only when no user is linked to the ``sub`` yet. Ours: the users with the same
        email, only with ``AUTHGEAR_LINK_USERS_BY_EMAIL`` on and ``email_verified`` true; the
        login is refused rather than linked to a staff or superuser account.
        """
        none: QuerySet[Any] = self.UserModel._default_manager.none()
        if not conf.AUTHGEAR_LINK_USERS_BY_EMAIL:
            return none
        email = claims.get("email")
        if claims.get("email_verified") is not True or not isinstance(email, str) or not email:
            return none
        email_field = self.UserModel.get_email_field_name()
        users: QuerySet[Any] = self.UserModel._default_manager.filter(
            **{f"{email_field}__iexact": email}
        )
        privileged = None if conf.AUTHGEAR_LINK_BY_EMAIL_ALLOW_STAFF else self._privileged(users)
        if privileged is not None and privileged.exists():
            # Whoever controls this address at Authgear would become an administrator here.
            security_logger.warning(
                "authgear_django: not linking %s by email to a staff or superuser account",
                self.describe_user_by_claims(claims),
            )
            raise AccountError(
                f"{self.describe_user_by_claims(claims)} matches a staff or superuser by email",
                user_message="An account on this site with your email address cannot be linked "
                f"to your Authgear account automatically. {CONTACT_ADMINS}",
            )
        return users

    # --- user hooks: override these to customise --------------------------------------------------

    def get_username(self, claims: dict[str, Any]) -> str:
        """mozilla's hook: ``OIDC_USERNAME_ALGO`` if configured, else :meth:`generate_username`."""
        algorithm = self.get_settings("OIDC_USERNAME_ALGO", None)
        if algorithm:
            return username_from_algorithm(algorithm, claims)
        return self.generate_username(claims)

    def generate_username(self, claims: dict[str, Any]) -> str:
        """A readable username from ``preferred_username`` or the email's local part."""
        preferred = claims.get("preferred_username")
        email = claims.get("email")
        if isinstance(preferred, str) and preferred.strip():
            base = preferred
        elif isinstance(email, str) and "@" in email:
            base = email.split("@", 1)[0]
        else:
            base = "user"
        base = _USERNAME_UNSAFE.sub("", base)[:100] or "user"
        return base

    def create_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        """Create the Django user for a first-seen Authgear user (mozilla's hook).

        Username from :meth:`get_username`, suffixed if taken; unusable password; email and
        names from the claims.
        """
        user_model = self.UserModel
        username_field = user_model._meta.get_field(user_model.USERNAME_FIELD)
        max_length = getattr(username_field, "max_length", None) or 150
        base = str(self.get_username(claims) or "")[:max_length] or "user"
        for attempt in range(6):
            username = base if attempt == 0 else self._suffixed(base, attempt, max_length)
            if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
                continue
            user: AbstractBaseUser = user_model(**{user_model.USERNAME_FIELD: username})
            user.set_unusable_password()
            self._apply_claims(user, claims)
            try:
                with transaction.atomic():
                    user.save()
            except IntegrityError:
                continue  # another login took the name between the check and the insert
            return user
        raise AccountError(
            "could not find a free username",
            user_message="We could not create your account on this site. Please try again.",
        )

    def update_user(self, user: AbstractBaseUser, claims: dict[str, Any]) -> AbstractBaseUser:
        """mozilla's hook, run at every login but the one that created the user: copies email
        and names from Authgear, saving only what changed."""
        changed = self._apply_claims(user, claims)
        if changed:
            user.save(update_fields=changed)
        return user

    def sync_roles(
        self, user: AbstractBaseUser, account: AuthgearAccount, claims: dict[str, Any]
    ) -> None:
        """Map Authgear roles to groups / staff flags (``AUTHGEAR_ROLE_GROUPS`` & co.)."""
        sync_roles(user, account, claims)

    def apply_fresh_claims(
        self, account: AuthgearAccount, userinfo: Mapping[str, Any]
    ) -> AbstractBaseUser:
        """Apply userinfo fetched during a login's life (the liveness check) to its linked user,
        with the same hooks a returning login runs: ``update_user`` (email, names), the
        account's stored claims, ``sync_roles``. The caller has checked ``sub``."""
        claims = dict(userinfo)
        user: AbstractBaseUser = account.user
        updated = self.update_user(user, claims)
        if updated is not None and updated.pk != user.pk:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.update_user() must return the user it was given."
            )
        user = updated or user
        email = str(claims.get("email") or "")[:254]
        if account.email != email or account.claims != claims:
            account.email = email
            account.claims = claims
            account.save(update_fields=["email", "claims", "updated_at"])
        self.sync_roles(user, account, claims)
        return user

    # --- mozilla's orchestration, on our link by sub ----------------------------------------------

    def get_or_create_user(
        self, access_token: str, id_token: str | None, payload: dict[str, Any]
    ) -> AbstractBaseUser:
        """The user for verified ID token claims ``payload`` (mozilla's hook, same meaning).

        userinfo → ``verify_claims`` → the user linked to ``sub``, else one found by
        ``filter_users_by_claims`` (then linked), else ``create_user``; ``update_user`` unless
        just created. Hooks see ``claims``: the ID token's claims updated with userinfo.
        """
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, Mapping):
            raise ImproperlyConfigured(f"{type(self).__name__}.get_userinfo() must return a dict.")
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub or userinfo.get("sub", sub) != sub:
            # Also when an overridden get_userinfo skips super(): claims must stay about ``sub``.
            raise TokenValidationError("userinfo is not about the ID token's sub")
        claims = {**payload, **userinfo}
        if not self.verify_claims(claims):
            raise AccountError(
                f"verify_claims() refused {self.describe_user_by_claims(claims)}",
                user_message="Your Authgear account may not sign in to this site. "
                + CONTACT_ADMINS,
            )
        account = AuthgearAccount.objects.select_related("user").filter(sub=sub).first()
        created = False
        if account is None:
            account, created = self.link_new_account(
                claims, allow_create=bool(self.get_settings("OIDC_CREATE_USER", True))
            )
        user: AbstractBaseUser = account.user
        if not created:
            updated = self.update_user(user, claims)
            if updated is not None and updated.pk != user.pk:
                raise ImproperlyConfigured(
                    f"{type(self).__name__}.update_user() must return the user it was given."
                )
            user = updated or user
        account.email = str(claims.get("email") or "")[:254]
        account.claims = dict(userinfo)
        account.last_login_at = timezone.now()
        account.save(update_fields=["email", "claims", "last_login_at", "updated_at"])
        self.sync_roles(user, account, claims)
        tokens = self._login_tokens
        if tokens is None or tokens.access_token != access_token:
            tokens = TokenSet(access_token=access_token, expires_in=None, id_token=id_token)
        self._login_result = LoginResult(
            tokens=tokens,
            id_token_claims=payload,
            claims=claims,
            account=account,
            created=created,
        )
        return user

    def link_new_account(
        self, claims: dict[str, Any], *, allow_create: bool
    ) -> tuple[AuthgearAccount, bool]:
        """Link a first-seen ``sub`` to the one user ``filter_users_by_claims`` finds, else to a
        new user from ``create_user`` if ``allow_create``. Returns ``(account, created)``.

        Safe against two first logins of the same user at once (the unique ``sub`` decides).
        """
        sub = claims["sub"]
        try:
            with transaction.atomic():
                user, created = self._matched_or_created_user(claims, allow_create=allow_create)
                account = AuthgearAccount.objects.create(user=user, sub=sub)
        except IntegrityError:
            # A concurrent first login of the same Authgear user linked it first: use that link.
            account = AuthgearAccount.objects.select_related("user").filter(sub=sub).first()
            if account is None:
                raise AccountError(
                    f"could not link {self.describe_user_by_claims(claims)}: integrity error",
                    user_message="We could not set up your account on this site. Please try again.",
                ) from None
            return account, False
        logger.info("authgear_django: linked user %s to sub %s", user.pk, sub)
        return account, created

    # --- internals ----------------------------------------------------------------------------

    def _matched_or_created_user(
        self, claims: dict[str, Any], *, allow_create: bool
    ) -> tuple[AbstractBaseUser, bool]:
        candidates = _first_two(self.filter_users_by_claims(claims))
        if len(candidates) > 1:
            raise AccountError(
                f"several users match {self.describe_user_by_claims(claims)}; not linking",
                user_message="Several accounts on this site match your Authgear account, so we "
                f"cannot tell which one is yours. {CONTACT_ADMINS}",
            )
        if candidates:
            user = candidates[0]
            if AuthgearAccount.objects.filter(user=user).exists():
                raise AccountError(
                    f"the user matching {self.describe_user_by_claims(claims)} is linked to "
                    "another Authgear user",
                    user_message="The account on this site that matches yours is already "
                    f"linked to another Authgear user. {CONTACT_ADMINS}",
                )
            return user, False
        if not allow_create:
            raise AccountError(
                f"no user matches {self.describe_user_by_claims(claims)} and user creation is off",
                user_message="There is no account on this site for your Authgear user. "
                "Please ask the site's administrators for access.",
            )
        created = self.create_user(claims)
        if created is None or created.pk is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.create_user() must return a saved user."
            )
        return created, True

    def _privileged(self, users: QuerySet[Any]) -> QuerySet[Any] | None:
        field_names = {f.name for f in self.UserModel._meta.get_fields()}
        condition = Q()
        for flag in ("is_staff", "is_superuser"):
            if flag in field_names:
                condition |= Q(**{flag: True})
        return users.filter(condition) if condition else None

    def _suffixed(self, base: str, attempt: int, max_length: int) -> str:
        suffix = secrets.token_hex(2 if attempt < 3 else 4)
        return f"{base[: max(1, max_length - len(suffix) - 1)]}-{suffix}"

    def _apply_claims(self, user: AbstractBaseUser, claims: dict[str, Any]) -> list[str]:
        changed: list[str] = []
        email_field = user.get_email_field_name()
        email = claims.get("email")
        if isinstance(email, str) and email and getattr(user, email_field, None) != email:
            setattr(user, email_field, email[:254])
            changed.append(email_field)
        field_names = {f.name for f in user._meta.get_fields()}
        for claim, field_name in CLAIM_TO_FIELD.items():
            value = claims.get(claim)
            if field_name in field_names and isinstance(value, str):
                max_length = getattr(user._meta.get_field(field_name), "max_length", None) or 150
                value = value[:max_length]
                if getattr(user, field_name) != value:
                    setattr(user, field_name, value)
                    changed.append(field_name)
        return changed


def _first_two(found: Any) -> list[Any]:
    """At most two users from what ``filter_users_by_claims`` returned: a QuerySet or list as
    mozilla expects, or one user or ``None`` (as in mozilla's own documentation example)."""
    if found is None:
        return []
    if isinstance(found, models.Model):
        return [found]
    if isinstance(found, QuerySet):
        found = found[:2]
    return list(itertools.islice(found, 2))

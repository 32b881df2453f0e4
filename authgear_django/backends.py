"""The authentication backend: an Authgear login becomes a Django user, linked by ``sub``.

Built on mozilla-django-oidc's backend and its hook names (``get_token``, ``verify_token``,
``get_userinfo``, ``get_or_create_user``, ``create_user``, ``update_user``), with the
protocol work delegated to :mod:`authgear_django.client` and :mod:`authgear_django.verification`.
Override the small verb-named methods to customise user creation, updates and linking.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from authgear_django.authorization import LoginAttempt
from authgear_django.client import TokenSet
from authgear_django.conf import conf
from authgear_django.exceptions import AccountError, ProviderError, TokenValidationError
from authgear_django.models import AuthgearAccount
from authgear_django.provider import get_client
from authgear_django.roles import sync_roles
from authgear_django.verification import verify_id_token

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")
CLAIM_TO_FIELD = {"given_name": "first_name", "family_name": "last_name"}


@dataclass
class LoginResult:
    """What the callback needs after the backend accepted a login (attached to the user)."""

    tokens: TokenSet = field(repr=False)
    id_token_claims: dict[str, Any] = field(repr=False)
    claims: dict[str, Any] = field(repr=False)
    account: AuthgearAccount
    created: bool


class AuthgearBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Authenticate with an Authgear authorization code; find users by Authgear ``sub``."""

    # Django builds a backend on every request (``get_user``); mozilla's __init__ reads a dozen
    # settings and would need discovery. Ours is object's (as ModelBackend's): values are read
    # when used.
    __init__ = object.__init__

    @property
    def UserModel(self) -> Any:
        return get_user_model()

    def get_settings(self, attr: str, *args: Any) -> Any:
        return conf.mozilla_setting(attr, *args)

    # --- entry points Django calls -------------------------------------------------------------

    def authenticate(
        self,
        request: HttpRequest | None,
        authgear_attempt: LoginAttempt | None = None,
        authgear_code: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        """Exchange the code, verify the tokens, find or create the user.

        Returns ``None`` for credentials that are not ours (e.g. the admin's password form), so
        other backends still work. Raises an :class:`AuthgearError` when an Authgear login fails.
        """
        if request is None or authgear_attempt is None or not authgear_code:
            return None
        tokens: TokenSet = self.get_token(
            {
                "code": authgear_code,
                "redirect_uri": authgear_attempt.redirect_uri,
                "code_verifier": authgear_attempt.code_verifier,
            }
        )
        if not tokens.id_token:
            raise TokenValidationError("token response has no id_token (is 'openid' requested?)")
        id_claims = self.verify_token(tokens.id_token, nonce=authgear_attempt.nonce)
        user, result = self._resolve_user(tokens, id_claims)
        if not self.user_can_authenticate(user):
            security_logger.info("authgear_django: refused inactive user %s", user.pk)
            raise AccountError(
                f"user {user.pk} is inactive",
                user_message="Your account on this site is disabled. "
                "Please contact the site's administrators.",
            )
        user.authgear_login_result = result  # type: ignore[attr-defined]
        return user

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        """Django's own lookup (one query, inactive users refused), not mozilla's variant."""
        return ModelBackend.get_user(self, user_id)

    # --- protocol hooks (mozilla-django-oidc names) --------------------------------------------

    def get_token(self, payload: dict[str, str]) -> TokenSet:
        """Trade the authorization code for tokens (``client_secret_post`` + PKCE verifier)."""
        return get_client().exchange_code(
            code=payload["code"],
            redirect_uri=payload["redirect_uri"],
            code_verifier=payload["code_verifier"],
        )

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Verify an ID token: RS256 from the JWKS, exact ``iss``, ``aud``, ``azp``, time, nonce."""
        client = get_client()
        return verify_id_token(
            token,
            signing_key=client.signing_key,
            issuer=client.metadata().issuer,
            client_id=client.client_id,
            leeway=conf.AUTHGEAR_CLOCK_LEEWAY,
            nonce=kwargs.get("nonce"),
            expected_sub=kwargs.get("expected_sub"),
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
        return isinstance(claims.get("sub"), str) and bool(claims["sub"])

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return f"Authgear sub {claims.get('sub')}"

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[Any]:
        """Users linked to this Authgear user: by ``sub``, never by email."""
        users: QuerySet[Any] = self.UserModel._default_manager.filter(
            authgear_account__sub=claims.get("sub")
        )
        return users

    # --- user hooks: override these to customise --------------------------------------------------

    def create_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        """Create the Django user for a first-time Authgear user (username collision-safe)."""
        user_model = self.UserModel
        base = self.generate_username(claims)
        for attempt in range(6):
            username = base if attempt == 0 else self._suffixed(base, attempt)
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
        """Copy email and names from Authgear on each login; saves only what changed."""
        changed = self._apply_claims(user, claims)
        if changed:
            user.save(update_fields=changed)
        return user

    def link_user_by_email(self, claims: dict[str, Any]) -> AbstractBaseUser | None:
        """An existing, unlinked user with this *verified* email, if linking by email is on."""
        if not conf.AUTHGEAR_LINK_USERS_BY_EMAIL:
            return None
        email = claims.get("email")
        if claims.get("email_verified") is not True or not isinstance(email, str) or not email:
            return None
        user_model = self.UserModel
        email_field = user_model.get_email_field_name()
        candidates = list(
            user_model._default_manager.filter(**{f"{email_field}__iexact": email})[:2]
        )
        if len(candidates) != 1:
            if candidates:
                security_logger.warning(
                    "authgear_django: several users share the email of sub %s; not linking",
                    claims.get("sub"),
                )
                raise AccountError(
                    "ambiguous email link",
                    user_message="Several accounts on this site use your email address, so we "
                    "cannot tell which one is yours. Please contact the site's administrators.",
                )
            return None
        user: AbstractBaseUser = candidates[0]
        if AuthgearAccount.objects.filter(user=user).exists():
            raise AccountError(
                "email belongs to a user linked to another Authgear account",
                user_message="An account on this site with your email address is already "
                "linked to another Authgear user. Please contact the site's administrators.",
            )
        return user

    def sync_roles(
        self, user: AbstractBaseUser, account: AuthgearAccount, claims: dict[str, Any]
    ) -> None:
        """Map Authgear roles to groups / staff flags (``AUTHGEAR_ROLE_GROUPS`` & co.)."""
        sync_roles(user, account, claims)

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

    # --- internals ----------------------------------------------------------------------------

    def _suffixed(self, base: str, attempt: int) -> str:
        suffix = secrets.token_hex(2 if attempt < 3 else 4)
        return f"{base[:140]}-{suffix}"

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

    def get_or_create_user(
        self, access_token: str, id_token: str | None, payload: dict[str, Any]
    ) -> AbstractBaseUser:
        """mozilla-django-oidc's entry point, kept for subclasses that call it directly."""
        tokens = TokenSet(access_token=access_token, expires_in=None, id_token=id_token)
        user, _ = self._resolve_user(tokens, payload)
        return user

    def _resolve_user(
        self, tokens: TokenSet, id_claims: dict[str, Any]
    ) -> tuple[AbstractBaseUser, LoginResult]:
        userinfo = self.get_userinfo(tokens.access_token, tokens.id_token, id_claims)
        claims = {**id_claims, **userinfo}
        if not self.verify_claims(claims):
            raise TokenValidationError("claims have no sub")
        sub = claims["sub"]
        created = False
        account = AuthgearAccount.objects.select_related("user").filter(sub=sub).first()
        if account is None:
            account, created = self.link_new_account(
                claims, allow_create=conf.AUTHGEAR_CREATE_USERS
            )
        user = self.update_user(account.user, claims)
        account.email = str(claims.get("email") or "")[:254]
        account.claims = userinfo
        account.last_login_at = timezone.now()
        account.save(update_fields=["email", "claims", "last_login_at", "updated_at"])
        self.sync_roles(user, account, claims)
        result = LoginResult(
            tokens=tokens,
            id_token_claims=id_claims,
            claims=claims,
            account=account,
            created=created,
        )
        return user, result

    def link_new_account(
        self, claims: dict[str, Any], *, allow_create: bool
    ) -> tuple[AuthgearAccount, bool]:
        """Link a first-seen ``sub``: by verified email if allowed, else a new user if allowed.

        Safe against two first logins of the same user at once (the unique ``sub`` decides).
        """
        sub = claims["sub"]
        try:
            with transaction.atomic():
                user = self.link_user_by_email(claims)
                created = False
                if user is None:
                    if not allow_create:
                        raise AccountError(
                            f"no user linked to sub {sub} and user creation is off",
                            user_message="There is no account on this site for your Authgear "
                            "user. Please ask the site's administrators for access.",
                        )
                    user = self.create_user(claims)
                    created = True
                account = AuthgearAccount.objects.create(user=user, sub=sub)
                account.user = user
                logger.info("authgear_django: linked user %s to sub %s", user.pk, sub)
                return account, created
        except IntegrityError:
            # A concurrent first login of the same Authgear user linked it first: use that link.
            account = AuthgearAccount.objects.select_related("user").filter(sub=sub).first()
            if account is None:
                raise ProviderError("could not link the Authgear user") from None
            return account, False

"""django-oauth-toolkit's OAuth2Validator, adjusted to issue Authgear-shaped tokens and claims.

What is changed (see /work/shared/authgear-protocol.md §3.3, §5):

- ``sub`` is a UUID string, derived with uuid5 from the user's primary key (stable for a
  given provider database; re-seeding a fresh database gives the demo user the same sub).
- ID token: ``aud`` is a one-element list ``[client_id]``; ``sid`` (opaque) is
  base64url("offline_grant:<grant uuid>") and stays the same across refreshes; ``auth_time``
  is the user's last login at the provider; ``nonce`` only on the code exchange.
- Claims: ``email``, ``email_verified`` (true), ``name``, ``given_name``, ``family_name`` and
  the ``https://authgear.com/claims/user/*`` claims (``roles`` = Django group names).
  The ID token carries the standard attributes allowed by the scopes (all of them with
  ``https://authgear.com/scopes/full-userinfo``); userinfo always returns all of them, as
  Authgear does for first-party confidential clients.
- A refresh token is issued only when ``offline_access`` was granted, and the token
  response has no ``scope`` field.
- PKCE is required from public clients only (``LOCAL_OP_REQUIRE_PKCE=1``: from everyone).
"""

from __future__ import annotations

import base64
import secrets
import string
import uuid
from typing import Any

from django.conf import settings
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator

# Any fixed namespace works; changing it changes every user's sub.
SUB_NAMESPACE = uuid.UUID("8f3c2b9e-6a41-4d5e-9b7a-2c1d0e4f5a63")

CLAIM_ROLES = "https://authgear.com/claims/user/roles"
CLAIM_IS_ANONYMOUS = "https://authgear.com/claims/user/is_anonymous"
CLAIM_IS_VERIFIED = "https://authgear.com/claims/user/is_verified"
CLAIM_CAN_REAUTHENTICATE = "https://authgear.com/claims/user/can_reauthenticate"
AUTHGEAR_CLAIMS = (CLAIM_IS_ANONYMOUS, CLAIM_IS_VERIFIED, CLAIM_CAN_REAUTHENTICATE, CLAIM_ROLES)

SCOPE_OFFLINE_ACCESS = "offline_access"
# Scopes that put every standard attribute in the ID token (Authgear: full-access too).
FULL_USERINFO_SCOPES = {
    "https://authgear.com/scopes/full-userinfo",
    "https://authgear.com/scopes/full-access",
}

_ALPHANUMERIC = string.ascii_letters + string.digits


def user_sub(user: Any) -> str:
    """The stable UUID used as ``sub`` for a local user."""
    return str(uuid.uuid5(SUB_NAMESPACE, f"local-op-user:{user.pk}"))


def user_claims(user: Any) -> dict[str, Any]:
    """All claims about a user, like Authgear's userinfo for a first-party client."""
    claims: dict[str, Any] = {"sub": user_sub(user)}
    if user.email:
        claims["email"] = user.email
        claims["email_verified"] = True
    name = user.get_full_name().strip()
    if name:
        claims["name"] = name
    if user.first_name:
        claims["given_name"] = user.first_name
    if user.last_name:
        claims["family_name"] = user.last_name
    claims[CLAIM_IS_ANONYMOUS] = False
    claims[CLAIM_IS_VERIFIED] = bool(user.email)
    claims[CLAIM_CAN_REAUTHENTICATE] = True
    claims[CLAIM_ROLES] = sorted(user.groups.values_list("name", flat=True))
    return claims


def _random_alphanumeric(length: int = 32) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _grant_id(request: Any) -> uuid.UUID:
    """The id of the "offline grant" a token request belongs to (our stand-in for Authgear's).

    It is the refresh-token family: inherited on a refresh, new on a code exchange. It is
    computed once per request and shared by the refresh token, its family and the ``sid``.
    """
    grant_id = getattr(request, "localop_grant_id", None)
    if grant_id is None:
        previous = getattr(request, "refresh_token_instance", None)
        grant_id = getattr(previous, "token_family", None) or uuid.uuid4()
        request.localop_grant_id = grant_id
    return grant_id


def generate_access_token(request: Any) -> str:
    """ACCESS_TOKEN_GENERATOR: 32 alphanumerics, like Authgear's opaque access tokens."""
    return _random_alphanumeric()


def generate_refresh_token(request: Any) -> str:
    """REFRESH_TOKEN_GENERATOR: ``<grant uuid>.<32 alphanumerics>``, like Authgear's."""
    return f"{_grant_id(request)}.{_random_alphanumeric()}"


class LocalOPValidator(OAuth2Validator):
    # Authgear's own claims are tied to "openid", i.e. always present.
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        **dict.fromkeys(AUTHGEAR_CLAIMS, "openid"),
    }

    # --- claims -----------------------------------------------------------------------------

    def get_claim_dict(self, request: Any) -> dict[str, Any]:
        return user_claims(request.user)

    def get_discovery_claims(self, request: Any) -> list[str]:
        return [
            "iss",
            "aud",
            "iat",
            "exp",
            "sub",
            "auth_time",
            "sid",
            "nonce",
            "email",
            "email_verified",
            "name",
            "given_name",
            "family_name",
            *AUTHGEAR_CLAIMS,
        ]

    def get_oidc_claims(self, token: Any, token_handler: Any, request: Any) -> dict[str, Any]:
        """Claims for the ID token: standard attributes filtered by scope, like Authgear."""
        claims = self.get_claim_dict(request)
        scopes = set(request.scopes or ())
        if scopes & FULL_USERINFO_SCOPES:
            return claims
        return {
            name: value
            for name, value in claims.items()
            if self.oidc_claim_scope.get(name) in scopes
        }

    def get_userinfo_claims(self, request: Any) -> dict[str, Any]:
        """Userinfo: every attribute regardless of scope (Authgear, first-party clients)."""
        return self.get_claim_dict(request)

    def finalize_id_token(
        self, id_token: dict[str, Any], token: Any, token_handler: Any, request: Any
    ) -> str:
        id_token["aud"] = [request.client.client_id]
        sid = f"offline_grant:{_grant_id(request)}".encode()
        id_token["sid"] = base64.urlsafe_b64encode(sid).rstrip(b"=").decode()
        if request.grant_type == "refresh_token":
            # Authgear puts the nonce only in ID tokens from the code exchange.
            id_token.pop("nonce", None)
        return super().finalize_id_token(id_token, token, token_handler, request)

    # --- tokens -----------------------------------------------------------------------------

    def save_bearer_token(
        self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if SCOPE_OFFLINE_ACCESS not in (request.scopes or ()):
            token.pop("refresh_token", None)
        result = super().save_bearer_token(token, request, *args, **kwargs)
        # DOT needs "scope" to store the token; Authgear's responses have no "scope".
        token.pop("scope", None)
        return result

    def _create_refresh_token(
        self, request: Any, refresh_token_code: str, access_token: Any, previous_refresh_token: Any
    ) -> Any:
        refresh_token = super()._create_refresh_token(
            request, refresh_token_code, access_token, previous_refresh_token
        )
        grant_id = _grant_id(request)
        if refresh_token.token_family != grant_id:
            refresh_token.token_family = grant_id
            refresh_token.save(update_fields=["token_family"])
        return refresh_token

    # --- prompt=none ------------------------------------------------------------------------
    # DOT does not implement these two oauthlib hooks, so prompt=none was a server error.

    def validate_silent_login(self, request: Any) -> bool:
        # Called while validating the request. Without a provider session DOT's view itself
        # answers prompt=none with a login_required redirect, so there is nothing to do here.
        return True

    def validate_silent_authorization(self, request: Any) -> bool:
        # Consent is never asked for skip_authorization clients (all clients here).
        return bool(getattr(request.client, "skip_authorization", False))

    # --- PKCE -------------------------------------------------------------------------------

    def is_pkce_required(self, client_id: str, request: Any) -> bool:
        if settings.LOCAL_OP_REQUIRE_PKCE:
            return True
        application_model = get_application_model()
        return application_model.objects.filter(
            client_id=client_id, client_type=application_model.CLIENT_PUBLIC
        ).exists()

"""Projects' backend subclasses, written the way mozilla-django-oidc's documentation teaches.

Each class copies the logic of one snippet from mozilla's docs (``docs/installation.rst``) or a
common override seen in projects built on it, so the tests can show that switching the base
class from ``OIDCAuthenticationBackend`` to ``AuthgearBackend`` keeps them working.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation

from authgear_django.backends import AuthgearBackend


class CustomBackend(AuthgearBackend):
    """A project's subclass, as the README suggests for customising user creation."""


class CustomAuthMiddleware(AuthenticationMiddleware):
    """A project's own authentication middleware: the order check must accept subclasses."""


# --- "Changing how Django users are created" ----------------------------------------------------


class NamesFromClaimsBackend(AuthgearBackend):
    """mozilla's ``create_user`` example, plus the "other bookkeeping" it mentions."""

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = super().create_user(claims)
        user.first_name = claims.get("given_name", "")
        user.last_name = claims.get("family_name", "")
        user.save()
        user.groups.add(Group.objects.get_or_create(name="Signed up with OIDC")[0])
        return user


class GroupsFromClaimsBackend(AuthgearBackend):
    """``update_user`` mapping a ``groups`` claim to Django groups, and ``create_user`` calling
    it, as mozilla's own Elmo project does."""

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = super().create_user(claims)
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        wanted = set(claims.get("groups", []))
        for group in Group.objects.filter(name__in={"Editors", "Reviewers"}):
            if group.name in wanted:
                user.groups.add(group)
            else:
                user.groups.remove(group)
        return user


# --- "Generating usernames" -----------------------------------------------------------------------


def generate_username(email: str) -> str:
    """mozilla's ``OIDC_USERNAME_ALGO`` example: the email itself, normalised."""
    return unicodedata.normalize("NFKC", email)[:150]


def username_from_claims(email: str, claims: dict[str, Any]) -> str:
    """The two-argument ``OIDC_USERNAME_ALGO`` form: it also receives the claims."""
    return f"{claims['given_name']}.{claims['family_name']}".lower()


class EmailUsernameBackend(AuthgearBackend):
    """``get_username`` overridden with the docs' username function."""

    def get_username(self, claims: dict[str, Any]) -> str:
        return generate_username(claims["email"])


# --- "Connecting OIDC user identities to Django users" ------------------------------------------


class LegacyUsernameBackend(AuthgearBackend):
    """mozilla's ``filter_users_by_claims`` example (one user or none), matching on a custom
    claim: the username the person had before the move to Authgear."""

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        legacy_username = claims.get("legacy_username")
        if not legacy_username:
            return self.UserModel.objects.none()
        try:
            return self.UserModel.objects.get(username=legacy_username)
        except self.UserModel.DoesNotExist:
            return self.UserModel.objects.none()


class DepartmentBackend(AuthgearBackend):
    """``filter_users_by_claims`` returning a QuerySet (mozilla's default shape), with its own
    ``describe_user_by_claims`` for the log lines."""

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(last_name=claims.get("department", "-"))

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return f"employee {claims.get('employee_id')}"


# --- "Advanced user verification based on their claims" -----------------------------------------


class CompanyDomainBackend(AuthgearBackend):
    """``verify_claims`` as in mozilla's docs (``super()`` and one more condition): only people
    with an email at the company's domain may sign in."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        verified = super().verify_claims(claims)
        return verified and str(claims.get("email", "")).endswith("@example.com")


class NoAnonymousUsersBackend(AuthgearBackend):
    """``get_or_create_user`` wrapping ``super()`` and returning ``None`` to refuse a login."""

    def get_or_create_user(self, access_token: str, id_token: str | None, payload: Any) -> Any:
        if payload.get("https://authgear.com/claims/user/is_anonymous"):
            return None
        return super().get_or_create_user(access_token, id_token, payload)


class MfaRequiredBackend(AuthgearBackend):
    """``verify_token`` adding a check and refusing the mozilla way (SuspiciousOperation)."""

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        if "otp" not in payload.get("amr", []):
            raise SuspiciousOperation("a second factor is required")
        return payload


class TitleCaseNamesBackend(AuthgearBackend):
    """``get_userinfo`` extending ``super()``'s answer, as projects do to add claims."""

    def get_userinfo(self, access_token: str, id_token: str | None, payload: Any) -> Any:
        userinfo = super().get_userinfo(access_token, id_token, payload)
        return {**userinfo, "given_name": str(userinfo.get("given_name", "")).title()}


# --- overrides that must not go unnoticed -------------------------------------------------------


class OtherSubUserinfoBackend(AuthgearBackend):
    """A ``get_userinfo`` that skips ``super()`` and answers about another Authgear user."""

    def get_userinfo(self, access_token: str, id_token: str | None, payload: Any) -> Any:
        return {"sub": "someone-else", "email": "mallory@example.com"}


class MozillaCreateUserBackend(AuthgearBackend):
    """mozilla's own ``create_user`` body: no check that the username is free."""

    def create_user(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.create_user(
            self.get_username(claims), email=claims.get("email")
        )


class UnlinkedUserBackend(AuthgearBackend):
    """A ``get_or_create_user`` that ignores ``super()`` and returns a user of its own."""

    def get_or_create_user(self, access_token: str, id_token: str | None, payload: Any) -> Any:
        return self.UserModel.objects.get_or_create(username="shared")[0]


class ReturningUserBackend(AuthgearBackend):
    """An ``update_user`` that marks the user, to see on which logins it runs."""

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user.last_name = "returning"
        user.save(update_fields=["last_name"])
        return user


class LongUsernameBackend(AuthgearBackend):
    """A ``get_username`` longer than Django's username column."""

    def get_username(self, claims: dict[str, Any]) -> str:
        return "x" * 300

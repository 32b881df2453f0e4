"""Admin for linked Authgear users and their logins.

No token is ever listed, shown, editable or exported: the token columns are not in any form or
list, and the claims shown are userinfo's (profile data, no tokens). Revoking a login revokes
its refresh token at Authgear and ends its Django session; both actions need the delete
permission and run as POSTs with Django's CSRF protection.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authgear_django.devices import describe
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.store import end_logins, logins_of_user

LOGIN_FIELDS = (
    "device",
    "user_agent",
    "ip_address",
    "created_at",
    "last_refreshed_at",
    "last_checked_at",
    "access_token_expires_at",
    "refresh_count",
    "auth_time",
)


def revoke_logins(logins: QuerySet[AuthgearLogin] | list[AuthgearLogin]) -> tuple[int, int]:
    """Revoke at Authgear and end here; returns (ended, confirmed by Authgear)."""
    result = end_logins(logins, reason="admin_revoke", revoke=True, end_sessions=True)
    return result.ended, result.revoked


def _report(request: HttpRequest, ended: int, confirmed: int) -> None:
    if ended == confirmed:
        messages.success(
            request,
            gettext("Revoked %(ended)d login(s) at Authgear and ended their sessions.")
            % {"ended": ended},
        )
    else:
        messages.warning(
            request,
            gettext(
                "Ended %(ended)d login(s) here; Authgear confirmed %(confirmed)d revocation(s). "
                "The others could not be revoked at Authgear right now (see the logs)."
            )
            % {"ended": ended, "confirmed": confirmed},
        )


class RevokingInlineFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Deleting a login row from the account page revokes it, instead of a bare DELETE."""

    def delete_existing(self, obj: AuthgearLogin, commit: bool = True) -> None:
        if commit:
            revoke_logins([obj])


class LoginDeviceMixin:
    """The device and browser of a login, as the "Your sessions" page shows them."""

    @admin.display(description=_("device and browser"))
    def device(self, login: AuthgearLogin) -> str:
        # not through sessions_views: the admin module must not import the views
        return describe(login.user_agent, gettext)


class AuthgearLoginInline(LoginDeviceMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = AuthgearLogin
    formset = RevokingInlineFormSet
    extra = 0
    fields = LOGIN_FIELDS
    readonly_fields = LOGIN_FIELDS
    verbose_name = _("login (tick “Delete” and save to revoke it)")
    verbose_name_plural = _("logins (tick “Delete” and save to revoke them at Authgear)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuthgearAccount)
class AuthgearAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "sub", "email", "active_logins", "last_login_at", "last_refresh")
    list_select_related = ("user",)
    search_fields = ("sub", "email", "user__username", "user__email")
    list_filter = ("user__is_active", "last_login_at", "created_at")
    ordering = ("-last_login_at",)
    readonly_fields = (
        "user_link",
        "sub",
        "email",
        "claims_json",
        "synced_groups",
        "created_at",
        "updated_at",
        "last_login_at",
    )
    fields = readonly_fields
    inlines = [AuthgearLoginInline]
    actions = ["unlink_accounts", "revoke_all_logins"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuthgearAccount]:
        accounts: QuerySet[AuthgearAccount] = (
            super()
            .get_queryset(request)
            .annotate(
                login_count=Count("logins", distinct=True),
                last_refresh_at=Max("logins__last_refreshed_at"),
            )
        )
        return accounts

    @admin.display(description=_("active logins"), ordering="login_count")
    def active_logins(self, account: Any) -> int:
        return int(getattr(account, "login_count", 0))

    @admin.display(description=_("last refresh"), ordering="last_refresh_at")
    def last_refresh(self, account: Any) -> Any:
        return getattr(account, "last_refresh_at", None)

    @admin.display(description=_("user"))
    def user_link(self, account: AuthgearAccount) -> str:
        user = account.user
        opts = user._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[user.pk])
        except Exception:
            return str(user)
        return format_html('<a href="{}">{}</a>', url, user)

    @admin.display(description=_("last userinfo claims"))
    def claims_json(self, account: AuthgearAccount) -> str:
        return format_html("<pre>{}</pre>", json.dumps(account.claims, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # links are made by logging in, never by hand

    def delete_model(self, request: HttpRequest, obj: AuthgearAccount) -> None:
        end_logins(logins_of_user(obj.user_id), reason="unlink", revoke=True, end_sessions=True)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AuthgearAccount]) -> None:
        for account in queryset:
            self.delete_model(request, account)

    @admin.action(
        description=_("Unlink selected accounts (revokes their logins)"), permissions=["delete"]
    )
    def unlink_accounts(self, request: HttpRequest, queryset: QuerySet[AuthgearAccount]) -> None:
        count = 0
        for account in queryset:
            self.delete_model(request, account)
            count += 1
        messages.success(
            request,
            gettext(
                "Unlinked %(count)d account(s). Their Django users remain; the next Authgear "
                "login of those users creates or links an account again."
            )
            % {"count": count},
        )

    @admin.action(description=_("Revoke all logins of selected accounts"), permissions=["delete"])
    def revoke_all_logins(self, request: HttpRequest, queryset: QuerySet[AuthgearAccount]) -> None:
        logins = AuthgearLogin.objects.filter(account__in=queryset).select_related("account")
        _report(request, *revoke_logins(list(logins)))


@admin.register(AuthgearLogin)
class AuthgearLoginAdmin(LoginDeviceMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "account",
        "device",
        "ip_address",
        "created_at",
        "last_refreshed_at",
        "last_checked_at",
        "access_token_expires_at",
    )
    list_select_related = ("account__user",)
    search_fields = ("account__sub", "account__email", "account__user__username", "user_agent")
    list_filter = ("created_at", "last_refreshed_at")
    ordering = ("-created_at",)
    fields = ("account", *LOGIN_FIELDS, "scope")
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: AuthgearLogin) -> None:
        revoke_logins([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AuthgearLogin]) -> None:
        # Django's "delete selected" action comes here too: deleting always revokes.
        revoke_logins(list(queryset.select_related("account")))

    @admin.action(
        description=_("Revoke selected logins (at Authgear and here)"), permissions=["delete"]
    )
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[AuthgearLogin]) -> None:
        _report(request, *revoke_logins(list(queryset.select_related("account"))))


class AuthgearAccountUserInline(admin.StackedInline):  # type: ignore[type-arg]
    """Shown on Django's user page: the user's Authgear link, read-only."""

    model = AuthgearAccount
    fk_name = "user"
    can_delete = False
    extra = 0
    max_num = 0
    fields = ("sub", "email", "last_login_at", "account_link")
    readonly_fields = fields
    verbose_name = _("Authgear account")
    verbose_name_plural = _("Authgear account")

    @admin.display(description=_("manage"))
    def account_link(self, account: AuthgearAccount) -> str:
        url = reverse("admin:authgear_django_authgearaccount_change", args=[account.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Logins and unlinking"))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuthgearUserAdminMixin:
    """Opt-in: add the Authgear link to a user admin the project defines itself.

    ``class UserAdmin(AuthgearUserAdminMixin, django.contrib.auth.admin.UserAdmin)``: the inline
    is part of the class, so it does not depend on the order in which apps are loaded.
    """

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))  # type: ignore[misc]
        if AuthgearAccountUserInline not in inlines:
            inlines.append(AuthgearAccountUserInline)
        return inlines


def user_admin_shows_link(site: admin.AdminSite | None = None) -> bool | None:
    """Whether the user admin shows the Authgear link; None when no user admin is registered."""
    site = site or admin.site
    user_admin = site._registry.get(get_user_model())
    if user_admin is None:
        return None
    return isinstance(user_admin, AuthgearUserAdminMixin) or (
        AuthgearAccountUserInline in user_admin.inlines
    )


def attach_to_user_admin(site: admin.AdminSite | None = None) -> bool:
    """Add the Authgear link to the registered user admin; called from ``AppConfig.ready``.

    Runs after ``django.contrib.admin`` has autodiscovered every app's admin module (when this
    app is listed after it), never at import: importing this module changes no other app's admin.
    Returns whether the user admin now shows the link (a system check reports when it does not).
    """
    site = site or admin.site
    shown = user_admin_shows_link(site)
    if shown is None:
        return False
    if not shown:
        user_admin = site._registry[get_user_model()]
        user_admin.inlines = [*user_admin.inlines, AuthgearAccountUserInline]  # type: ignore[misc]
    return True

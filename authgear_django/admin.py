"""Admin for linked Authgear users. Token columns are never listed, shown or editable."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from authgear_django.models import AuthgearAccount, AuthgearLogin


class AuthgearLoginInline(admin.TabularInline):  # type: ignore[type-arg]
    model = AuthgearLogin
    extra = 0
    can_delete = True
    fields = (
        "created_at",
        "user_agent",
        "access_token_expires_at",
        "last_refreshed_at",
        "refresh_count",
    )
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(AuthgearAccount)
class AuthgearAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "sub", "email", "last_login_at", "created_at")
    list_select_related = ("user",)
    search_fields = ("sub", "email", "user__username", "user__email")
    list_filter = ("last_login_at", "created_at")
    ordering = ("-last_login_at",)
    readonly_fields = (
        "user",
        "sub",
        "email",
        "claims",
        "created_at",
        "updated_at",
        "last_login_at",
    )
    inlines = [AuthgearLoginInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # links are made by logging in, never by hand

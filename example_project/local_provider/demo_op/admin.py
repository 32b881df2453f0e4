"""The provider's admin: Django's user admin plus "End sessions (revoke grants)".

The action does what Authgear's admin "revoke all sessions" does, and what the
``end_sessions`` command does: every refresh and access token of the selected users is
revoked and their logins at the provider end, so each client signs them out at its next
refresh or userinfo call. DOT registers its token models itself (tokens masked).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from example_project.local_provider.demo_op.sessions import end_sessions

User = get_user_model()


class ProviderUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Django's user admin with the session-ending action."""

    actions = ["end_user_sessions"]

    @admin.action(description="End sessions (revoke grants)", permissions=["change"])
    def end_user_sessions(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        grants = access_tokens = 0
        users = 0
        for user in queryset:
            ended = end_sessions(user)
            grants += ended.grants
            access_tokens += ended.access_tokens
            users += 1
        self.message_user(
            request,
            ngettext(
                "Ended the sessions of %(users)d user: %(grants)d grant(s) and "
                "%(access_tokens)d access token(s) revoked.",
                "Ended the sessions of %(users)d users: %(grants)d grant(s) and "
                "%(access_tokens)d access token(s) revoked.",
                users,
            )
            % {"users": users, "grants": grants, "access_tokens": access_tokens},
        )


# django.contrib.auth registered the plain UserAdmin first (it comes earlier in INSTALLED_APPS).
if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ProviderUserAdmin)

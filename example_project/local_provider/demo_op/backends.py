"""Log in with the email address (case-insensitive) or the username, and a password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q
from django.http import HttpRequest


class EmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if not username or password is None:
            return None
        candidates = user_model._default_manager.filter(
            Q(email__iexact=username) | Q(**{user_model.USERNAME_FIELD: username})
        ).order_by("pk")
        for user in candidates:
            if user.check_password(password) and self.user_can_authenticate(user):
                return user
        if not candidates:
            # Spend the time of one hash anyway, as ModelBackend does (timing attacks).
            user_model().set_password(password)
        return None

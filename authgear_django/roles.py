"""Authgear roles → Django groups (and optionally ``is_staff`` / ``is_superuser``).

Applied at every login and every refresh, so a role removed at Authgear removes the group here
at the next of either. Off unless ``AUTHGEAR_ROLE_GROUPS``, ``AUTHGEAR_STAFF_ROLES`` or
``AUTHGEAR_SUPERUSER_ROLES`` is set. Only groups this app manages are ever removed: the
mapping's groups, or (mirror mode) the groups it added earlier; groups given by hand stay.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from authgear_django.conf import conf
from authgear_django.models import AuthgearAccount

logger = logging.getLogger("authgear_django")

ROLES_CLAIM = "https://authgear.com/claims/user/roles"
GROUP_NAME_MAX = 150


def roles_sync_enabled() -> bool:
    return (
        conf.AUTHGEAR_ROLE_GROUPS is not None
        or conf.AUTHGEAR_STAFF_ROLES is not None
        or conf.AUTHGEAR_SUPERUSER_ROLES is not None
    )


def sync_roles(user: Any, account: AuthgearAccount, claims: dict[str, Any]) -> None:
    """Make the user's managed groups and flags match the roles in ``claims``."""
    if not roles_sync_enabled():
        return
    raw_roles = claims.get(ROLES_CLAIM)
    if not isinstance(raw_roles, list):
        logger.debug("authgear_django: no roles claim for %s; roles left unchanged", account.sub)
        return
    roles = {role for role in raw_roles if isinstance(role, str) and role}
    with transaction.atomic():
        _sync_groups(user, account, roles)
        _sync_flags(user, roles)


def _sync_groups(user: Any, account: AuthgearAccount, roles: set[str]) -> None:
    mapping = conf.AUTHGEAR_ROLE_GROUPS
    if mapping is None or not hasattr(user, "groups"):
        return
    if mapping == "*":
        wanted = {role[:GROUP_NAME_MAX] for role in roles}
        managed = wanted | set(account.synced_groups or [])
    else:
        assert isinstance(mapping, dict)
        wanted = {name for role in roles for name in mapping.get(role, [])}
        managed = {name for names in mapping.values() for name in names}
    current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
    to_add = wanted - current
    to_remove = current - wanted
    if to_add:
        groups = [Group.objects.get_or_create(name=name)[0] for name in sorted(to_add)]
        user.groups.add(*groups)
    if to_remove:
        user.groups.remove(*Group.objects.filter(name__in=to_remove))
    if sorted(wanted) != sorted(account.synced_groups or []):
        account.synced_groups = sorted(wanted)
        account.save(update_fields=["synced_groups", "updated_at"])
    if to_add or to_remove:
        logger.info(
            "authgear_django: user %s groups +%s -%s from Authgear roles",
            user.pk,
            sorted(to_add),
            sorted(to_remove),
        )


def _sync_flags(user: Any, roles: set[str]) -> None:
    changed = []
    for field, role_names in (
        ("is_staff", conf.AUTHGEAR_STAFF_ROLES),
        ("is_superuser", conf.AUTHGEAR_SUPERUSER_ROLES),
    ):
        if role_names is None or not hasattr(user, field):
            continue
        value = bool(roles & set(role_names))
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)

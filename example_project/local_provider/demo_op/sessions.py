"""Ending a user's sessions at the provider, as Authgear's admin "revoke sessions" does.

A "grant" here is a refresh-token family (its id is the uuid before the dot of every refresh
token of one login, and the one in that login's ``sid``): Authgear's offline grant. Ending a
grant revokes its live refresh token and deletes its access token, so the client's next
refresh answers ``invalid_grant`` and its next userinfo call answers 401, which is how a
client of Authgear learns that the session ended (Authgear has no back-channel logout).

Ending every session of a user also ends the user's own logins at the provider (its Django
sessions), as Authgear ends the IdP session with its grants: the next sign-in asks for the
password again. Used by the ``end_sessions`` command and the admin's user action.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model


@dataclass(frozen=True)
class Grant:
    """One live login of a user at a client: what an operator needs to pick it (no token)."""

    id: uuid.UUID
    client_id: str
    started: datetime


@dataclass(frozen=True)
class EndedSessions:
    """What ending sessions removed, for the operator's message."""

    grants: int
    access_tokens: int
    provider_logins: int


def live_grants(user: Any) -> list[Grant]:
    """The user's grants that still hold a live refresh token, oldest first."""
    refresh_token_model = get_refresh_token_model()
    live = refresh_token_model.objects.filter(
        user=user, revoked__isnull=True, token_family__isnull=False
    ).select_related("application")
    clients = {row.token_family: row.application.client_id for row in live}
    # A grant started with its first refresh token; rotation left the older rows revoked.
    started = (
        refresh_token_model.objects.filter(user=user, token_family__in=list(clients))
        .values("token_family")
        .annotate(first=Min("created"))
    )
    grants = [
        Grant(id=row["token_family"], client_id=clients[row["token_family"]], started=row["first"])
        for row in started
    ]
    return sorted(grants, key=lambda grant: (grant.started, str(grant.id)))


def end_sessions(user: Any, grant_ids: Collection[uuid.UUID] | None = None) -> EndedSessions:
    """Revoke the user's grants (all, or only ``grant_ids``) and their access tokens.

    With ``grant_ids=None`` everything goes: every refresh token, every access token (also
    those issued without ``offline_access``) and the user's logins at the provider itself.
    Naming grants ends only those logins; the provider login that made them stays.
    """
    refresh_token_model = get_refresh_token_model()
    access_token_model = get_access_token_model()
    with transaction.atomic():
        live = refresh_token_model.objects.filter(user=user, revoked__isnull=True)
        if grant_ids is not None:
            live = live.filter(token_family__in=list(grant_ids))
        refresh_tokens = list(live)
        access_tokens = sum(1 for row in refresh_tokens if row.access_token_id is not None)
        for refresh_token in refresh_tokens:
            # DOT's own revocation: the row stays as a revoked tombstone, its access token goes.
            refresh_token.revoke()
        grants = len({row.token_family or row.pk for row in refresh_tokens})
        provider_logins = 0
        if grant_ids is None:
            deleted, _ = access_token_model.objects.filter(user=user).delete()
            access_tokens += deleted
            provider_logins = _end_provider_logins(user)
    return EndedSessions(
        grants=grants, access_tokens=access_tokens, provider_logins=provider_logins
    )


def _end_provider_logins(user: Any) -> int:
    """Delete the unexpired Django sessions of the provider in which ``user`` is signed in."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    return ended

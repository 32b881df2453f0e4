"""``manage.py authgear_revoke``: end Authgear logins from the command line.

For an administrator who must cut someone off (a lost laptop, a departing employee, a
compromised account) or expire old logins, without the user's browser: each matching login's
refresh token is revoked at Authgear, its token record deleted and its Django session ended.

When Authgear cannot be reached, the logins are still removed here and the command exits 0 with
a warning: the user is logged out of this site either way, and the refresh tokens are gone from
our database, so running the command again could not revoke them. Revoke the user's sessions in
the Authgear portal to end them there too.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone

from authgear_django.crypto import TokenDecryptionError
from authgear_django.management import (
    MAX_CONSECUTIVE_REVOKE_FAILURES,
    last_active,
    positive_int,
)
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.store import end_logins

REASON = "admin_revoke"
CHUNK = 500


class Command(BaseCommand):
    help = (
        "Revoke Authgear logins: revoke each refresh token at Authgear, delete the token record "
        "and end the Django session. Select logins with --user, --sub and/or --inactive-days "
        "(several selectors must all match; a repeated selector matches any of its values)."
    )
    # An operational tool: run it even when `manage.py check` has something to say.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="USERNAME_OR_PK",
            help="Logins of this Django user (username, else primary key). Repeatable.",
        )
        parser.add_argument(
            "--sub",
            action="append",
            default=[],
            metavar="SUB",
            help="Logins of this Authgear user ID (the sub claim). Repeatable.",
        )
        parser.add_argument(
            "--inactive-days",
            type=positive_int,
            metavar="N",
            help="Logins not refreshed (or, if never refreshed, created) in the last N days.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the matching logins and change nothing (no call to Authgear).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users: list[str] = options["user"]
        subs: list[str] = options["sub"]
        inactive_days: int | None = options["inactive_days"]
        if not users and not subs and inactive_days is None:
            raise CommandError("give at least one of --user, --sub or --inactive-days")

        logins = AuthgearLogin.objects.all()
        if users:
            logins = logins.filter(account__user_id__in=[_user_pk(value) for value in users])
        if subs:
            _require_subs(subs)
            logins = logins.filter(account__sub__in=subs)
        if inactive_days is not None:
            cutoff = timezone.now() - timedelta(days=inactive_days)
            logins = logins.alias(last_active=last_active()).filter(last_active__lt=cutoff)
        pks = list(logins.order_by("pk").values_list("pk", flat=True))

        if options["dry_run"]:
            self._list(logins.select_related("account__user").order_by("pk"))
            self.stdout.write(f"dry run: {len(pks)} login(s) would be revoked; nothing changed")
            return
        self._revoke(pks, verbose=options["verbosity"] >= 2)

    def _list(self, logins: QuerySet[AuthgearLogin]) -> None:
        for login in logins:
            last = login.last_refreshed_at or login.created_at
            line = (
                f"  {login.pk}  user={login.account.user}  sub={login.account.sub}  "
                f"last active {last:%Y-%m-%d %H:%M}  {login.user_agent[:60]}"
            )
            self.stdout.write(line.rstrip())

    def _revoke(self, pks: list[uuid.UUID], *, verbose: bool) -> None:
        revoked = nothing_to_revoke = failed = 0
        consecutive_failures = 0
        for start in range(0, len(pks), CHUNK):
            chunk = AuthgearLogin.objects.filter(pk__in=pks[start : start + CHUNK])
            for login in chunk.select_related("account").order_by("pk"):
                has_token = _has_usable_refresh_token(login)
                # Authgear looks down: stop waiting for timeouts, still log everyone out here.
                call_authgear = has_token and consecutive_failures < MAX_CONSECUTIVE_REVOKE_FAILURES
                result = end_logins([login], reason=REASON, revoke=call_authgear, end_sessions=True)
                confirmed = result.revoked > 0
                if not result.ended:  # ended meanwhile elsewhere (logout, webhook, cleanup)
                    outcome = "already ended elsewhere; nothing done"
                elif not has_token:
                    nothing_to_revoke += 1
                    outcome = "removed (no refresh token to revoke)"
                elif confirmed:
                    revoked += 1
                    consecutive_failures = 0
                    outcome = "revoked at Authgear and removed"
                else:
                    failed += 1
                    consecutive_failures += 1
                    outcome = "NOT revoked at Authgear, removed here"
                if verbose:
                    self.stdout.write(f"  {login.pk}: {outcome}")

        total = revoked + nothing_to_revoke + failed
        self.stdout.write(f"logins ended (record deleted, session ended): {total}")
        self.stdout.write(f"  revoked at Authgear: {revoked}")
        self.stdout.write(f"  no refresh token to revoke: {nothing_to_revoke}")
        self.stdout.write(f"  failed to revoke at Authgear, removed here: {failed}")
        if failed:
            self.stderr.write(
                self.style.WARNING(
                    f"warning: {failed} refresh token(s) could not be revoked at Authgear (see "
                    "the authgear_django log); they stay valid there until they expire. Revoke "
                    "the users' sessions in the Authgear portal to end them."
                )
            )


def _user_pk(value: str) -> Any:
    """A user's primary key from a username (tried first) or a primary key."""
    user_model = get_user_model()
    found = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: value})
    pk = found.values_list("pk", flat=True).first()
    if pk is None:
        try:
            pk = user_model._default_manager.filter(pk=value).values_list("pk", flat=True).first()
        except (ValueError, TypeError, ValidationError):
            pk = None
    if pk is None:
        raise CommandError(f"no user with username or primary key {value!r}")
    return pk


def _require_subs(subs: list[str]) -> None:
    known = set(AuthgearAccount.objects.filter(sub__in=subs).values_list("sub", flat=True))
    unknown = [sub for sub in subs if sub not in known]
    if unknown:
        raise CommandError(f"no Authgear account with sub {', '.join(map(repr, unknown))}")


def _has_usable_refresh_token(login: AuthgearLogin) -> bool:
    try:
        return bool(login.refresh_token)
    except TokenDecryptionError:
        return False

"""``end_sessions <email>``: end a user's sessions at the provider (for scripts and tests).

- ``end_sessions demo@example.com``: revoke every grant (refresh and access tokens) of the
  user and end the user's logins at the provider, like the admin's "End sessions (revoke
  grants)" action and Authgear's "revoke all sessions".
- ``--list``: print the user's live grants, oldest first (``grant <id> client <client_id>
  started <ISO time>``), and change nothing.
- ``--grant <id>`` (repeatable): revoke only these grants (ids as ``--list`` prints them);
  the provider login stays. A grant that is not a live grant of that user is an error.

Clients find out at their next refresh (``invalid_grant``) or userinfo call (401). No token
is ever printed.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from example_project.local_provider.demo_op.sessions import end_sessions, live_grants


def _grant_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"--grant {value!r} is not a grant id (a UUID)") from None


class Command(BaseCommand):
    help = "Revoke a user's grants (refresh and access tokens) so their clients sign them out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="The user's email address (or username).")
        parser.add_argument(
            "--grant",
            action="append",
            default=[],
            metavar="ID",
            help="Revoke only this grant (repeatable); see --list.",
        )
        parser.add_argument(
            "--list", action="store_true", help="Print the user's live grants; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = self.find_user(options["email"])
        grants = live_grants(user)
        if options["list"]:
            for grant in grants:
                self.stdout.write(
                    f"grant {grant.id} client {grant.client_id} started {grant.started.isoformat()}"
                )
            return
        wanted = {_grant_id(value) for value in options["grant"]} or None
        if wanted is not None:
            unknown = wanted - {grant.id for grant in grants}
            if unknown:
                names = ", ".join(sorted(str(grant_id) for grant_id in unknown))
                raise CommandError(f"not a live grant of {user.get_username()}: {names}")
        ended = end_sessions(user, wanted)
        self.stdout.write(
            f"{user.get_username()}: revoked {ended.grants} grant(s), "
            f"{ended.access_tokens} access token(s); "
            f"ended {ended.provider_logins} provider login(s)"
        )

    def find_user(self, email: str) -> Any:
        """The one user with this email (case-insensitive) or username; else an error."""
        user_model = get_user_model()
        users = list(
            user_model._default_manager.filter(
                Q(email__iexact=email) | Q(**{user_model.USERNAME_FIELD: email})
            )[:2]
        )
        if not users:
            raise CommandError(f"no user {email!r}")
        if len(users) > 1:
            raise CommandError(f"more than one user matches {email!r}")
        return users[0]

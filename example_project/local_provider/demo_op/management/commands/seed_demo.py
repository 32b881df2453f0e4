"""``seed_demo``: create or update the demo user and the demo client (idempotent).

- User ``demo@example.com`` / ``authgear-demo`` (Demo User), in the group ``admin``.
- Operator ``operator@example.com`` / ``authgear-demo``: staff and superuser of the provider's
  own admin (``/admin/``: users, tokens, "End sessions (revoke grants)"); like an Authgear
  portal admin, it is not meant to sign in to the example site.
- Confidential client ``demo-client`` / ``demo-secret``: authorization code, RS256,
  consent skipped. Redirect URIs come from ``LOCAL_OP_REDIRECT_URIS`` and post-logout
  redirect URIs from ``LOCAL_OP_POST_LOGOUT_REDIRECT_URIS`` (space-separated), or the
  options below; re-running replaces them.
- With ``--users N``: also the soak-test users ``soak-1@example.com`` ... ``soak-N@example.com``
  (Soak User <i>, no group), all with the demo password (hashed once, so N users cost one hash).
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from oauth2_provider.models import get_application_model

from example_project.local_provider.validators import user_sub

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "authgear-demo"
DEMO_FIRST_NAME = "Demo"
DEMO_LAST_NAME = "User"
DEMO_GROUP = "admin"
OPERATOR_EMAIL = "operator@example.com"
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
DEFAULT_REDIRECT_URIS = "http://127.0.0.1:8000/auth/callback/"
DEFAULT_POST_LOGOUT_REDIRECT_URIS = "http://127.0.0.1:8000/auth/logout/return/"
SOAK_EMAIL = "soak-{}@example.com"  # --users N: i = 1..N


class Command(BaseCommand):
    help = "Create or update the demo user and the demo-client application."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--redirect-uris",
            default=os.environ.get("LOCAL_OP_REDIRECT_URIS", "").strip() or DEFAULT_REDIRECT_URIS,
            help="Space-separated redirect URIs (env LOCAL_OP_REDIRECT_URIS).",
        )
        parser.add_argument(
            "--post-logout-redirect-uris",
            default=os.environ.get("LOCAL_OP_POST_LOGOUT_REDIRECT_URIS", "").strip()
            or DEFAULT_POST_LOGOUT_REDIRECT_URIS,
            help="Space-separated post-logout redirect URIs "
            "(env LOCAL_OP_POST_LOGOUT_REDIRECT_URIS).",
        )
        parser.add_argument(
            "--users",
            type=int,
            default=0,
            metavar="N",
            help="Also create or update N soak-test users soak-<i>@example.com (i = 1..N) "
            f"with the password {DEMO_PASSWORD!r}.",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if options["users"] < 0:
            raise CommandError("--users must be 0 or more")
        redirect_uris = " ".join(options["redirect_uris"].split())
        post_logout_redirect_uris = " ".join(options["post_logout_redirect_uris"].split())

        user_model = get_user_model()
        user, user_created = user_model._default_manager.get_or_create(
            **{user_model.USERNAME_FIELD: DEMO_EMAIL}
        )
        user.email = DEMO_EMAIL
        user.first_name = DEMO_FIRST_NAME
        user.last_name = DEMO_LAST_NAME
        user.is_active = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        group, _ = Group.objects.get_or_create(name=DEMO_GROUP)
        user.groups.add(group)
        operator_created = self.seed_operator(password_hash=user.password)

        application_model = get_application_model()
        application = application_model.objects.filter(client_id=DEMO_CLIENT_ID).first()
        application_created = application is None
        if application is None:
            application = application_model(client_id=DEMO_CLIENT_ID)
        application.name = "authgear-django demo"
        application.client_type = application_model.CLIENT_CONFIDENTIAL
        application.authorization_grant_type = application_model.GRANT_AUTHORIZATION_CODE
        # DOT hashes the secret when saving; clients post the plain value.
        application.hash_client_secret = True
        application.client_secret = DEMO_CLIENT_SECRET
        application.algorithm = application_model.RS256_ALGORITHM
        application.redirect_uris = redirect_uris
        application.post_logout_redirect_uris = post_logout_redirect_uris
        application.skip_authorization = True
        try:
            application.clean()
        except ValidationError as error:
            raise CommandError(f"invalid demo-client settings: {error}") from None
        application.save()

        self.stdout.write(
            f"{'created' if user_created else 'updated'} user {DEMO_EMAIL} "
            f"(password {DEMO_PASSWORD}, sub {user_sub(user)}, groups [{DEMO_GROUP}])"
        )
        self.stdout.write(
            f"{'created' if application_created else 'updated'} client {DEMO_CLIENT_ID} "
            f"(secret {DEMO_CLIENT_SECRET})\n"
            f"  redirect URIs: {redirect_uris}\n"
            f"  post-logout redirect URIs: {post_logout_redirect_uris}"
        )
        self.stdout.write(
            f"{'created' if operator_created else 'updated'} provider admin {OPERATOR_EMAIL} "
            f"(password {DEMO_PASSWORD}, at /admin/)"
        )
        if options["users"]:
            self.seed_soak_users(options["users"])

    def seed_operator(self, password_hash: str) -> bool:
        """Create or update the provider admin's login; True when it was created.

        It gets the demo user's password hash (same password): no second slow hash.
        """
        user_model = get_user_model()
        operator, created = user_model._default_manager.get_or_create(
            **{user_model.USERNAME_FIELD: OPERATOR_EMAIL}
        )
        operator.email = OPERATOR_EMAIL
        operator.first_name = "Provider"
        operator.last_name = "Operator"
        operator.is_active = True
        operator.is_staff = True
        operator.is_superuser = True
        operator.password = password_hash
        operator.save()
        return bool(created)

    def seed_soak_users(self, count: int) -> None:
        """Create or update soak-1..soak-<count>@example.com in two bulk queries."""
        user_model = get_user_model()
        username_field = user_model.USERNAME_FIELD
        manager = user_model._default_manager
        emails = [SOAK_EMAIL.format(i) for i in range(1, count + 1)]
        existing = {
            user.get_username(): user
            for user in manager.filter(**{f"{username_field}__in": emails})
        }
        password = make_password(DEMO_PASSWORD)  # one hash (and salt) for every soak user
        created, updated = [], []
        for i, email in enumerate(emails, start=1):
            user = existing.get(email) or user_model(**{username_field: email})
            user.email = email
            user.first_name = "Soak"
            user.last_name = f"User {i}"
            user.is_active = True
            user.password = password
            (updated if email in existing else created).append(user)
        manager.bulk_create(created)
        manager.bulk_update(updated, ["email", "first_name", "last_name", "is_active", "password"])
        self.stdout.write(
            f"soak users {emails[0]} .. {emails[-1]} (password {DEMO_PASSWORD}): "
            f"{len(created)} created, {len(updated)} updated"
        )

"""``manage.py authgear_rotate_key``: re-encrypt stored tokens under the newest key.

Rotating ``AUTHGEAR_TOKEN_ENCRYPTION_KEYS`` (or ``SECRET_KEY``) puts a new key first and keeps
the old ones for decryption; the old keys can only be dropped once no stored token needs them.
This command gets there: it re-encrypts every token under the first key, in batches ordered by
primary key, each batch in a transaction with its rows locked so a concurrent refresh is never
overwritten. Tokens already under the first key are skipped, so re-running (or resuming with
``--after``) is cheap.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from authgear_django.conf import conf
from authgear_django.crypto import TokenCipher, TokenDecryptionError
from authgear_django.management import positive_int
from authgear_django.models import AuthgearLogin

TOKEN_FIELDS = ("encrypted_refresh_token", "encrypted_access_token", "encrypted_id_token")
ROTATED = "rotated"
CURRENT = "current"
UNDECRYPTABLE = "undecryptable"


class Command(BaseCommand):
    help = (
        "Re-encrypt the stored Authgear tokens under the first key of "
        "AUTHGEAR_TOKEN_ENCRYPTION_KEYS, in locked batches ordered by primary key. Safe to "
        "re-run; rows no configured key can decrypt are left untouched and counted."
    )
    # A maintenance tool: run it even when `manage.py check` has something to say.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=500,
            metavar="N",
            help="Rows per transaction (default 500).",
        )
        parser.add_argument(
            "--after",
            type=_login_pk,
            metavar="PK",
            help="Resume: only rows whose primary key sorts after this one.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be re-encrypted; write nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keys = conf.AUTHGEAR_TOKEN_ENCRYPTION_KEYS
        if not keys:
            raise CommandError("no token encryption key: set AUTHGEAR_TOKEN_ENCRYPTION_KEYS")
        cipher = TokenCipher(keys)
        newest = TokenCipher(keys[:1])
        dry_run: bool = options["dry_run"]
        batch_size: int = options["batch_size"]
        verbose = options["verbosity"] >= 2
        started_after: uuid.UUID | None = options["after"]

        counts = {ROTATED: 0, CURRENT: 0, UNDECRYPTABLE: 0}
        after = started_after
        try:
            while True:
                with transaction.atomic():
                    query = AuthgearLogin.objects.select_for_update().only("id", *TOKEN_FIELDS)
                    if after is not None:
                        query = query.filter(pk__gt=after)
                    rows = list(query.order_by("pk")[:batch_size])
                    if not rows:
                        break
                    outcomes = [_rotate(row, cipher, newest) for row in rows]
                    changed = [
                        row
                        for row, outcome in zip(rows, outcomes, strict=True)
                        if outcome == ROTATED
                    ]
                    if changed and not dry_run:
                        AuthgearLogin.objects.bulk_update(changed, TOKEN_FIELDS)
                after = rows[-1].pk
                for outcome in outcomes:
                    counts[outcome] += 1
                if verbose:
                    self.stdout.write(f"  batch done up to {after} ({len(changed)} rotated)")
        except KeyboardInterrupt:
            resume = f" --after {after}" if after is not None else ""
            raise CommandError(
                f"interrupted; batches up to {after} are done; resume with: "
                f"manage.py authgear_rotate_key{resume}"
            ) from None

        verb = "would re-encrypt" if dry_run else "re-encrypted"
        total = sum(counts.values())
        self.stdout.write(f"checked {total} login(s):")
        self.stdout.write(f"  {verb} under the first key: {counts[ROTATED]}")
        self.stdout.write(f"  already under the first key: {counts[CURRENT]}")
        self.stdout.write(f"  undecryptable, left untouched: {counts[UNDECRYPTABLE]}")
        if counts[UNDECRYPTABLE]:
            self.stderr.write(
                self.style.WARNING(
                    f"warning: {counts[UNDECRYPTABLE]} login(s) have tokens no configured key "
                    "can decrypt; they are dead already (manage.py authgear_cleanup deletes them)"
                )
            )
        elif not dry_run and started_after is None and len(keys) > 1:
            self.stdout.write(
                "every stored token is now under the first key: once every process runs with "
                "it first, the other keys can be removed"
            )


def _rotate(row: AuthgearLogin, cipher: TokenCipher, newest: TokenCipher) -> str:
    """Re-encrypt the row's tokens in memory; a row with any undecryptable token is untouched."""
    new_values: dict[str, str] = {}
    for field in TOKEN_FIELDS:
        ciphertext: str = getattr(row, field)
        if not ciphertext:
            continue
        try:
            newest.decrypt(ciphertext)
            continue  # already under the first key: nothing to do
        except TokenDecryptionError:
            pass
        try:
            new_values[field] = cipher.rotate(ciphertext)
        except TokenDecryptionError:
            return UNDECRYPTABLE
    if not new_values:
        return CURRENT
    for field, value in new_values.items():
        setattr(row, field, value)
    return ROTATED


def _login_pk(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a login's primary key (a UUID)"
        ) from None

"""Who is linked to which Authgear user, and the (encrypted) tokens of each login."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.signals import post_save
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authgear_django.client import TokenSet
from authgear_django.conf import conf
from authgear_django.crypto import TokenCipher


def token_cipher() -> TokenCipher:
    return TokenCipher(conf.AUTHGEAR_TOKEN_ENCRYPTION_KEYS)


class AuthgearAccount(models.Model):
    """The link between a Django user and an Authgear user (``sub``), with the last claims seen."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authgear_account",
        verbose_name=_("user"),
    )
    sub = models.CharField(_("Authgear user ID (sub)"), max_length=255, unique=True)
    email = models.CharField(_("email at Authgear"), max_length=254, blank=True)
    claims = models.JSONField(_("last userinfo claims"), default=dict, blank=True)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_login_at = models.DateTimeField(_("last login"), null=True, blank=True)
    synced_groups = models.JSONField(
        _("groups from Authgear roles"),
        default=list,
        blank=True,
        help_text=_(
            "Groups this app added from the user's Authgear roles (removed with the role)."
        ),
    )
    # Webhook ordering: Authgear numbers its events with one increasing ``seq``, so a delivery
    # whose seq is not above the last one applied to the same attribute is older news and is
    # not applied. Status (disabled / reenabled / deleted) and profile are independent: a late
    # profile update still applies after a newer disable.
    webhook_status_seq = models.BigIntegerField(
        _("last status event applied (seq)"), null=True, blank=True, editable=False
    )
    webhook_profile_seq = models.BigIntegerField(
        _("last profile event applied (seq)"), null=True, blank=True, editable=False
    )
    deactivated_by_webhook = models.BooleanField(
        _("deactivated by an Authgear webhook"),
        default=False,
        editable=False,
        help_text=_(
            "Set when user.disabled deactivated the user; only then does user.reenabled "
            "reactivate them. A deactivation made here (admin, shell) is never undone by Authgear."
        ),
    )

    class Meta:
        verbose_name = _("Authgear account")
        verbose_name_plural = _("Authgear accounts")
        ordering = ["-last_login_at"]

    def __str__(self) -> str:
        return f"{self.user} ↔ {self.sub}"


class AuthgearLogin(models.Model):
    """One login (a browser session) and its tokens: a laptop and a phone are two rows.

    Tokens are stored only encrypted. The session holds this row's id and the access token's
    expiry, so a logged-in request needs no query here until a refresh is due.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        AuthgearAccount, on_delete=models.CASCADE, related_name="logins", verbose_name=_("account")
    )
    session_key = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    encrypted_refresh_token = models.TextField(blank=True, editable=False)
    encrypted_access_token = models.TextField(blank=True, editable=False)
    encrypted_id_token = models.TextField(blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(_("access token expires"), null=True, blank=True)
    access_token_lifetime = models.PositiveIntegerField(
        _("access token lifetime (s)"), null=True, blank=True
    )
    scope = models.CharField(_("scope"), max_length=1000, blank=True)
    sid = models.CharField(_("Authgear session (sid)"), max_length=255, blank=True)
    auth_time = models.DateTimeField(_("authenticated at"), null=True, blank=True)
    user_agent = models.CharField(_("User-Agent"), max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(
        _("IP address at sign-in"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("logged in at"), auto_now_add=True)
    last_refreshed_at = models.DateTimeField(_("last refresh"), null=True, blank=True)
    last_checked_at = models.DateTimeField(
        _("Authgear session last confirmed"), null=True, blank=True, editable=False
    )
    refresh_count = models.PositiveIntegerField(_("refresh count"), default=0)
    # Set when a refresh stored an ID token whose key could not be fetched yet (the tokens are
    # kept: with rotation the old refresh token is dead); cleared once it is verified. Kept on
    # the row, read under its lock, so that no overlapping session save can lose it.
    id_token_unverified_since = models.DateTimeField(
        _("ID token unverified since"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("Authgear login")
        verbose_name_plural = _("Authgear logins")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        # Shown in the admin (titles, breadcrumbs, deletion pages): in the reader's language.
        return gettext("login of %(user)s at %(time)s") % {
            "user": self.account.user,
            "time": f"{self.created_at:%Y-%m-%d %H:%M}",
        }

    # --- token access (decrypting on demand) -------------------------------------------------

    @property
    def refresh_token(self) -> str | None:
        return self._decrypt(self.encrypted_refresh_token)

    @property
    def access_token(self) -> str | None:
        return self._decrypt(self.encrypted_access_token)

    @property
    def id_token(self) -> str | None:
        return self._decrypt(self.encrypted_id_token)

    def _decrypt(self, ciphertext: str) -> str | None:
        return token_cipher().decrypt(ciphertext) if ciphertext else None

    def store_tokens(
        self, tokens: TokenSet, *, id_token_claims: dict[str, Any] | None, now: datetime
    ) -> None:
        """Keep a token response; a missing refresh or ID token keeps the one we have.

        Authgear sends a new refresh token only when rotation is on, and the old one stays
        valid otherwise, so it must not be erased.
        """
        cipher = token_cipher()
        self.encrypted_access_token = cipher.encrypt(tokens.access_token)
        if tokens.refresh_token:
            self.encrypted_refresh_token = cipher.encrypt(tokens.refresh_token)
        if tokens.id_token:
            self.encrypted_id_token = cipher.encrypt(tokens.id_token)
        if tokens.scope:
            self.scope = tokens.scope[:1000]
        self.access_token_lifetime = tokens.expires_in
        self.access_token_expires_at = (
            now + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None
        )
        if id_token_claims:
            sid = id_token_claims.get("sid")
            if isinstance(sid, str):
                self.sid = sid[:255]
            auth_time = id_token_claims.get("auth_time")
            if isinstance(auth_time, (int, float)) and not isinstance(auth_time, bool):
                self.auth_time = datetime.fromtimestamp(auth_time, tz=dt_timezone.utc)


class AuthgearWebhookEvent(models.Model):
    """Webhook deliveries already handled, by Authgear event id: a redelivery is a no-op."""

    event_id = models.CharField(_("event id"), max_length=100, unique=True)
    event_type = models.CharField(_("type"), max_length=100)
    sub = models.CharField(_("Authgear user ID (sub)"), max_length=255, blank=True, db_index=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("Authgear webhook event")
        verbose_name_plural = _("Authgear webhook events")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


def _forget_webhook_deactivation(
    sender: Any, instance: Any, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    """A user made active here (admin, shell) owns ``is_active`` again: forget the webhook's mark.

    Without this, an admin who reactivates a user Authgear disabled and later deactivates them
    would see ``user.reenabled`` undo that second, local, decision.
    """
    if created or getattr(instance, "is_active", None) is not True:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    AuthgearAccount.objects.filter(user_id=instance.pk, deactivated_by_webhook=True).update(
        deactivated_by_webhook=False
    )


post_save.connect(
    _forget_webhook_deactivation,
    sender=settings.AUTH_USER_MODEL,
    dispatch_uid="authgear_django.forget_webhook_deactivation",
)

"""Signals sent by authgear_django. Receivers get ``sender`` plus the keyword arguments listed."""

from __future__ import annotations

from django.dispatch import Signal

# A login through Authgear finished and the user is logged in.
# kwargs: request, user, account (AuthgearAccount), login (AuthgearLogin),
#         created (bool: the Django user was created by this login), claims (dict: userinfo).
login_linked = Signal()

# An access token was refreshed with the refresh token.
# kwargs: login (AuthgearLogin), rotated (bool: Authgear issued a new refresh token).
tokens_refreshed = Signal()

# A refresh failed. kwargs: login (AuthgearLogin), error (AuthgearError),
#         fatal (bool: the login is dead, e.g. invalid_grant, and was ended).
refresh_failed = Signal()

# A login was ended here: its refresh token revoked at Authgear (best effort) and its row deleted.
# kwargs: login (AuthgearLogin, already deleted), reason (str: "logout", "replaced", ...),
#         revoked (bool: Authgear confirmed the revocation).
login_revoked = Signal()

# A verified Authgear webhook event arrived (sent once per event id, after the built-in handling).
# kwargs: event_type (str, e.g. "user.disabled"), event (dict: the whole delivery: id, seq,
#         type, payload, context), user (the linked Django user, or None), request.
webhook_received = Signal()

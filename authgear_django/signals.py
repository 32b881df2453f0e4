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
#         fatal (bool: the login is dead, e.g. invalid_grant, and was ended; ``login_revoked``
#         was sent for it just before, with reason "refresh_failed" or "id_token_invalid").
refresh_failed = Signal()

# A login's Authgear session was confirmed alive (one userinfo call, at most once per
# ``AUTHGEAR_SESSION_CHECK_INTERVAL``), after its claims were applied to the user: email and
# names (the backend's ``update_user``) and roles → groups, as a login does. Sent after the
# row lock is released. Not sent when the check found the session ended (``login_revoked``
# with reason "session_ended" is) or could not reach Authgear (the check is retried later).
# kwargs: login (AuthgearLogin), user (the linked Django user), claims (dict: userinfo).
session_checked = Signal()

# A login was ended here: its row deleted and, depending on the reason, its refresh token
# revoked at Authgear (best effort) and its Django session ended. Sent by
# ``authgear_django.store.end_logins`` (the only code that ends logins), exactly once per login:
# a login another request ended first is not reported again. Sent synchronously, right after the
# row is deleted; when the caller is inside a transaction (the webhook view, the refresh path),
# before it commits.
# kwargs: login (AuthgearLogin, already deleted; its pk is kept readable),
#         reason (str, one of the values below),
#         revoked (bool: Authgear confirmed the revocation; always False when none was asked).
# reason         revoked at Authgear?  who
#   "logout"            yes   the logout view, for the current login
#   "logout_everywhere" yes   the "log out everywhere" view, for every other login of the user
#   "replaced"          no    a new login in the same browser replaced this one (revoking could
#                             end the Authgear SSO session the new login belongs to)
#   "admin_revoke"      yes   the admin's revoke actions and ``manage.py authgear_revoke`` (the
#                             command stops calling Authgear after repeated failures)
#   "unlink"            yes   the admin unlinked (deleted) the Authgear account
#   "refresh_failed"    no    Authgear refused the refresh token (``invalid_grant``,
#                             ``invalid_client``, ``unauthorized_client``), or the stored tokens
#                             can no longer be decrypted
#   "id_token_invalid"  yes   a refreshed ID token is definitely invalid: bad signature with a
#                             published key, or another ``iss``, ``aud`` or ``sub`` (the newest
#                             refresh token, a rotated one included, is revoked)
#   "session_ended"     no    the liveness check found the Authgear session ended: userinfo
#                             answered 401 (Authgear revoked the grant already: signed out,
#                             session ended or revoked elsewhere, user disabled or deleted)
#   "webhook_disabled"  no    Authgear's ``user.disabled`` webhook (Authgear already refuses the
#                             user's refresh tokens)
#   "webhook_deleted"   no    Authgear's ``user.deleted`` / ``user.anonymized`` webhook
# ``manage.py authgear_cleanup`` deletes dead login rows in bulk and sends no signal.
login_revoked = Signal()

# A verified Authgear webhook event was applied (sent once per event id, after the built-in
# handling has committed, with ``send_robust``: a failing receiver is logged, never answered).
# NOT sent for an event that is not applied: a redelivery of an event id already handled, an
# event older than ``AUTHGEAR_WEBHOOK_MAX_EVENT_AGE`` (by ``context.timestamp``), or a status
# or profile event whose ``seq`` is not above the last one applied to that user (out of order:
# older news). Those are recorded, logged and answered 200, so receivers never act on stale news.
# kwargs: event_type (str, e.g. "user.disabled"), event (dict: the whole delivery: id, seq,
#         type, payload, context), user (the linked Django user, or None), request.
webhook_received = Signal()

# Authgear's token endpoint answered 429 (``x_rate_limited``: 120 calls a minute per client IP,
# 60 per user, code exchanges and refreshes alike) and a shared backoff started or grew: no
# worker calls it for a refresh for ``retry_after`` seconds (code exchanges go on). Sent once
# per backoff started or escalated, not for further 429s of calls already in flight (those are
# counted: ``manage.py authgear_status``). Sent with ``send_robust``.
# sender: ``authgear_django.token_endpoint.Backoff``.
# kwargs: retry_after (int: whole seconds until refreshes resume),
#         level (int: 1 for the first backoff, +1 each time 429s keep coming within 60 s).
token_endpoint_rate_limited = Signal()

"""Counters of token, revocation and document requests, and a test-only JSON endpoint for them.

The provider always counts (in memory, per process: ``runserver --noreload`` is one process),
but ``/_test/stats`` is only routed when ``LOCAL_OP_TEST_HOOKS=1``. End-to-end tests read it
to check, for example, that ten concurrent requests of one login made exactly one
``refresh_token`` grant, or that logging out revoked the refresh token.

``GET /_test/stats`` answers::

    {
      "token": {"authorization_code": {"ok": 1, "error": 0},
                "refresh_token": {"ok": 2, "error": 0}},
      "revoke": {"refresh_token": 1, "access_token": 0, "unknown": 0, "error": 0},
      "fetches": {"discovery": 1, "jwks": 1},
      "live_refresh_tokens": {"demo@example.com": 0},
      "live_access_tokens": {"demo@example.com": 0}
    }

- ``token.<grant_type>``: answers of ``/oauth2/token`` by grant type, ``ok`` = HTTP 200.
- ``revoke``: answers of ``/oauth2/revoke`` that were HTTP 200, by what the ``token`` was
  when the request arrived: a live (not yet revoked) refresh token, an access token, or
  anything else (unknown or already revoked: RFC 7009 still answers 200); ``error`` counts
  the other answers (e.g. bad client credentials).
- ``fetches``: GET requests of the discovery document (both ``.well-known`` paths) and of the
  JWKS, whatever the answer. The soak test checks with them that the site's workers share
  one cached copy (at most one fetch per cache period across all workers).
- ``live_*_tokens``: per user email, refresh tokens not revoked / access tokens not expired.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from oauth2_provider import views as dot_views
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from example_project.local_provider.token_rate_limit import rate_limited_response
from example_project.local_provider.views import DiscoveryView

_lock = threading.Lock()
_token_answers: defaultdict[str, Counter[str]] = defaultdict(Counter)
_revocations: Counter[str] = Counter()
_document_fetches: Counter[str] = Counter()


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token_kind(token: str) -> str:
    """What a token sent for revocation is: ``refresh_token``, ``access_token`` or ``unknown``."""
    if not token:
        return "unknown"
    checksum = _checksum(token)
    if (
        get_refresh_token_model()
        .objects.filter(token_checksum=checksum, revoked__isnull=True)
        .exists()
    ):
        return "refresh_token"
    if get_access_token_model().objects.filter(token_checksum=checksum).exists():
        return "access_token"
    return "unknown"


class CountingTokenView(dot_views.TokenView):
    """``/oauth2/token``: DOT's view, counting answers by grant type; Authgear's rate limit
    first when ``LOCAL_OP_TOKEN_RATE_LIMIT`` is set (token_rate_limit.py)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        grant_type = str(request.POST.get("grant_type", ""))[:64] or "(none)"
        limited = rate_limited_response(request)
        if limited is not None:
            with _lock:
                _token_answers[grant_type]["error"] += 1
            return limited
        try:
            response: HttpResponse = super().post(request, *args, **kwargs)
        except Exception:  # answered 500 by Django: an error answer too
            with _lock:
                _token_answers[grant_type]["error"] += 1
            raise
        with _lock:
            _token_answers[grant_type]["ok" if response.status_code == 200 else "error"] += 1
        return response


class CountingRevokeTokenView(dot_views.RevokeTokenView):
    """``/oauth2/revoke``: DOT's view, counting what was revoked."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        kind = _token_kind(str(request.POST.get("token", "")))
        try:
            response: HttpResponse = super().post(request, *args, **kwargs)
        except Exception:  # answered 500 by Django
            with _lock:
                _revocations["error"] += 1
            raise
        with _lock:
            _revocations[kind if response.status_code == 200 else "error"] += 1
        return response


class CountingDiscoveryView(DiscoveryView):
    """Discovery (``views.DiscoveryView``), counting each GET as a ``discovery`` fetch."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with _lock:
            _document_fetches["discovery"] += 1
        return super().get(request, *args, **kwargs)


class CountingJwksView(dot_views.JwksInfoView):
    """``/oauth2/jwks``: DOT's view, counting each GET as a ``jwks`` fetch."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with _lock:
            _document_fetches["jwks"] += 1
        response: HttpResponse = super().get(request, *args, **kwargs)
        return response


def _per_email(queryset: Any) -> dict[str, int]:
    rows = queryset.values("user__email").annotate(count=Count("id")).order_by("user__email")
    return {row["user__email"] or "": row["count"] for row in rows}


@never_cache
def stats(request: HttpRequest) -> JsonResponse:
    """``GET /_test/stats`` (only with ``LOCAL_OP_TEST_HOOKS=1``)."""
    with _lock:
        token = {
            grant: {"ok": counts["ok"], "error": counts["error"]}
            for grant, counts in sorted(_token_answers.items())
        }
        revoke = {
            kind: _revocations[kind]
            for kind in ("refresh_token", "access_token", "unknown", "error")
        }
        fetches = {name: _document_fetches[name] for name in ("discovery", "jwks")}
    now = timezone.now()
    return JsonResponse(
        {
            "token": token,
            "revoke": revoke,
            "fetches": fetches,
            "live_refresh_tokens": _per_email(
                get_refresh_token_model().objects.filter(revoked__isnull=True)
            ),
            "live_access_tokens": _per_email(
                get_access_token_model().objects.filter(expires__gt=now)
            ),
        },
        json_dumps_params={"sort_keys": True},
    )

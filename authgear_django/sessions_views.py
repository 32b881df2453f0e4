"""The "Your sessions" page (``/auth/sessions/``): where the signed-in user sees their logins on
this site and signs out the ones they do not recognise.

Every row is one :class:`~authgear_django.models.AuthgearLogin` of the user's own Authgear
account: device and browser (from the stored User-Agent), the IP address at sign-in, when it
signed in and when it was last active, and which one is this browser. No token is ever put in
the page's context. Signing out is a POST with Django's CSRF protection to the same URL:

- ``login=<id>``: end that login (revoked at Authgear, its Django session ended). Only the
  user's own logins can be named: any other id is a 404. Naming this browser's login logs this
  browser out and lands on ``LOGOUT_REDIRECT_URL``.
- ``others=1``: end every login of the user except this browser's.

A GET never ends anything. The template is ``authgear_django/sessions.html``; a project
overrides it like any app template.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import auth, messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic import View

from authgear_django.conf import conf
from authgear_django.devices import describe
from authgear_django.models import AuthgearAccount, AuthgearLogin
from authgear_django.store import end_logins, forget_login, logins_of_user, session_login_id
from authgear_django.views import logout_landing_url, say_signed_out

END_REASON = "user_ended"


def device_label(user_agent: str) -> str:
    """The device and browser of a login, in the active language."""
    return describe(user_agent, gettext)


@dataclass(frozen=True)
class SessionRow:
    """What the template shows of one login: never the row itself, so never a token."""

    id: str
    device: str
    user_agent: str
    ip_address: str | None
    signed_in_at: datetime
    last_active_at: datetime
    is_current: bool


def last_active(login: AuthgearLogin) -> datetime:
    """The latest sign of life: the last refresh, the last check at Authgear, or the sign-in."""
    times = [login.created_at, login.last_refreshed_at, login.last_checked_at]
    return max(moment for moment in times if moment is not None)


def session_rows(logins: list[AuthgearLogin], current_id: str | None) -> list[SessionRow]:
    """The rows to show, this browser first, then the newest sign-in first."""
    rows = [
        SessionRow(
            id=str(login.pk),
            device=device_label(login.user_agent),
            user_agent=login.user_agent,
            ip_address=login.ip_address,
            signed_in_at=login.created_at,
            last_active_at=last_active(login),
            is_current=login.pk.hex == current_id,
        )
        for login in logins
    ]
    rows.sort(key=lambda row: row.signed_in_at, reverse=True)
    rows.sort(key=lambda row: not row.is_current)
    return rows


def _is_this_browser(request: HttpRequest, login: AuthgearLogin, current_id: str | None) -> bool:
    """Whether ending ``login`` ends this browser's session (its id, or a stale row that still
    names this session's key: ending that session there would log this browser out unasked)."""
    session_key = request.session.session_key
    return login.pk.hex == current_id or bool(session_key and login.session_key == session_key)


def _parse_login_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404("No such session.") from None


@method_decorator([csrf_protect, never_cache], name="dispatch")
class AuthgearSessionsView(View):
    """List the user's logins (GET) and end one or all others (POST); see the module doc."""

    http_method_names = ["get", "post"]
    template_name = "authgear_django/sessions.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), conf.LOGIN_URL)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        user_id = request.user.pk
        logins = list(logins_of_user(user_id))
        rows = session_rows(logins, session_login_id(request.session))
        context = {
            "sessions": rows,
            "has_other_sessions": any(not row.is_current for row in rows),
            "has_authgear_account": bool(logins)
            or AuthgearAccount.objects.filter(user_id=user_id).exists(),
        }
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        current_id = session_login_id(request.session)
        if "login" in request.POST:
            return self.end_one(request, request.POST["login"], current_id)
        if "others" in request.POST:
            return self.end_others(request, current_id)
        return HttpResponse(gettext("Nothing to sign out."), status=400, content_type="text/plain")

    def end_one(self, request: HttpRequest, raw_id: str, current_id: str | None) -> HttpResponse:
        login_id = _parse_login_id(raw_id)
        login = logins_of_user(request.user.pk).filter(pk=login_id).first()
        if login is None:
            raise Http404("No such session.")  # someone else's, or already ended
        if _is_this_browser(request, login, current_id):
            # auth.logout flushes this session; end_logins must not delete it underneath.
            end_logins([login], reason=END_REASON, revoke=True, end_sessions=False)
            forget_login(request.session)
            auth.logout(request)
            say_signed_out(request)
            return HttpResponseRedirect(logout_landing_url())
        ended = end_logins([login], reason=END_REASON, revoke=True, end_sessions=True).ended
        self.report(request, ended)
        return HttpResponseRedirect(reverse("authgear_django:sessions"))

    def end_others(self, request: HttpRequest, current_id: str | None) -> HttpResponse:
        others = [
            login
            for login in logins_of_user(request.user.pk)
            if not _is_this_browser(request, login, current_id)
        ]
        ended = end_logins(others, reason=END_REASON, revoke=True, end_sessions=True).ended
        self.report(request, ended)
        return HttpResponseRedirect(reverse("authgear_django:sessions"))

    def report(self, request: HttpRequest, ended: int) -> None:
        """Say what happened, if the messages framework is in use; else nothing."""
        text = ngettext(
            "Signed out %(count)d session.", "Signed out %(count)d sessions.", ended
        ) % {"count": ended}
        messages.success(request, text, fail_silently=True)

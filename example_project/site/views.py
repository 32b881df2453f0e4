"""The guide's pages: a landing page, a welcome page with the userinfo claims, a protected page."""

from __future__ import annotations

import json

import requests
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from authgear_django.api import authgear_session
from authgear_django.bearer import bearer_token_required
from authgear_django.decorators import login_not_required, reauthentication_required
from authgear_django.exceptions import AuthgearError
from authgear_django.models import AuthgearAccount
from authgear_django.provider import get_client


# With LoginRequiredMiddleware (Django 5.1+, see settings.py) every page not marked like this
# needs a login. login_not_required is Django's decorator; on Django 4.2 it sets the same mark.
@login_not_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "example/home.html")


@login_required
def welcome(request: HttpRequest) -> HttpResponse:
    account = AuthgearAccount.objects.filter(user_id=request.user.pk).first()
    claims = account.claims if account else {}
    email = claims.get("email") or getattr(request.user, "email", "") or request.user.get_username()
    return render(
        request,
        "example/welcome.html",
        {"email": email, "claims_json": json.dumps(claims, indent=2, sort_keys=True)},
    )


@login_required
def private(request: HttpRequest) -> HttpResponse:
    return render(request, "example/private.html")


@login_required
def call_api(request: HttpRequest) -> HttpResponse:
    """The guide's "call an API with the access token": here Authgear's userinfo endpoint.

    ``authgear_session`` adds ``Authorization: Bearer`` with a fresh token, and on a 401
    refreshes the token once and retries.
    """
    url = get_client().metadata().userinfo_endpoint or ""
    context: dict[str, object] = {"url": url}
    try:
        response = authgear_session(request).get(url)
    except (AuthgearError, requests.RequestException) as error:
        context["error"] = getattr(error, "user_message", "The API could not be reached.")
        return render(request, "example/call_api.html", context, status=502)
    context["status"] = response.status_code
    try:
        context["body"] = json.dumps(response.json(), indent=2, sort_keys=True)
    except ValueError:
        context["body"] = response.text[:2000]
    return render(request, "example/call_api.html", context)


@login_not_required  # no session: the bearer token authenticates the caller
@bearer_token_required
def api_me(request: HttpRequest) -> HttpResponse:
    """An API endpoint for other apps: who does this Authgear access token belong to?"""
    token = request.authgear_token  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "sub": token.sub,
            "email": token.claims.get("email") or getattr(request.user, "email", ""),
            "scopes": sorted(token.scopes),
        }
    )


@reauthentication_required(max_age=60)
def sensitive(request: HttpRequest) -> HttpResponse:
    """A page for sensitive actions: only with an Authgear sign-in from the last minute."""
    return render(request, "example/sensitive.html")

"""The guide's pages: a landing page, a welcome page with the userinfo claims, a protected page."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from authgear_django.models import AuthgearAccount


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

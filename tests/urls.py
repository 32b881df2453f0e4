from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from authgear_django.bearer import bearer_token_required
from authgear_django.decorators import reauthentication_required


def public(request: HttpRequest) -> HttpResponse:
    return HttpResponse("public")


@login_required
def private(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"private for {request.user.get_username()}")


async def async_private(request: HttpRequest) -> HttpResponse:
    from asgiref.sync import sync_to_async

    def who() -> tuple[bool, str]:
        return request.user.is_authenticated, request.user.get_username()

    authenticated, username = await sync_to_async(who)()
    if not authenticated:
        return HttpResponse("anonymous", status=401)
    return HttpResponse(f"async private for {username}")


def api_call(request: HttpRequest) -> HttpResponse:
    """Calls an external API with the user's access token, like the example site does."""
    from authgear_django.api import authgear_session

    response = authgear_session(request).get("https://api.test/data")
    return HttpResponse(response.text, status=response.status_code)


@bearer_token_required
def api_me(request: HttpRequest) -> HttpResponse:
    token = request.authgear_token  # type: ignore[attr-defined]
    return JsonResponse(
        {"sub": token.sub, "username": request.user.get_username(), "scopes": sorted(token.scopes)}
    )


@bearer_token_required(scopes=["orders:read"])
def api_orders(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"orders": []})


@reauthentication_required(max_age=300)
def sensitive(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"sensitive for {request.user.get_username()}")


@bearer_token_required
async def async_api_me(request: HttpRequest) -> HttpResponse:
    """The async twin of ``api_me``: the user through ``request.auser()``, no thread needed."""
    token = request.authgear_token  # type: ignore[attr-defined]
    user = await request.auser()
    return JsonResponse(
        {"sub": token.sub, "username": user.get_username(), "scopes": sorted(token.scopes)}
    )


@bearer_token_required(scopes=["orders:read"])
async def async_api_orders(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"orders": []})


@reauthentication_required(max_age=300)
async def async_sensitive(request: HttpRequest) -> HttpResponse:
    if hasattr(request, "auser"):  # Django 5.0+
        username = (await request.auser()).get_username()
    else:  # Django 4.2: the lazy user, loaded in a thread
        from asgiref.sync import sync_to_async

        username = await sync_to_async(lambda: request.user.get_username())()
    return HttpResponse(f"sensitive for {username}")


def cycle_session(request: HttpRequest) -> HttpResponse:
    """What update_session_auth_hash does to the session: a new key, same data."""
    request.session.cycle_key()
    return HttpResponse("cycled")


urlpatterns = [
    path("cycle-session/", cycle_session),
    path("api/me/", api_me),
    path("api/orders/", api_orders),
    path("sensitive/", sensitive),
    path("async/api/me/", async_api_me),
    path("async/api/orders/", async_api_orders),
    path("async/sensitive/", async_sensitive),
    path("drf/", include("tests.drf_urls")),
    path("async-private/", async_private),
    path("api-call/", login_required(api_call)),
    path("", public, name="home"),
    path("private/", private, name="private"),
    path("auth/", include("authgear_django.urls")),
    path("accounts/login/", LoginView.as_view(), name="password_login"),
    path("admin/", admin.site.urls),
]

"""Views of the local provider: DOT's OIDC views adjusted to Authgear's behaviour, and the UI."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from jwcrypto import jwt as jwcrypto_jwt
from jwcrypto.common import JWException
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import (
    InvalidIDTokenError,
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
)
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem
from oauth2_provider.views import ConnectDiscoveryInfoView, RPInitiatedLogoutView

from example_project.local_provider.validators import user_claims


class DiscoveryView(ConnectDiscoveryInfoView):
    """``/.well-known/openid-configuration`` with Authgear's fields.

    DOT's document lacks ``revocation_endpoint`` and ``grant_types_supported`` and lists
    HS256 and ``plain``-capable values; Authgear's lists only what is used here. Keys are
    sorted, as in Authgear's (Go-encoded) output.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        data = json.loads(super().get(request, *args, **kwargs).content)
        data["revocation_endpoint"] = self._get_endpoint_url(request, "revoke-token", required=True)
        data["grant_types_supported"] = ["authorization_code", "refresh_token"]
        data["response_modes_supported"] = ["query", "fragment"]
        data["id_token_signing_alg_values_supported"] = ["RS256"]
        data["code_challenge_methods_supported"] = ["S256"]
        # DOT builds this list from a set; keep the validator's order instead.
        data["claims_supported"] = oauth2_settings.OAUTH2_VALIDATOR_CLASS().get_discovery_claims(
            request
        )
        # Not in Authgear's document.
        data.pop("prompt_values_supported", None)
        data.pop("client_id_metadata_document_supported", None)
        response = JsonResponse(data, json_dumps_params={"sort_keys": True})
        response["Access-Control-Allow-Origin"] = "*"
        return response


def _signed_by_us(request: HttpRequest, token: str) -> bool:
    """Whether ``token`` is a JWT signed with our key and issued by us (exp not checked)."""
    try:
        key = jwk_from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY)
        claims = json.loads(jwcrypto_jwt.JWT(key=key, jwt=token, check_claims={}).claims)
    except (JWException, ValueError, TypeError):
        return False
    return isinstance(claims, dict) and claims.get("iss") == oauth2_settings.oidc_issuer(request)


@method_decorator(csrf_exempt, name="dispatch")
class EndSessionView(RPInitiatedLogoutView):
    """``/oauth2/end_session``: DOT's RP-initiated logout, a little closer to Authgear.

    - POST is accepted without a CSRF token (Authgear accepts a cross-site POST), so a
      client may send ``id_token_hint`` in a form body instead of the URL.
    - ``post_logout_redirect_uri`` without ``id_token_hint``/``client_id`` is matched
      against every client's registered URIs, as Authgear does (DOT refuses it). An
      unregistered one is an error page here; Authgear ignores it and shows /settings.
    - An unknown ``client_id`` is a 400 error page instead of a server error.
    """

    def validate_logout_request_user(self, id_token_hint: str | None, client_id: str | None) -> Any:
        """Like DOT, but a hint we signed whose token is gone counts as no hint.

        DOT deletes ID tokens when it logs a user out (and ``cleartokens`` deletes old
        ones); a client that then sends such a hint would get an error page. Authgear only
        checks the signature, and without a matching session it logs out anyway (directly
        when the browser has no session, after a confirmation page otherwise).
        """
        try:
            return super().validate_logout_request_user(id_token_hint, client_id)
        except InvalidIDTokenError:
            if id_token_hint and _signed_by_us(self.request, id_token_hint):
                return None
            raise

    def get_request_application(self, id_token: Any, client_id: str | None) -> Any:
        if client_id:
            application_model = get_application_model()
            try:
                return application_model.objects.get(client_id=client_id)
            except application_model.DoesNotExist:
                raise InvalidOIDCClientError() from None
        if id_token:
            return id_token.application
        return None

    def validate_logout_request(
        self, id_token_hint: str | None, client_id: str | None, post_logout_redirect_uri: str | None
    ) -> tuple[Any, Any]:
        id_token = self.validate_logout_request_user(id_token_hint, client_id)
        application = self.get_request_application(id_token, client_id)
        if application is None and post_logout_redirect_uri:
            application = next(
                (
                    candidate
                    for candidate in get_application_model().objects.all()
                    if candidate.post_logout_redirect_uri_allowed(post_logout_redirect_uri)
                ),
                None,
            )
            if application is None:
                raise InvalidOIDCRedirectURIError(
                    f"post_logout_redirect_uri {post_logout_redirect_uri} is not registered "
                    "for any client."
                )
        self.validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        return application, id_token.user if id_token else None


class AuthorizeView(dot_views.AuthorizationView):
    """``/oauth2/authorize``: DOT's view plus ``max_age``, which DOT ignores.

    If the provider session's login (the user's ``last_login``, which is also ``auth_time``)
    is older than ``max_age`` seconds (``max_age=0``: always), the request is handled as
    ``prompt=login``. ``max_age`` is then dropped from the request, so that the request the
    login page returns to does not ask for a login again. Authgear compares with the session
    named by ``id_token_hint`` instead, and with no such hint any ``max_age`` forces a login.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and _max_age_exceeded(request):
            query = request.GET.copy()
            query.pop("max_age", None)
            query["prompt"] = " ".join(sorted({*query.get("prompt", "").split(), "login"}))
            request.GET = query  # type: ignore[misc]
            request.META["QUERY_STRING"] = query.urlencode()
        return super().get(request, *args, **kwargs)


def _max_age_exceeded(request: HttpRequest) -> bool:
    try:
        max_age = int(request.GET.get("max_age", ""))
    except ValueError:
        return False  # absent or not an integer: ignored, as by Authgear
    if max_age < 0:
        return False
    last_login = request.user.last_login
    if last_login is None:
        return True
    elapsed = (timezone.now() - last_login).total_seconds()
    return elapsed > max_age or elapsed < 0


class LoginView(auth_views.LoginView):
    """``/login``: email + password; a wrong password re-renders the form with an error.

    When the login was started by ``/oauth2/authorize`` (``next`` is that request), the page
    also has a **Cancel** link to :func:`cancel_login`.
    """

    template_name = "local_provider/login.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        next_url = self.get_redirect_url()
        if next_url and cancel_redirect_url(self.request, next_url):
            context["cancel_url"] = f"{reverse('login_cancel')}?{urlencode({'next': next_url})}"
        return context


CANCEL_DESCRIPTION = "the user cancelled the authentication"


def cancel_redirect_url(request: HttpRequest, next_url: str) -> str | None:
    """Where Cancel sends the browser for a login that ``next_url`` would resume, or None.

    Only when ``next_url`` is an ``/oauth2/authorize`` request on this provider whose
    ``redirect_uri`` is registered for its ``client_id`` (DOT's own check, the one the
    authorization endpoint applies): then that ``redirect_uri`` with
    ``error=access_denied``, ``error_description`` and the request's ``state``, in the query
    (or the fragment with ``response_mode=fragment``), as Authgear does when the user
    cancels. Anything else (another path, an unknown client, an unregistered or missing
    ``redirect_uri``, another host) gives None, so Cancel is never an open redirect.
    """
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(next_url)
    if parts.path != reverse("oauth2_provider:authorize"):
        return None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    if not client_id or not redirect_uri:
        return None
    application = get_application_model().objects.filter(client_id=client_id).first()
    if application is None or not application.redirect_uri_allowed(redirect_uri):
        return None
    answer = {"error": "access_denied", "error_description": CANCEL_DESCRIPTION}
    if params.get("state"):
        answer["state"] = params["state"]
    target = urlsplit(redirect_uri)
    if params.get("response_mode") == "fragment":
        return urlunsplit(target._replace(fragment=urlencode(answer)))
    query = "&".join(part for part in (target.query, urlencode(answer)) if part)
    return urlunsplit(target._replace(query=query))


def cancel_login(request: HttpRequest) -> HttpResponse:
    """``/login/cancel?next=<authorize request>``: the login page's Cancel link.

    Sends the browser back to the client with ``error=access_denied`` (see
    :func:`cancel_redirect_url`); without a valid authorization request to cancel, it goes to
    the provider's home page instead.
    """
    target = cancel_redirect_url(request, request.GET.get("next", ""))
    return HttpResponseRedirect(target or reverse("home"))


def home(request: HttpRequest) -> HttpResponse:
    """``/`` and ``/settings``: who is signed in at the provider (Authgear shows /settings)."""
    claims = user_claims(request.user) if request.user.is_authenticated else None
    return render(request, "local_provider/home.html", {"claims": claims})

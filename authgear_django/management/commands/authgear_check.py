"""``manage.py authgear_check``: is the configured Authgear project usable, right now?

``manage.py check`` validates settings offline; this command asks Authgear itself (discovery and
JWKS, never from the cache), so a wrong endpoint, an unreachable provider or a missing scope is
found at deploy time instead of at a user's first login. It also prints the redirect URIs to
register in the portal, which is the other usual cause of a broken first login.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse

from authgear_django.client import CLIENT_AUTH_NONE, AuthgearClient, ProviderMetadata
from authgear_django.conf import conf
from authgear_django.exceptions import AuthgearError
from authgear_django.management import one_line
from authgear_django.provider import get_client

MIN_RSA_BITS = 2048


class _RunCache:
    """A cache that starts empty for each run: live answers, yet one request per document."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        self._values[key] = value


class Command(BaseCommand):
    help = (
        "Check AUTHGEAR_ENDPOINT live: discovery, issuer, endpoints, signing keys, scopes and "
        "client authentication, then print the redirect URIs to register in the Authgear "
        "portal. Exits 1 with a one-line reason when anything is wrong."
    )
    # The system checks print several lines; a missing setting is reported here in one line.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--site-url",
            metavar="URL",
            help=(
                "The site's public origin, e.g. https://example.com, to print absolute redirect "
                "URIs when AUTHGEAR_REDIRECT_URI / AUTHGEAR_POST_LOGOUT_REDIRECT_URI are not set."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        site_url = _clean_site_url(options["site_url"])
        try:
            client = get_client()
            auth_method = conf.AUTHGEAR_CLIENT_AUTH_METHOD
        except ImproperlyConfigured as exc:
            raise CommandError(one_line(exc)) from None
        client.cache = _RunCache()  # never trust a cached document: this check must be live

        problems: list[str] = []
        metadata = self._check_discovery(client)
        problems += self._check_endpoints(metadata)
        problems += self._check_jwks(client, metadata)
        problems += self._check_scopes(metadata)
        problems += self._check_client_authentication(metadata, auth_method)
        problems += self._print_redirect_uris(site_url)

        if len(problems) == 1:
            raise CommandError(problems[0])
        if problems:
            raise CommandError(f"{len(problems)} problems: " + "; ".join(problems))
        self.stdout.write(self.style.SUCCESS("ok    Authgear is configured correctly"))

    # --- checks --------------------------------------------------------------------------------

    def _ok(self, message: str) -> None:
        self.stdout.write(f"ok    {message}")

    def _warn(self, message: str) -> None:
        self.stderr.write(self.style.WARNING(f"warning: {message}"))

    def _check_discovery(self, client: AuthgearClient) -> ProviderMetadata:
        """Nothing else can be checked without discovery, so its failure ends the run."""
        try:
            metadata = client.metadata()
        except AuthgearError as exc:
            raise CommandError(f"Authgear at {client.endpoint}: {one_line(exc)}") from None
        self._ok(f"discovery document read from {client.discovery_url}")
        # metadata() refuses another issuer; say so, since it is the check people look for.
        self._ok(f"issuer {metadata.issuer} equals AUTHGEAR_ENDPOINT")
        return metadata

    def _check_endpoints(self, metadata: ProviderMetadata) -> list[str]:
        # authorization, token and jwks are required by metadata() already.
        if not metadata.userinfo_endpoint:
            return ["discovery has no userinfo_endpoint (needed to read the user's claims)"]
        self._ok("authorization, token, userinfo and jwks endpoints are published")
        if metadata.revocation_endpoint:
            self._ok("revocation endpoint is published")
        else:
            self._warn("discovery has no revocation_endpoint: logout cannot revoke refresh tokens")
        if metadata.end_session_endpoint:
            self._ok("end_session endpoint is published")
        else:
            self._warn(
                "discovery has no end_session_endpoint: logout cannot end the Authgear session"
            )
        return []

    def _check_jwks(self, client: AuthgearClient, metadata: ProviderMetadata) -> list[str]:
        try:
            document = client.jwks()
        except AuthgearError as exc:
            return [f"JWKS at {metadata.jwks_uri}: {one_line(exc)}"]
        kids = [
            str(jwk.get("kid", "(no kid)"))
            for jwk in document.get("keys", [])
            if _usable_rs256_key(jwk)
        ]
        if not kids:
            return [f"JWKS at {metadata.jwks_uri} has no RS256 signing key"]
        self._ok(f"JWKS has {len(kids)} RS256 signing key(s): {', '.join(kids)}")
        return []

    def _check_scopes(self, metadata: ProviderMetadata) -> list[str]:
        scopes = conf.AUTHGEAR_SCOPES.split()
        if not metadata.scopes_supported:
            self._ok(f"scopes {' '.join(scopes)} (Authgear does not publish scopes_supported)")
            return []
        unsupported = [scope for scope in scopes if scope not in metadata.scopes_supported]
        if unsupported:
            return [
                f"AUTHGEAR_SCOPES has scopes Authgear does not support: {' '.join(unsupported)}"
            ]
        self._ok(f"scopes {' '.join(scopes)} are supported")
        return []

    def _check_client_authentication(self, metadata: ProviderMetadata, method: str) -> list[str]:
        """The configured method is one Authgear accepts, and the secret matches the method."""
        problems = _secret_problems(method)
        methods = metadata.token_endpoint_auth_methods_supported
        if not methods:
            self._ok(f"{method} assumed (token_endpoint_auth_methods not published)")
        elif method not in methods:
            problems.append(
                f"the token endpoint does not accept {method} (it accepts: {', '.join(methods)}); "
                "set AUTHGEAR_CLIENT_AUTH_METHOD to one of these"
            )
        else:
            self._ok(f"token endpoint accepts {method}")
        return problems

    def _print_redirect_uris(self, site_url: str | None) -> list[str]:
        try:
            callback_path = reverse("authgear_django:callback")
        except NoReverseMatch:
            callback_path = None
        try:
            logout_target = str(resolve_url(conf.LOGOUT_REDIRECT_URL))
        except NoReverseMatch:
            return [f"LOGOUT_REDIRECT_URL {conf.LOGOUT_REDIRECT_URL!r} is not a URL or URL name"]

        redirect_uri = conf.AUTHGEAR_REDIRECT_URI or _absolute(site_url, callback_path)
        post_logout_uri = conf.AUTHGEAR_POST_LOGOUT_REDIRECT_URI or _absolute(
            site_url, logout_target
        )
        self.stdout.write("Register in the Authgear portal (Applications → your application):")
        relative = False
        if redirect_uri:
            self.stdout.write(f"  Authorized Redirect URI:   {redirect_uri}")
        elif callback_path:
            self.stdout.write(f"  Authorized Redirect URI:   <site origin>{callback_path}")
            relative = True
        if post_logout_uri:
            self.stdout.write(f"  Post Logout Redirect URI:  {post_logout_uri}")
        else:
            self.stdout.write(f"  Post Logout Redirect URI:  <site origin>{logout_target}")
            relative = True
        if relative:
            self.stdout.write(
                "  Prefix <site origin> with the site's public origin (e.g. https://example.com),"
                " or pass --site-url."
            )
        if redirect_uri is None and callback_path is None:
            return [
                "authgear_django.urls is not in ROOT_URLCONF and AUTHGEAR_REDIRECT_URI is not "
                'set: add path("auth/", include("authgear_django.urls"))'
            ]
        return []


def _secret_problems(method: str) -> list[str]:
    """A public client must not have a secret (a missing one for a confidential client is
    already refused by ``conf``). The secret itself is never printed."""
    if method == CLIENT_AUTH_NONE and conf.AUTHGEAR_CLIENT_SECRET.strip():
        return [
            'AUTHGEAR_CLIENT_AUTH_METHOD is "none" (a public client) but AUTHGEAR_CLIENT_SECRET '
            "is set: remove the secret, or use client_secret_post for a Confidential Client"
        ]
    return []


def _usable_rs256_key(jwk: Any) -> bool:
    """A key our ID-token verification would use: RSA, for signing, RS256, well formed, and
    not too short to trust (Authgear generates 2048-bit keys)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return False
    if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, "RS256"):
        return False
    try:
        key = jwt.PyJWK(jwk, algorithm="RS256").key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return False
    return getattr(key, "key_size", 0) >= MIN_RSA_BITS


def _clean_site_url(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise CommandError(f"--site-url must be an origin like https://example.com, not {value!r}")
    return value.rstrip("/")


def _absolute(site_url: str | None, path: str | None) -> str | None:
    if path is None:
        return None
    if urlsplit(path).scheme in ("http", "https"):
        return path  # LOGOUT_REDIRECT_URL may already be absolute
    if site_url is None:
        return None
    return site_url + path

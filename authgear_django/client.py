"""Talking to Authgear over HTTP: discovery, JWKS, token, userinfo, revocation, end-session.

Django-free on purpose: plain values in and out, a cache passed in, every call bounded by a
timeout, and every failure turned into an exception from :mod:`authgear_django.exceptions`
whose message never carries a token, a code or a secret.

Discovery and JWKS live in the shared cache, but what stops request amplification lives in
process memory too (so a DummyCache or a cache that raises cannot switch it off): the JWKS
refetch cooldown, the last failed fetch (repeated at once to callers for a short time), one
fetch at a time per document, and copies of the documents used while the cache keeps nothing.
Tests start each case cold with :func:`reset_process_memory`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from authgear_django.exceptions import (
    OAuthError,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnreachable,
    TokenValidationError,
)

logger = logging.getLogger("authgear_django")

DISCOVERY_PATH = "/.well-known/openid-configuration"
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
# An unknown ``kid`` forces a JWKS refetch, but not more often than this, so that tokens with
# random key ids cannot turn us into a request amplifier against Authgear.
JWKS_REFETCH_COOLDOWN = 10.0
# A failed discovery or JWKS fetch is remembered this long: meanwhile requests needing the
# document fail at once instead of each waiting for the HTTP timeout of a provider that is down.
FAILED_FETCH_COOLDOWN = JWKS_REFETCH_COOLDOWN
MAX_RESPONSE_BYTES = 1_000_000

# How the client proves who it is at the token and revocation endpoints: the client type in the
# Authgear portal decides. A Confidential Client has a secret (in the form body, or HTTP Basic
# since Authgear 2026-07-21); a Public Client, Cookie SSO or Native App has none and relies on
# PKCE, which every login sends.
CLIENT_SECRET_POST = "client_secret_post"  # noqa: S105 - method names, not secrets
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105
CLIENT_AUTH_NONE = "none"
CLIENT_AUTH_METHODS = (CLIENT_SECRET_POST, CLIENT_SECRET_BASIC, CLIENT_AUTH_NONE)


class Cache(Protocol):
    """The subset of Django's cache API the client uses (any backend, or a dict-based fake)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document this library uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    end_session_endpoint: str | None = None
    scopes_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ProviderMetadata:
        missing = [name for name in REQUIRED_METADATA if not isinstance(document.get(name), str)]
        if missing:
            raise ProviderMisconfigured(f"discovery document lacks {', '.join(missing)}")

        def optional(name: str) -> str | None:
            value = document.get(name)
            return value if isinstance(value, str) and value else None

        def strings(name: str) -> tuple[str, ...]:
            value = document.get(name)
            if not isinstance(value, list):
                return ()
            return tuple(item for item in value if isinstance(item, str))

        return cls(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            userinfo_endpoint=optional("userinfo_endpoint"),
            revocation_endpoint=optional("revocation_endpoint"),
            end_session_endpoint=optional("end_session_endpoint"),
            scopes_supported=strings("scopes_supported"),
            token_endpoint_auth_methods_supported=strings("token_endpoint_auth_methods_supported"),
        )


@dataclass(frozen=True)
class TokenSet:
    """A token endpoint response. ``repr`` hides the token values so they never reach a log."""

    access_token: str = field(repr=False)
    expires_in: int | None
    token_type: str = "Bearer"  # noqa: S105 - a token type name, not a secret
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    scope: str | None = None

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> TokenSet:
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ProviderError("token response has no access_token")
        expires_in = body.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            expires_in = None

        def optional(name: str) -> str | None:
            value = body.get(name)
            return value if isinstance(value, str) and value else None

        return cls(
            access_token=access_token,
            expires_in=expires_in,
            token_type=optional("token_type") or "Bearer",
            refresh_token=optional("refresh_token"),
            id_token=optional("id_token"),
            scope=optional("scope"),
        )


_thread_local = threading.local()


def _http_session() -> requests.Session:
    """One pooled ``requests.Session`` per thread: keep-alive without sharing across threads."""
    session: requests.Session | None = getattr(_thread_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = "authgear-django"
        _thread_local.session = session
    return session


@dataclass(frozen=True)
class _Fetched:
    """A document as fetched by this process, and when."""

    body: dict[str, Any]
    at: float


@dataclass(frozen=True)
class _Failed:
    """A fetch that failed, and when: repeated (as a copy) to callers during the cooldown."""

    error: ProviderError
    at: float


class _ProcessMemory:
    """What one process remembers about one Authgear project, whatever the shared cache does.

    The Django cache may be a DummyCache, or a shared cache that is down; the refetch cooldown,
    the last failure and (when the cache does not keep values) the documents themselves must
    still hold, or forged tokens with random ``kid`` values turn each request into fetches.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards the fields below
        self.fetch_locks = {"discovery": threading.Lock(), "jwks": threading.Lock()}
        self.documents: dict[str, _Fetched] = {}
        self.failures: dict[str, _Failed] = {}
        self.outcomes: dict[str, _Fetched | _Failed] = {}
        self.generations: dict[str, int] = {"discovery": 0, "jwks": 0}
        self.jwks_refetched_at: float | None = None
        # False once the cache raised or lost a value we wrote (DummyCache): then our own copy
        # of each document stands in for it until its TTL.
        self.cache_keeps_values = True
        self.cache_warned_at: float | None = None

    def record(self, name: str, outcome: _Fetched | _Failed) -> None:
        with self.lock:
            self.outcomes[name] = outcome
            self.generations[name] += 1
            if isinstance(outcome, _Fetched):
                self.documents[name] = outcome
                self.failures.pop(name, None)
            else:
                self.failures[name] = outcome


_memories: dict[str, _ProcessMemory] = {}
_memories_lock = threading.Lock()


def _memory_for(cache_prefix: str) -> _ProcessMemory:
    memory = _memories.get(cache_prefix)
    if memory is None:
        with _memories_lock:
            memory = _memories.setdefault(cache_prefix, _ProcessMemory())
    return memory


def reset_process_memory() -> None:
    """Forget every remembered document, cooldown and failure (tests; a forked child)."""
    with _memories_lock:
        _memories.clear()


if hasattr(os, "register_at_fork"):
    # A lock held by another thread at fork time would stay held forever in the child.
    os.register_at_fork(after_in_child=reset_process_memory)


def _within(since: float | None, seconds: float, now: float) -> bool:
    """``since`` lies less than ``seconds`` before ``now`` (a clock set back counts as expired)."""
    return since is not None and 0 <= now - since < seconds


def _without_traceback(error: ProviderError) -> ProviderError:
    """A copy of ``error`` (same type, message and attributes) with no traceback or context."""
    duplicate = copy.copy(error)
    duplicate.__traceback__ = None
    duplicate.__context__ = None
    duplicate.__cause__ = None
    return duplicate


def _repeated(failure: _Failed) -> ProviderError:
    """A fresh copy of a remembered failure, so no two requests share one exception object."""
    return _without_traceback(failure.error)


class AuthgearClient:
    """One Authgear project as seen by one client (confidential, or public with ``none``)."""

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        cache: Cache,
        discovery_ttl: int = 3600,
        jwks_ttl: int = 3600,
        client_auth_method: str = CLIENT_SECRET_POST,
    ) -> None:
        if client_auth_method not in CLIENT_AUTH_METHODS:
            # Not echoed: a secret passed in the wrong argument must not reach a traceback.
            raise ValueError(f"client_auth_method must be one of {', '.join(CLIENT_AUTH_METHODS)}")
        self.endpoint = endpoint.rstrip("/")
        self.client_id = client_id
        self.client_auth_method = client_auth_method
        # A public client has no secret: whatever was configured is dropped, never sent.
        self.client_secret = "" if client_auth_method == CLIENT_AUTH_NONE else client_secret
        self.timeout = timeout
        self.cache = cache
        self.discovery_ttl = discovery_ttl
        self.jwks_ttl = jwks_ttl
        digest = hashlib.sha256(self.endpoint.encode()).hexdigest()[:16]
        self._cache_prefix = f"authgear_django:{digest}"
        self._memory = _memory_for(self._cache_prefix)

    # --- discovery and keys ------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return self.endpoint + DISCOVERY_PATH

    def metadata(self) -> ProviderMetadata:
        """Discovery, from the shared cache when fresh; the issuer must equal the endpoint."""
        document = self._document(
            "discovery",
            url=lambda: self.discovery_url,
            check=self._validated_metadata,
            ttl=self.discovery_ttl,
        )
        return self._validated_metadata(document)

    def cached_metadata(self) -> ProviderMetadata | None:
        """Discovery as last fetched (shared cache, else this process's copy), or ``None``.

        Never fetches: system checks run offline and must not wait for Authgear.
        """
        document = self._cache_get(f"{self._cache_prefix}:discovery")
        if not isinstance(document, dict):
            own = self._own_copy("discovery", self.discovery_ttl)
            document = own.body if own is not None else None
        if document is None:
            return None
        try:
            return self._validated_metadata(document)
        except ProviderError:
            return None

    def _validated_metadata(self, document: Mapping[str, Any]) -> ProviderMetadata:
        metadata = ProviderMetadata.from_document(document)
        if metadata.issuer != self.endpoint:
            raise ProviderMisconfigured(
                f"discovery issuer {metadata.issuer!r} does not equal AUTHGEAR_ENDPOINT "
                f"{self.endpoint!r}"
            )
        return metadata

    def jwks(self, *, force_refresh: bool = False) -> dict[str, Any]:
        """The provider's JSON Web Key Set, cached; ``force_refresh`` honours a cooldown."""
        if force_refresh:
            return self._refetch_jwks()
        return self._document(
            "jwks", url=lambda: self.metadata().jwks_uri, check=_check_jwks, ttl=self.jwks_ttl
        )

    def signing_key(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK with this ``kid``; an unknown ``kid`` triggers one JWKS refetch.

        A token without ``kid`` is matched only when exactly one RS256 signing key is published
        (OpenID Connect Core 10.1 requires ``kid`` otherwise): with several, it is refused
        rather than checked against whichever key comes first.
        """
        for force_refresh in (False, True):
            usable: list[dict[str, Any]] = [
                jwk
                for jwk in self.jwks(force_refresh=force_refresh).get("keys", [])
                if _is_rs256_signing_key(jwk)
            ]
            if kid is None:
                if len(usable) > 1:
                    raise TokenValidationError(
                        "the token names no key (kid) but several signing keys are published"
                    )
                if usable:
                    return usable[0]
                continue
            for jwk in usable:
                if jwk.get("kid") == kid:
                    return jwk
        return None

    def fetch_failed_at(self, name: str) -> float | None:
        """When this process last failed to fetch ``discovery`` or ``jwks`` (if that failure is
        the latest news about it); for health checks and logs."""
        failure = self._memory.failures.get(name)
        return failure.at if failure is not None else None

    # --- documents: shared cache, this process's memory, one fetch at a time -----------------

    def _document(
        self,
        name: str,
        *,
        url: Callable[[], str],
        check: Callable[[dict[str, Any]], object],
        ttl: float,
    ) -> dict[str, Any]:
        """The cached document, else this process's copy if the cache keeps nothing, else one
        fetch for all threads (failing fast while the last fetch failed recently)."""
        cached = self._cache_get(f"{self._cache_prefix}:{name}")
        if isinstance(cached, dict):
            return cached
        own = self._own_copy(name, ttl)
        if own is not None and not self._memory.cache_keeps_values:
            return own.body
        self._raise_if_failed_recently(name)
        generation = self._memory.generations[name]
        with self._fetch_lock(name):
            if self._memory.generations[name] != generation:
                return self._latest_outcome(name)  # another thread fetched while we waited
            self._raise_if_failed_recently(name)
            return self._fetch(name, url=url, check=check, ttl=ttl)

    def _refetch_jwks(self) -> dict[str, Any]:
        """Fetch the JWKS again (an unknown ``kid``), at most once per cooldown per process and,
        through the shared cache, across processes."""
        memory = self._memory
        cooldown_key = f"{self._cache_prefix}:jwks_refetched_at"
        generation = memory.generations["jwks"]
        with self._fetch_lock("jwks"):
            if memory.generations["jwks"] != generation:
                return self._latest_outcome("jwks")  # another thread just fetched it for us
            now = time.time()
            shared = self._cache_get(cooldown_key)
            shared_at = float(shared) if isinstance(shared, (int, float)) else None
            if _within(memory.jwks_refetched_at, JWKS_REFETCH_COOLDOWN, now) or _within(
                shared_at, JWKS_REFETCH_COOLDOWN, now
            ):
                current = self._cache_get(f"{self._cache_prefix}:jwks")
                if isinstance(current, dict):
                    return current
                own = self._own_copy("jwks", self.jwks_ttl)
                if own is not None:
                    return own.body
            self._raise_if_failed_recently("jwks")
            memory.jwks_refetched_at = now
            self._cache_set(cooldown_key, now, JWKS_REFETCH_COOLDOWN)
            return self._fetch(
                "jwks",
                url=lambda: self.metadata().jwks_uri,
                check=_check_jwks,
                ttl=self.jwks_ttl,
            )

    def _fetch(
        self,
        name: str,
        *,
        url: Callable[[], str],
        check: Callable[[dict[str, Any]], object],
        ttl: float,
    ) -> dict[str, Any]:
        """One HTTP fetch (the caller holds the fetch lock); its outcome is remembered."""
        location = url()  # a discovery failure is remembered under "discovery", not here
        try:
            document = self._get_json(location, call=name)
            check(document)
        except ProviderError as exc:
            # Keep a copy without traceback: the original holds this request's frames.
            self._memory.record(name, _Failed(error=_without_traceback(exc), at=time.time()))
            logger.warning(
                "authgear_django: %s fetch failed (%s: %s); failing fast for %.0f s",
                name,
                type(exc).__name__,
                exc,
                FAILED_FETCH_COOLDOWN,
            )
            raise
        self._memory.record(name, _Fetched(body=document, at=time.time()))
        key = f"{self._cache_prefix}:{name}"
        # Read back what we wrote: a DummyCache (or a full memcached) silently keeps nothing.
        self._memory.cache_keeps_values = self._cache_set(key, document, ttl) and isinstance(
            self._cache_get(key), dict
        )
        return document

    def _own_copy(self, name: str, ttl: float) -> _Fetched | None:
        own = self._memory.documents.get(name)
        if own is not None and _within(own.at, ttl, time.time()):
            return own
        return None

    def _raise_if_failed_recently(self, name: str) -> None:
        failure = self._memory.failures.get(name)
        if failure is not None and _within(failure.at, FAILED_FETCH_COOLDOWN, time.time()):
            logger.debug("authgear_django: %s failed recently; not fetching again yet", name)
            raise _repeated(failure) from None

    def _latest_outcome(self, name: str) -> dict[str, Any]:
        outcome = self._memory.outcomes[name]
        if isinstance(outcome, _Failed):
            raise _repeated(outcome) from None
        return outcome.body

    def _fetch_lock(self, name: str) -> _HeldLock:
        """The per-process single-flight lock for one document, waited on for a bounded time."""
        return _HeldLock(
            self._memory.fetch_locks[name],
            wait=2 * self.timeout + 1,  # a JWKS fetch may include a discovery fetch
            name=name,
        )

    # --- authorization and logout URLs ---------------------------------------------------------

    def authorization_url(self, params: Mapping[str, str]) -> str:
        return _with_query(self.metadata().authorization_endpoint, params)

    def end_session_url(
        self,
        *,
        id_token_hint: str | None,
        post_logout_redirect_uri: str | None,
        state: str | None,
    ) -> str | None:
        """Where to send the browser to end the Authgear session, or ``None`` if unsupported."""
        endpoint = self.metadata().end_session_endpoint
        if not endpoint:
            return None
        params = {
            "id_token_hint": id_token_hint,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "state": state,
        }
        return _with_query(endpoint, {k: v for k, v in params.items() if v})

    # --- token endpoint ----------------------------------------------------------------------

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code (client authentication + PKCE verifier) for tokens."""
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            call="token",
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """Use a refresh token; Authgear omits ``refresh_token`` in the answer unless it rotates."""
        return self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, call="refresh"
        )

    def _token_request(self, form: dict[str, str], *, call: str) -> TokenSet:
        fields, auth = self._client_authentication()
        response = self._send(
            "POST", self.metadata().token_endpoint, call=call, data={**form, **fields}, auth=auth
        )
        if response.status_code == 200:
            return TokenSet.from_response(self._json(response, call=call))
        self._raise_for_error_response(response, call=call)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- userinfo and revocation ---------------------------------------------------------------

    def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = self.metadata().userinfo_endpoint
        if not endpoint:
            raise ProviderMisconfigured("discovery document has no userinfo_endpoint")
        response = self._send(
            "GET", endpoint, call="userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
        if response.status_code == 200:
            return self._json(response, call="userinfo")
        self._raise_for_error_response(response, call="userinfo")
        raise AssertionError("unreachable")  # pragma: no cover

    def revoke(self, token: str) -> None:
        """Revoke a refresh token (its whole Authgear session); Authgear answers 200 for any."""
        endpoint = self.metadata().revocation_endpoint
        if not endpoint:
            raise ProviderMisconfigured("discovery document has no revocation_endpoint")
        fields, auth = self._client_authentication()
        response = self._send(
            "POST", endpoint, call="revoke", data={"token": token, **fields}, auth=auth
        )
        if response.status_code != 200:
            self._raise_for_error_response(response, call="revoke")

    def _client_authentication(self) -> tuple[dict[str, str], _BasicCredentials | None]:
        """The form fields and the HTTP auth that identify this client, per its method.

        Authgear reads Basic credentials only when the body has neither ``client_id`` nor
        ``client_secret`` (mixing them fails), so ``client_secret_basic`` puts neither in the body.
        """
        if self.client_auth_method == CLIENT_SECRET_BASIC:
            return {}, _BasicCredentials(self.client_id, self.client_secret)
        if self.client_auth_method == CLIENT_AUTH_NONE:
            return {"client_id": self.client_id}, None
        return {"client_id": self.client_id, "client_secret": self.client_secret}, None

    # --- plumbing ----------------------------------------------------------------------------

    def _get_json(self, url: str, *, call: str) -> dict[str, Any]:
        response = self._send("GET", url, call=call)
        if response.status_code != 200:
            self._raise_for_error_response(response, call=call)
        return self._json(response, call=call)

    def _send(self, method: str, url: str, *, call: str, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        try:
            response = _http_session().request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.Timeout:
            raise ProviderTimeout(
                f"{call}: no answer from {_origin(url)} in {self.timeout}s"
            ) from None
        except requests.RequestException as exc:
            raise ProviderUnreachable(
                f"{call}: cannot reach {_origin(url)} ({type(exc).__name__})"
            ) from None
        logger.debug(
            "authgear %s %s -> %s in %.0f ms",
            call,
            _origin(url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _json(self, response: requests.Response, *, call: str) -> dict[str, Any]:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise ProviderError(f"{call}: response too large ({len(response.content)} bytes)")
        try:
            body = response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "?")
            raise ProviderError(
                f"{call}: response is not JSON (Content-Type {content_type})"
            ) from None
        if not isinstance(body, dict):
            raise ProviderError(f"{call}: JSON response is not an object")
        return body

    def _raise_for_error_response(self, response: requests.Response, *, call: str) -> None:
        status = response.status_code
        if status == 429:
            raise ProviderRateLimited(
                f"{call}: rate limited (429)", retry_after=_retry_after(response)
            )
        if status >= 500:
            raise ProviderError(f"{call}: HTTP {status}")
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            description = body.get("error_description")
            raise OAuthError(
                body["error"][:100],
                description[:300] if isinstance(description, str) else "",
                status=status,
            )
        raise ProviderError(f"{call}: HTTP {status} without an OAuth error body")

    def _cache_get(self, key: str) -> Any:
        try:
            return self.cache.get(key)
        except Exception:  # a broken cache must not break login; this process remembers instead
            self._cache_failed("read", key)
            return None

    def _cache_set(self, key: str, value: Any, timeout: float) -> bool:
        try:
            self.cache.set(key, value, timeout)
        except Exception:
            self._cache_failed("write", key)
            return False
        return True

    def _cache_failed(self, operation: str, key: str) -> None:
        """Note a cache error; log it at most once per cooldown, not on every request."""
        memory = self._memory
        memory.cache_keeps_values = False
        now = time.time()
        if _within(memory.cache_warned_at, FAILED_FETCH_COOLDOWN, now):
            return
        memory.cache_warned_at = now
        logger.warning("authgear_django: cache %s failed for %s", operation, key, exc_info=True)


class _BasicCredentials(AuthBase):
    """``client_secret_basic`` (RFC 6749 §2.3.1): both parts form-urlencoded, then Base64.

    Given as ``requests``' ``auth``, so a ``.netrc`` entry for Authgear's host cannot replace it;
    its ``repr`` never shows the secret.
    """

    def __init__(self, client_id: str, client_secret: str) -> None:
        credentials = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
        self._header = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "<client_secret_basic credentials>"


class _HeldLock:
    """A context manager around a lock that gives up after ``wait`` seconds (ProviderTimeout)."""

    def __init__(self, lock: threading.Lock, *, wait: float, name: str) -> None:
        self.lock = lock
        self.wait = wait
        self.name = name

    def __enter__(self) -> None:
        if not self.lock.acquire(timeout=self.wait):
            raise ProviderTimeout(
                f"{self.name}: another request has been fetching it for {self.wait:.0f}s"
            )

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


def _check_jwks(document: Mapping[str, Any]) -> None:
    if not isinstance(document.get("keys"), list):
        raise ProviderError("JWKS response has no 'keys' list")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode(list(params.items()))
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def _is_rs256_signing_key(jwk: Any) -> bool:
    """An RSA key published for signatures with RS256 (or with no use/alg restriction)."""
    return (
        isinstance(jwk, dict)
        and jwk.get("kty") == "RSA"
        and jwk.get("use") in (None, "sig")
        and jwk.get("alg") in (None, "RS256")
    )

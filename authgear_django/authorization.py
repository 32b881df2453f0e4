"""Building authorization requests: state, nonce, PKCE S256 and Authgear's login options.

Django-free. A :class:`LoginAttempt` is what the session remembers between the redirect to
Authgear and the callback; several can be pending at once (one per browser tab).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode

from authgear_django.exceptions import InvalidLoginOption

LOGIN_HINT_PREFIX = "https://authgear.com/login_hint?"
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
X_PAGE_VALUES = frozenset({"login", "signup"})
LOGIN_OPTIONS = ("prompt", "login_hint", "ui_locales", "x_page")
_LOCALE_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_PHONE = re.compile(r"^\+[0-9]{6,15}$")
_USERNAME = re.compile(r"^[\w.\-]{1,100}$")
MAX_LOGIN_HINT_LENGTH = 512
MAX_TRUSTED_LOGIN_HINT_LENGTH = 4096  # an app session token or an anonymous user's JWT is long
LOGIN_ID_KEYS = ("email", "phone", "username")
TRUSTED_HINT_TYPES = frozenset({"login_id", "app_session_token", "anonymous"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class LoginAttempt:
    """One pending login: the secrets that bind Authgear's answer to this browser."""

    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    next_url: str | None
    created_at: float
    max_age: int | None = None  # reauthentication: the new auth_time must be this recent
    expected_sub: str | None = None  # reauthentication: the same Authgear user must sign in

    @classmethod
    def start(
        cls,
        *,
        redirect_uri: str,
        next_url: str | None,
        max_age: int | None = None,
        expected_sub: str | None = None,
    ) -> LoginAttempt:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters, within RFC 7636's 43-128
            redirect_uri=redirect_uri,
            next_url=next_url,
            created_at=time.time(),
            max_age=max_age,
            expected_sub=expected_sub,
        )

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def is_expired(self, max_age: float, now: float | None = None) -> bool:
        age = (time.time() if now is None else now) - self.created_at
        return age > max_age or age < -60

    def to_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, data: Any) -> LoginAttempt | None:
        """Rebuild from session data; anything malformed counts as no attempt at all."""
        if not isinstance(data, dict):
            return None
        strings = [data.get(name) for name in ("state", "nonce", "code_verifier", "redirect_uri")]
        if not all(isinstance(value, str) and value for value in strings):
            return None
        if not isinstance(data.get("created_at"), (int, float)):
            return None
        if not isinstance(data.get("next_url"), (str, type(None))):
            return None
        if not isinstance(data.get("max_age"), (int, type(None))):
            return None
        try:
            return cls(**data)
        except TypeError:
            return None

    def authorization_params(
        self, *, client_id: str, scope: str, options: Mapping[str, str]
    ) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        params.update(options)
        if self.max_age is not None:
            params["max_age"] = str(self.max_age)
        return params


def _login_id_hint(key: str, login_id: str, enforce: str | None = None) -> str:
    """Authgear's canonical ``type=login_id`` hint, built by us so that what it receives is
    exactly what was checked (no second parser may read it differently)."""
    params = {"type": "login_id", key: login_id}
    if enforce is not None:
        params["enforce"] = enforce
    return LOGIN_HINT_PREFIX + urlencode(params)


def _login_id_key(login_id: str) -> str:
    """Which login ID ``login_id`` is: ``email``, ``phone`` or ``username``."""
    if "@" in login_id and not _CONTROL.search(login_id):
        return "email"
    if _PHONE.fullmatch(login_id):
        return "phone"
    if _USERNAME.fullmatch(login_id):
        return "username"
    raise InvalidLoginOption("login_hint is not an email, phone number or username")


def _hint_parameters(value: str) -> dict[str, str]:
    """The parameters of a ``https://authgear.com/login_hint?...`` value, parsed strictly.

    Refused: a fragment, ``;`` separators, a pair without ``=``, a key given twice (Authgear
    reads the first, another parser may read the last), bad percent-encoding.
    """
    query = value[len(LOGIN_HINT_PREFIX) :]
    if not query or "#" in query or ";" in query:
        raise InvalidLoginOption("login_hint URL is malformed")
    parameters: dict[str, str] = {}
    for pair in query.split("&"):
        raw_key, equals, raw_value = pair.partition("=")
        if not equals or _BAD_PERCENT.search(pair):
            raise InvalidLoginOption("login_hint URL is malformed")
        try:
            key = unquote_plus(raw_key, errors="strict")
            decoded = unquote_plus(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise InvalidLoginOption("login_hint URL is not valid UTF-8") from None
        if key in parameters:
            raise InvalidLoginOption("login_hint URL repeats a parameter")
        parameters[key] = decoded
    return parameters


def login_hint(value: str) -> str:
    """A login-ID ``login_hint`` from untrusted input (the query string), in Authgear's URL form.

    Accepts a plain email, phone number or username, or Authgear's URL form with
    ``type=login_id``, exactly one login ID and optionally ``enforce``. Every other hint type
    (``app_session_token``, ``anonymous``) logs the browser into a session its holder chose:
    from a link, that is login CSRF, so those come only from code (:func:`trusted_login_hint`).
    """
    value = value.strip()
    if not value or len(value) > MAX_LOGIN_HINT_LENGTH:
        raise InvalidLoginOption("login_hint is empty or too long")
    if not value.startswith(LOGIN_HINT_PREFIX):
        return _login_id_hint(_login_id_key(value), value)
    parameters = _hint_parameters(value)
    if parameters.get("type") != "login_id":
        raise InvalidLoginOption("login_hint from a link may only be of type login_id")
    unknown = set(parameters) - {"type", "enforce", *LOGIN_ID_KEYS}
    if unknown:
        raise InvalidLoginOption("login_hint URL has unsupported parameters")
    given = [key for key in LOGIN_ID_KEYS if key in parameters]
    if len(given) != 1:
        raise InvalidLoginOption("login_hint URL must name exactly one login ID")
    key = given[0]
    login_id = parameters[key].strip()
    if not login_id or _login_id_key(login_id) != key:
        raise InvalidLoginOption(f"login_hint {key} is not a valid {key}")
    enforce = parameters.get("enforce")
    if enforce is not None and enforce not in ("true", "false"):
        raise InvalidLoginOption("login_hint enforce must be true or false")
    return _login_id_hint(key, login_id, enforce)


def trusted_login_hint(value: str) -> str:
    """A ``login_hint`` the site's own code chose: any type Authgear knows.

    For hints that must never come from a link, e.g. ``type=app_session_token`` to open
    Authgear's settings already signed in. Pass it as ``begin_login(request, login_hint=...)``
    or in ``AuthgearLoginView.as_view(extra_params=...)``, never from request input.
    """
    value = value.strip()
    if not value or len(value) > MAX_TRUSTED_LOGIN_HINT_LENGTH:
        raise InvalidLoginOption("login_hint is empty or too long")
    if not value.startswith(LOGIN_HINT_PREFIX):
        return login_hint(value)
    hint_type = _hint_parameters(value).get("type")
    if hint_type == "login_id":
        return login_hint(value)
    if hint_type not in TRUSTED_HINT_TYPES:
        raise InvalidLoginOption("login_hint has an unknown type")
    return value


def clean_login_options(options: Mapping[str, Any], *, trusted: bool = False) -> dict[str, str]:
    """Validate Authgear options; unknown keys are ignored, bad values refused.

    ``trusted=True`` only for options written in the site's code: it lets ``login_hint`` be of
    a type that must never come from a request (see :func:`trusted_login_hint`).
    """
    cleaned: dict[str, str] = {}
    for name in LOGIN_OPTIONS:
        raw = options.get(name)
        if raw is None or raw == "":
            continue
        if not isinstance(raw, str):
            raise InvalidLoginOption(f"{name} must be a string")
        value = raw.strip()
        if name == "prompt":
            words = value.split()
            if not words or not set(words) <= PROMPT_VALUES or ("none" in words and len(words) > 1):
                raise InvalidLoginOption("prompt has an unsupported value")
            cleaned[name] = " ".join(words)
        elif name == "login_hint":
            cleaned[name] = trusted_login_hint(value) if trusted else login_hint(value)
        elif name == "ui_locales":
            tags = value.split()
            if not tags or len(tags) > 10 or not all(_LOCALE_TAG.match(tag) for tag in tags):
                raise InvalidLoginOption("ui_locales must be space-separated language tags")
            cleaned[name] = " ".join(tags)
        elif name == "x_page":
            if value not in X_PAGE_VALUES:
                raise InvalidLoginOption("x_page must be 'login' or 'signup'")
            cleaned[name] = value
    return cleaned

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
from urllib.parse import urlencode

from authgear_django.exceptions import InvalidLoginOption

LOGIN_HINT_PREFIX = "https://authgear.com/login_hint?"
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
X_PAGE_VALUES = frozenset({"login", "signup"})
LOGIN_OPTIONS = ("prompt", "login_hint", "ui_locales", "x_page")
_LOCALE_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_PHONE = re.compile(r"^\+[0-9]{6,15}$")
_USERNAME = re.compile(r"^[\w.\-]{1,100}$")
MAX_LOGIN_HINT_LENGTH = 512


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


def login_hint(value: str) -> str:
    """Turn an email, phone number or username into Authgear's ``login_hint`` URL form.

    Authgear rejects a plain-email hint (``invalid login_hint``); an already-formed
    ``https://authgear.com/login_hint?...`` value is passed through unchanged.
    """
    value = value.strip()
    if not value or len(value) > MAX_LOGIN_HINT_LENGTH:
        raise InvalidLoginOption("login_hint is empty or too long")
    if value.startswith(LOGIN_HINT_PREFIX):
        return value
    if "@" in value:
        key = "email"
    elif _PHONE.match(value):
        key = "phone"
    elif _USERNAME.match(value):
        key = "username"
    else:
        raise InvalidLoginOption("login_hint is not an email, phone number or username")
    return LOGIN_HINT_PREFIX + urlencode({"type": "login_id", key: value})


def clean_login_options(options: Mapping[str, Any]) -> dict[str, str]:
    """Validate per-request Authgear options; unknown keys are ignored, bad values refused."""
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
            cleaned[name] = login_hint(value)
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

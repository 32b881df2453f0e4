"""What the client authentication method tests share: odd credentials, the fake set up for a
client type, and the requests it received.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

from tests import leak_guard
from tests.fake_authgear import FakeAuthgear

METHODS = ["client_secret_post", "client_secret_basic", "none"]
ALL_METHODS_ADVERTISED = {
    "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"]
}

# A client ID and a secret with the characters Basic authentication must escape: ':' (the
# separator), '+' and ' ' (form-urlencoding's space), '%', '&', '/', '='. Expected encodings are
# written out by hand, not computed with the code under test.
ODD_CLIENT_ID = "app:1+2 %"
ODD_CLIENT_ID_ENCODED = "app%3A1%2B2+%25"
ODD_SECRET = "s3cr:et+wi%th space&/=0123"
ODD_SECRET_ENCODED = "s3cr%3Aet%2Bwi%25th+space%26%2F%3D0123"
ODD_BASIC = "Basic " + base64.b64encode(
    f"{ODD_CLIENT_ID_ENCODED}:{ODD_SECRET_ENCODED}".encode()
).decode("ascii")


def register_secrets(*values: str) -> None:
    """Make the autouse leak guard fail the test if any of these reaches a log or a page."""
    leak_guard.register(*values)


def configure_fake(fake: FakeAuthgear, method: str, *, client_id: str, secret: str) -> None:
    """Register the client in the fake as the portal would for this method's client type."""
    fake.client_id = client_id
    fake.client_secret = secret
    fake.public_client = method == "none"
    fake.discovery_overrides.update(ALL_METHODS_ADVERTISED)
    register_secrets(secret, ODD_SECRET_ENCODED, ODD_BASIC, ODD_BASIC.split()[1])


def seen(fake: FakeAuthgear, path: str) -> list[tuple[dict[str, list[str]], str | None]]:
    """(form body, Authorization header) of every request that reached ``path``."""
    found = []
    for call in fake.mock.calls:  # type: ignore[union-attr]
        if urlsplit(call.request.url).path == path:
            body = call.request.body or ""
            text = body.decode() if isinstance(body, bytes) else body
            found.append(
                (parse_qs(text, keep_blank_values=True), call.request.headers.get("Authorization"))
            )
    return found


def expected_client_fields(method: str, client_id: str, secret: str) -> dict[str, list[str]]:
    if method == "client_secret_post":
        return {"client_id": [client_id], "client_secret": [secret]}
    if method == "none":
        return {"client_id": [client_id]}
    return {}

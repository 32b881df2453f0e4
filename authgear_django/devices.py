"""What a login's stored User-Agent and address say, for people: "Windows computer, Chrome".

Only a display string for the "Your sessions" page and the admin, so a dozen ordered substring
checks are enough. A parser library (ua-parser) would add a dependency and a regular-expression
database that recognises versions, bots and rare devices, none of which this string needs. No
regular expression here either: a hostile header cannot make the page slow.

Django-free. The labels are English msgids, marked with :func:`gettext_noop` so that
``makemessages`` extracts them; the Django side passes its ``gettext`` to :func:`describe`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass


def gettext_noop(message: str) -> str:
    """Mark a msgid for ``makemessages`` (it knows this name) without importing Django."""
    return message


UNKNOWN_DEVICE = gettext_noop("Unknown device")
DEVICE_AND_BROWSER = gettext_noop("%(device)s, %(browser)s")

# (tokens that must all appear, label): the first match wins, so the specific comes first
# (an iPhone's User-Agent says "like Mac OS X", Android's says "Linux").
DEVICES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("iPhone",), gettext_noop("iPhone")),
    (("iPad",), gettext_noop("iPad")),
    (("iPod",), gettext_noop("iPod")),
    (("Windows Phone",), gettext_noop("Windows phone")),
    (("Android", "Mobile"), gettext_noop("Android phone")),
    (("Android",), gettext_noop("Android tablet")),
    (("CrOS",), gettext_noop("Chromebook")),
    (("Windows NT",), gettext_noop("Windows computer")),
    (("Macintosh",), gettext_noop("Mac")),
    (("Linux",), gettext_noop("Linux computer")),
)

# Chromium-based browsers also say "Chrome/" and "Safari/", Chrome says "Safari/": their own
# token is checked first. Product names are not translated.
BROWSERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Edg/",), "Edge"),
    (("EdgA/",), "Edge"),
    (("EdgiOS/",), "Edge"),
    (("Edge/",), "Edge"),  # the pre-Chromium Edge
    (("OPR/",), "Opera"),
    (("SamsungBrowser/",), "Samsung Internet"),
    (("Firefox/",), "Firefox"),
    (("FxiOS/",), "Firefox"),
    (("CriOS/",), "Chrome"),
    (("Chrome/",), "Chrome"),
    (("Android", "Version/"), "Android browser"),  # the pre-Chrome stock browser
    (("Version/", "Safari/"), "Safari"),
)


@dataclass(frozen=True)
class Device:
    """The kind of device and the browser (English msgids), ``None`` when not recognised."""

    device: str | None
    browser: str | None


def _first_match(user_agent: str, table: tuple[tuple[tuple[str, ...], str], ...]) -> str | None:
    for tokens, label in table:
        if all(token in user_agent for token in tokens):
            return label
    return None


def parse(user_agent: str) -> Device:
    """The device and browser a User-Agent names; anything unrecognised is ``None``."""
    return Device(
        device=_first_match(user_agent, DEVICES), browser=_first_match(user_agent, BROWSERS)
    )


def _identity(message: str) -> str:
    return message


def describe(user_agent: str, translate: Callable[[str], str] = _identity) -> str:
    """The label to show: "Windows computer, Chrome", "Unknown device, Firefox", "Unknown device".

    ``translate`` is applied to every label (pass Django's ``gettext``); browser names are
    product names and stay as they are.
    """
    found = parse(user_agent or "")
    if found.device is None and found.browser is None:
        return translate(UNKNOWN_DEVICE)
    device = translate(found.device or UNKNOWN_DEVICE)
    if found.browser is None:
        return device
    return translate(DEVICE_AND_BROWSER) % {"device": device, "browser": found.browser}


def sign_in_address(remote_addr: object) -> str | None:
    """The address to store for a sign-in: ``REMOTE_ADDR`` when it is an IP address, else None.

    Normalised (``::0001`` → ``::1``) and without an IPv6 zone (``%eth0``), which PostgreSQL's
    ``inet`` refuses: a strange value must never turn a login into a 500. Only ``REMOTE_ADDR``
    is trusted: ``X-Forwarded-For`` is whatever the client wrote unless the site sits behind a
    proxy that sets it, and such a site should make its proxy middleware set ``REMOTE_ADDR``.
    """
    if not isinstance(remote_addr, str) or not remote_addr or len(remote_addr) > 100:
        return None
    address, _, _zone = remote_addr.strip().partition("%")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None

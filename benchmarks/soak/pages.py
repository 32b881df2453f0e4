"""The example site's pages as the simulated users read them.

Which pages they browse and where the login starts, and the bits of HTML they pick out: the
provider's login form fields, the API status of ``/call-api/`` and a page's title for messages.
"""

from __future__ import annotations

import html
import re

import requests

PAGES = ("/private/", "/welcome/", "/call-api/")
LOGIN_PATH = "/auth/login/"

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEXT = re.compile(r'name="next" value="([^"]*)"')
API_STATUS = re.compile(r'id="api-status">(\d+)<')
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def short(response: requests.Response) -> str:
    """A page in a few words for a message: its title, else the start of its text."""
    match = _TITLE.search(response.text)
    text = match.group(1) if match else response.text[:120]
    return " ".join(html.unescape(text).split())[:160]

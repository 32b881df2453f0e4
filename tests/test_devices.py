"""The User-Agent → "device, browser" label and the sign-in address, on real header values."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from authgear_django.devices import describe, parse, sign_in_address
from tests.test_core_is_django_free import BLOCK_DJANGO

REAL_USER_AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Windows computer, Chrome",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "iPhone, Safari",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Linux computer, Firefox",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
        "Linux computer, Firefox",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
        "Windows computer, Edge",
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        "Android phone, Chrome",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.6312.118 Safari/537.36",
        "Android tablet, Chrome",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
        "Mac, Safari",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        "iPhone, Chrome",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
        "iPad, Firefox",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "Android phone, Samsung Internet",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
        "Windows computer, Opera",
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        "Android phone, Firefox",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Chromebook, Chrome",
    ),
    ("curl/8.5.0", "Unknown device"),
    ("python-requests/2.31.0", "Unknown device"),
    ("", "Unknown device"),
    ("Mozilla/5.0 (compatible; SomeBot/1.0) Firefox/1.0", "Unknown device, Firefox"),
    ("Mozilla/5.0 (Windows NT 10.0) MysteryBrowser/1.0", "Windows computer"),
]


@pytest.mark.parametrize(("user_agent", "label"), REAL_USER_AGENTS)
def test_real_user_agents_read_as_device_and_browser(user_agent: str, label: str) -> None:
    assert describe(user_agent) == label


def test_the_labels_go_through_the_given_translation() -> None:
    french = {
        "Windows computer": "Ordinateur Windows",
        "Unknown device": "Appareil inconnu",
        "%(device)s, %(browser)s": "%(browser)s sur %(device)s",
    }
    chrome_on_windows = REAL_USER_AGENTS[0][0]
    assert describe(chrome_on_windows, french.get) == "Chrome sur Ordinateur Windows"  # type: ignore[arg-type]
    assert describe("curl/8.5.0", french.get) == "Appareil inconnu"  # type: ignore[arg-type]


def test_parse_keeps_what_it_did_not_recognise_as_none() -> None:
    found = parse("curl/8.5.0")
    assert found.device is None and found.browser is None


def test_a_long_hostile_header_is_read_quickly() -> None:
    hostile = "Mozilla/5.0 (" + "Android " * 10_000 + "Version/" * 10_000
    started = time.perf_counter()
    assert describe(hostile) == "Android tablet, Android browser"
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("remote_addr", "stored"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8::0001", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),  # PostgreSQL's inet refuses a zone
        (" 198.51.100.7 ", "198.51.100.7"),
        ("not an address", None),
        ("203.0.113.9, 10.0.0.1", None),  # a forwarded list is not an address
        ("", None),
        (None, None),
        ("1" * 200, None),
    ],
)
def test_sign_in_address_stores_only_an_ip_address(remote_addr: object, stored: str | None) -> None:
    assert sign_in_address(remote_addr) == stored


def test_the_module_imports_without_django() -> None:
    result = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", BLOCK_DJANGO, "authgear_django.devices"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"

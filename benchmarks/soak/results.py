"""What the simulated users observed, shared between their threads under one lock.

Per user a :class:`UserRecord` (when it logged in, its last request); for the whole run one
:class:`Results` with latencies, status counts and the lists of problems the report prints.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from .pages import short


@dataclass
class UserRecord:
    index: int
    email: str
    login_submitted: float | None = None  # wall clock, before the credentials were sent
    logged_in: float | None = None  # wall clock, when /private/ answered after the login
    last_request: float | None = None  # wall clock, start of the last page request
    requests: int = 0
    logins: int = 0


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)  # seconds, browsing requests
    latencies_by_page: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    login_durations: list[float] = field(default_factory=list)
    status_classes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)  # "<page> <status>"
    login_status_classes: Counter[str] = field(default_factory=Counter)  # every hop of logins
    server_errors: list[str] = field(default_factory=list)
    no_response: list[str] = field(default_factory=list)
    unexpected_logouts: list[str] = field(default_factory=list)
    other_redirects: list[str] = field(default_factory=list)
    wrong_content: list[str] = field(default_factory=list)
    api_not_ok: list[str] = field(default_factory=list)
    failed_logins: list[str] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)  # bugs of this script
    retried: list[str] = field(default_factory=list)  # connection resets, retried once
    bursts: int = 0

    @property
    def connection_retries(self) -> int:
        return len(self.retried)

    def add(self, name: str, item: str) -> None:
        with self.lock:
            getattr(self, name).append(item)

    def count_login_hops(self, response: requests.Response) -> None:
        """Count each response of a login flow (redirects included); 5xx are server errors."""
        for hop in (*response.history, response):
            with self.lock:
                self.login_status_classes[f"{hop.status_code // 100}xx"] += 1
            if hop.status_code >= 500:
                path = urlsplit(hop.url).path
                self.add("server_errors", f"login flow {path}: HTTP {hop.status_code} {short(hop)}")

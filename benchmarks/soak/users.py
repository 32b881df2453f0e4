"""One simulated user: a thread with its own ``requests.Session``, like one browser.

It logs in through ``/auth/login/?next=/private/`` and the provider's login form, then until the
end of the run loops over ``/private/``, ``/welcome/`` and ``/call-api/`` with random think times,
sometimes loading several pages at once over the same cookies, and records what it saw in the
shared :class:`~.results.Results`: latencies, 5xx, unexpected logouts, pages of another user.

A request on a kept-alive connection that gunicorn closes at that moment (its ``--keep-alive``
timeout) is reset before any answer; browsers resend such a GET, and so do the users here, once
(counted and listed).
"""

from __future__ import annotations

import argparse
import html
import random
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from .constants import HTTP_TIMEOUT, PASSWORD
from .pages import API_STATUS, CSRF, LOGIN_PATH, NEXT, PAGES, short
from .processes import http_session
from .results import Results, UserRecord
from .stack import Stack

MAX_RELOGINS = 3  # per user, after an unexpected logout (counted, then the user goes on)


def _reset_before_answer(error: requests.ConnectionError) -> bool:
    """The connection was reset or closed before any answer (not a timeout)."""
    if isinstance(error, requests.Timeout):
        return False
    text = str(error)
    return "Connection aborted" in text and (
        "ConnectionResetError" in text or "RemoteDisconnected" in text
    )


class SimulatedUser(threading.Thread):
    """One browser: log in once, then browse until the deadline."""

    def __init__(
        self,
        record: UserRecord,
        *,
        stack: Stack,
        args: argparse.Namespace,
        results: Results,
        start_at: float,
        deadline: float,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"user-{record.index}", daemon=True)
        self.record = record
        self.site = stack.site_url
        self.op = stack.op_url
        self.args = args
        self.results = results
        self.start_at = start_at
        self.deadline = deadline
        self.stop_event = stop
        self.random = random.Random(seed)
        self.browser = http_session()
        self.browser.headers["User-Agent"] = f"authgear-soak/{record.index}"
        self.pool = ThreadPoolExecutor(max_workers=max(1, args.burst - 1))
        self.logged_out = False

    def run(self) -> None:
        try:
            if self.stop_event.wait(max(0.0, self.start_at - time.time())):
                return
            if not self.log_in():
                return
            while not self.stop_event.is_set() and time.time() < self.deadline:
                if self.logged_out and (self.record.logins > MAX_RELOGINS or not self.log_in()):
                    return
                if self.args.burst > 1 and self.random.random() < self.args.burst_chance:
                    self.burst()
                else:
                    self.visit(self.random.choice(PAGES))
                pause = min(
                    self.random.uniform(0, self.args.think_max), self.deadline - time.time()
                )
                if pause > 0 and self.stop_event.wait(pause):
                    return
        except Exception:
            self.results.add("client_errors", f"{self.name}: {traceback.format_exc()}")
        finally:
            self.pool.shutdown(wait=True)
            self.browser.close()

    # login --------------------------------------------------------------------------------

    def log_in(self) -> bool:
        record = self.record
        record.logins += 1
        self.logged_out = False
        started = time.perf_counter()
        try:
            page = self.browser.get(
                f"{self.site}{LOGIN_PATH}", params={"next": "/private/"}, timeout=HTTP_TIMEOUT
            )
            self.results.count_login_hops(page)
            csrf, next_value = CSRF.search(page.text), NEXT.search(page.text)
            if page.status_code != 200 or not page.url.startswith(f"{self.op}/login") or not csrf:
                self.results.add(
                    "failed_logins",
                    f"{record.email}: login page HTTP {page.status_code} at {page.url}",
                )
                return False
            record.login_submitted = time.time()
            done = self.browser.post(
                page.url,
                data={
                    "csrfmiddlewaretoken": csrf.group(1),
                    "username": record.email,
                    "password": PASSWORD,
                    "next": html.unescape(next_value.group(1)) if next_value else "",
                },
                timeout=HTTP_TIMEOUT,
            )
            self.results.count_login_hops(done)
        except requests.RequestException as error:
            self.results.add("failed_logins", f"{record.email}: {type(error).__name__}: {error}")
            return False
        if done.status_code != 200 or done.url != f"{self.site}/private/":
            self.results.add(
                "failed_logins",
                f"{record.email}: after the form HTTP {done.status_code} at {done.url}: "
                f"{short(done)}",
            )
            return False
        record.logged_in = time.time()
        with self.results.lock:
            self.results.login_durations.append(time.perf_counter() - started)
        return True

    # browsing -------------------------------------------------------------------------------

    def burst(self) -> None:
        """Several pages at once over the same cookies, like a browser loading a page."""
        pages = [self.random.choice(PAGES) for _ in range(self.args.burst)]
        with self.results.lock:
            self.results.bursts += 1
        futures = [self.pool.submit(self.visit, page) for page in pages[1:]]
        self.visit(pages[0])
        for future in futures:
            future.result(timeout=HTTP_TIMEOUT + 5)

    def visit(self, page: str) -> None:
        record = self.record
        record.last_request = time.time()
        started = time.perf_counter()
        try:
            try:
                response = self.get(page)
            except requests.ConnectionError as error:
                if not _reset_before_answer(error):
                    raise
                # gunicorn closed this kept-alive connection as the request arrived (its
                # --keep-alive timeout): browsers resend such a GET, so do we, once.
                self.results.add(
                    "retried", f"{record.email} {page} at {time.strftime('%H:%M:%S')}: {error}"
                )
                response = self.get(page)
        except requests.RequestException as error:
            self.results.add(
                "no_response",
                f"{record.email} {page} at {time.strftime('%H:%M:%S')}: "
                f"{type(error).__name__}: {error}",
            )
            return
        elapsed = time.perf_counter() - started
        status = response.status_code
        results = self.results
        with results.lock:
            record.requests += 1
            results.latencies.append(elapsed)
            results.latencies_by_page[page].append(elapsed)
            results.status_classes[f"{status // 100}xx"] += 1
            results.statuses[f"{page} {status}"] += 1
        where = f"{record.email} {page} at {time.strftime('%H:%M:%S')}"
        if status >= 500:
            results.add("server_errors", f"{where}: HTTP {status} {short(response)}")
        elif status in (301, 302, 303, 307, 308):
            location = response.headers.get("Location", "")
            target = urlsplit(location)
            if target.path.startswith(LOGIN_PATH) or location.startswith(self.op):
                results.add("unexpected_logouts", f"{where}: HTTP {status} to {location}")
                self.logged_out = True
            else:
                results.add("other_redirects", f"{where}: HTTP {status} to {location}")
        elif status == 401:
            results.add("unexpected_logouts", f"{where}: HTTP 401 {short(response)}")
            self.logged_out = True
        elif status == 200:
            self.check_content(page, response, where)

    def get(self, page: str) -> requests.Response:
        return self.browser.get(f"{self.site}{page}", allow_redirects=False, timeout=HTTP_TIMEOUT)

    def check_content(self, page: str, response: requests.Response, where: str) -> None:
        text, email = response.text, self.record.email
        if page == "/private/":
            if "<h1>Private page</h1>" not in text:
                self.results.add("wrong_content", f"{where}: {short(response)}")
        elif page == "/welcome/":
            if f"<h1>Welcome {email}</h1>" not in text:
                self.results.add("wrong_content", f"{where}: {short(response)}")
        else:
            match = API_STATUS.search(text)
            api_status = match.group(1) if match else "no answer"
            if api_status != "200":
                self.results.add("api_not_ok", f"{where}: API status {api_status}")
            elif f"&quot;email&quot;: &quot;{email}&quot;" not in text:
                self.results.add("wrong_content", f"{where}: API answered for another user")

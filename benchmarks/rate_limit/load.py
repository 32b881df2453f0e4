"""The rate-limit test's stack, its users and the sampler of the provider's token counters.

The stack is the soak test's, with two more settings: the provider's token-endpoint limit and
the site's refresh mode and liveness-check interval. The users are the soak test's browsers,
each loading ``/private/`` (no access token needed) every ``--interval`` seconds. The sampler
reads the provider's cumulative ``/_test/stats`` counters every second, so that the report can
tell the token calls made after the first 429 from those made before it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from ..soak import probes
from ..soak.constants import EMAIL, HTTP_TIMEOUT
from ..soak.processes import run_command
from ..soak.results import Results, UserRecord
from ..soak.stack import Stack
from ..soak.users import MAX_RELOGINS, SimulatedUser

PAGE = "/private/"  # @login_required, renders a template: needs no access token
SAMPLE_EVERY = 1.0  # seconds between two reads of the provider's counters
# example_project.settings plus AUTHGEAR_EAGER_REFRESH read from the environment
SITE_SETTINGS = "benchmarks.rate_limit.site_settings"

# Prints the refresh mode the site really runs in (None: the setting does not exist yet, so
# the site refreshes eagerly, the only mode it has).
MODE_PROBE = (
    "from authgear_django.conf import conf; "
    "print('EAGER_REFRESH', getattr(conf, 'AUTHGEAR_EAGER_REFRESH', None))"
)


class RateLimitStack(Stack):
    """The soak stack, with the provider's token limit and the site's refresh settings."""

    def __init__(self, args: argparse.Namespace, *, limit: int) -> None:
        super().__init__(args)
        self.limit = limit
        self.site_mode = "unknown"

    def _provider_env(self) -> dict[str, str]:
        return {**super()._provider_env(), "LOCAL_OP_TOKEN_RATE_LIMIT": str(self.limit)}

    def _site_env(self) -> dict[str, str]:
        return {
            **super()._site_env(),
            "AUTHGEAR_EAGER_REFRESH": "true" if self.args.eager else "false",
            "AUTHGEAR_SESSION_CHECK_INTERVAL": str(self.args.check_interval),
            "DJANGO_SETTINGS_MODULE": SITE_SETTINGS,
        }

    def start(self) -> None:
        super().start()
        probe = [sys.executable, "manage.py", "shell", "-c", MODE_PROBE]
        for line in run_command(probe, self._site_env(), self.site_log).splitlines():
            if line.startswith("EAGER_REFRESH "):
                value = line.removeprefix("EAGER_REFRESH ")
                self.site_mode = {
                    "True": "eager",
                    "False": "lazy",
                    "None": "eager (this library has no AUTHGEAR_EAGER_REFRESH yet)",
                }.get(value, f"unknown ({value})")


@dataclass(frozen=True)
class Sample:
    """The provider's token answers so far, at one moment (wall clock)."""

    at: float
    exchanges: int  # authorization_code grants, any answer
    refreshes: int  # refresh_token grants, any answer
    rejected: int  # answers other than 200, of any grant: 429 x_rate_limited here

    @property
    def calls(self) -> int:
        return self.exchanges + self.refreshes

    @classmethod
    def of(cls, at: float, stats: dict[str, Any]) -> Sample:
        token: dict[str, dict[str, int]] = stats.get("token", {})

        def calls(grant: str) -> int:
            counts = token.get(grant, {})
            return int(counts.get("ok", 0)) + int(counts.get("error", 0))

        rejected = sum(int(counts.get("error", 0)) for counts in token.values())
        return cls(at, calls("authorization_code"), calls("refresh_token"), rejected)


class Sampler(threading.Thread):
    """Reads the provider's counters every :data:`SAMPLE_EVERY` seconds until stopped."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(name="sampler", daemon=True)
        self.stack = stack
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def take(self) -> None:
        try:
            self.samples.append(Sample.of(time.time(), probes.provider_stats(self.stack)))
        except (requests.RequestException, ValueError) as error:
            self.errors.append(f"{type(error).__name__}: {error}")

    def run(self) -> None:
        while not self.stop_event.wait(SAMPLE_EVERY):
            self.take()


class PageUser(SimulatedUser):
    """A soak browser that loads one page, :data:`PAGE`, every ``--interval`` seconds."""

    def run(self) -> None:
        try:
            if self.stop_event.wait(max(0.0, self.start_at - time.time())):
                return
            if not self.log_in():
                return
            while not self.stop_event.is_set() and time.time() < self.deadline:
                if self.logged_out and (self.record.logins > MAX_RELOGINS or not self.log_in()):
                    return
                self.visit(PAGE)
                if self.stop_event.wait(min(self.args.interval, self.deadline - time.time())):
                    return
        except Exception as error:  # a bug of this script, reported as such
            self.results.add("client_errors", f"{self.name}: {type(error).__name__}: {error}")
        finally:
            self.pool.shutdown(wait=True)
            self.browser.close()


def run_load(
    stack: Stack, args: argparse.Namespace
) -> tuple[Results, list[UserRecord], list[Sample], float, float]:
    """Results, the users' records, the counter samples, and the load's wall-clock start/end."""
    results = Results()
    stop = threading.Event()
    started = time.time() + 0.5
    deadline = started + args.duration
    records = [UserRecord(i, EMAIL.format(i)) for i in range(1, args.users + 1)]
    users = [
        PageUser(
            record,
            stack=stack,
            args=args,
            results=results,
            start_at=started + args.ramp_up * n / args.users,
            deadline=deadline,
            stop=stop,
            seed=record.index,
        )
        for n, record in enumerate(records)
    ]
    sampler = Sampler(stack)
    sampler.take()  # the counters before the first login
    sampler.start()
    for user in users:
        user.start()
    try:
        last_report = time.time()
        while any(user.is_alive() for user in users):
            now = time.time()
            if now > deadline + HTTP_TIMEOUT + 15:
                results.add("client_errors", "users still running long after the end")
                break
            if now - last_report >= 15 and now < deadline and sampler.samples:
                last = sampler.samples[-1]
                print(
                    f"  t={now - started:5.1f} s  pages {len(results.latencies)}  "
                    f"token calls {last.calls}  rejected {last.rejected}",
                    flush=True,
                )
                last_report = now
            time.sleep(0.2)
    finally:
        stop.set()
        join_deadline = time.monotonic() + HTTP_TIMEOUT + 5
        for user in users:
            user.join(timeout=max(0.0, join_deadline - time.monotonic()))
        sampler.stop_event.set()
        sampler.join(timeout=HTTP_TIMEOUT)
    sampler.take()  # the counters after the last page
    return results, records, sampler.samples, started, time.time()

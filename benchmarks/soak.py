"""Soak test: many users browsing the example site under gunicorn while their tokens expire.

Run from the repository root (with the ``demo`` extra, gunicorn and redis installed):

    .venv/bin/python benchmarks/soak.py [--workers 3 --users 30 --duration 90 --token-lifetime 10]

Everything runs on 127.0.0.1 and is removed at the end (also on Ctrl-C or an error):

- the local OpenID provider (``example_project/local_provider``, ``runserver``, one process so
  its ``/_test/stats`` counters see every request), on its own SQLite file in a temporary
  directory, with a short access-token lifetime, refresh-token rotation (always on there), the
  test hooks, fast password/secret hashes and ``seed_demo --users N``;
- the example site under gunicorn with several worker processes and threads, on a fresh
  PostgreSQL database ``soak_<random>`` (row locks: one refresh per login and expiry across
  workers), with Redis as its shared Django cache (a dedicated DB number, flushed before and
  after) and database-backed sessions, after ``manage.py migrate``.

Each simulated user is a thread with its own ``requests.Session`` (one browser): it logs in
through ``/auth/login/?next=/private/`` and the provider's login form, then until the end of the
run loops over ``/private/``, ``/welcome/`` and ``/call-api/`` with random think times,
sometimes loading several pages at once over the same cookies. Logins are spread over a
ramp-up so that expiries are spread too.

A request on a kept-alive connection that gunicorn closes at that moment (its ``--keep-alive``
timeout) is reset before any answer; browsers resend such a GET, and so do the users here, once
(counted and listed).

Goals (exit status 1 if one is missed): no 5xx and no request left without an answer; no
gunicorn worker timeout; no unexpected logout; every page shows its own user and /call-api/ gets
200 from the API; refreshes per login per expiry <= 1, where the expiry windows a login lived
through are floor(browsing time / (lifetime - leeway)); per login, refreshes <= its windows + 1
(``AuthgearLogin.refresh_count`` read from the soak database, and the provider's token records,
which must agree); no refresh of a token before its refresh point (a second refresh in one
window). Exit status 2: the stack could not be started; 130: interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import itertools
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"
PASSWORD = "authgear-demo"  # seed_demo gives every soak user the demo password
EMAIL = "soak-{}@example.com"  # seed_demo --users N: i = 1..N

PAGES = ("/private/", "/welcome/", "/call-api/")
LOGIN_PATH = "/auth/login/"

STARTUP_TIMEOUT = 60.0  # seconds for a server to answer its first request
COMMAND_TIMEOUT = 180.0  # seconds for migrate / seed_demo
STOP_TIMEOUT = 10.0  # seconds between terminate and kill
HTTP_TIMEOUT = 30.0  # seconds for one request of a simulated user (gunicorn's worker timeout)
MAX_RELOGINS = 3  # per user, after an unexpected logout (counted, then the user goes on)

# Variables of the parent environment that would change how the servers run.
_CLEARED_PREFIXES = ("LOCAL_OP_", "AUTHGEAR_", "DJANGO_", "EXAMPLE_")
_CLEARED_NAMES = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}


class SetupError(RuntimeError):
    """The stack could not be started (exit status 2)."""


# --- options ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/soak.py",
        description="Soak test of the example site (gunicorn, PostgreSQL, Redis) against the "
        "local OpenID provider, on 127.0.0.1 only.",
    )
    add = parser.add_argument
    add("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    add("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    add("--users", type=int, default=30, help="simulated users, one login each (default 30)")
    add("--duration", type=float, default=90.0, help="seconds of load, ramp-up included (90)")
    add(
        "--token-lifetime",
        type=int,
        default=10,
        help="access-token lifetime at the provider, seconds (default 10, at least 4)",
    )
    add("--ramp-up", type=float, default=None, help="seconds over which users log in")
    add("--think-max", type=float, default=0.3, help="max think time between pages, s (0.3)")
    add("--burst", type=int, default=3, help="pages loaded at once in a burst (default 3)")
    add("--burst-chance", type=float, default=0.2, help="share of steps that are bursts (0.2)")
    add("--seed", type=int, default=None, help="random seed of the simulated users")
    add(
        "--postgres-url",
        default=os.environ.get("SOAK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="admin URL to create/drop the site's database (loopback only)",
    )
    add("--redis-host", default=HOST, help="Redis host (loopback only; default 127.0.0.1)")
    add("--redis-port", type=int, default=6379)
    add(
        "--redis-db",
        type=int,
        default=15,
        help="Redis DB number dedicated to the soak test: flushed before and after (15)",
    )
    add(
        "--keep-alive",
        type=int,
        default=2,
        help="gunicorn --keep-alive, seconds (default 2, gunicorn's default)",
    )
    add("--debug", action="store_true", help="run the site with DJANGO_DEBUG=true")
    add(
        "--slow-hashes",
        action="store_true",
        help="keep the provider's PBKDF2 hashes (~0.7 s CPU per login and token request)",
    )
    add("--keep", action="store_true", help="keep the temporary directory (logs, provider DB)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1 or args.users < 1 or args.burst < 1:
        parser.error("--workers, --threads, --users and --burst must be at least 1")
    if args.duration <= 0 or not 0 <= args.burst_chance <= 1 or args.think_max < 0:
        parser.error("--duration must be positive, --burst-chance in [0, 1], --think-max >= 0")
    if args.token_lifetime < 4:
        parser.error("--token-lifetime must be at least 4 seconds (whole-second refresh windows)")
    if args.ramp_up is None:
        args.ramp_up = min(10.0, args.duration / 6)
    if not 0 <= args.ramp_up < args.duration:
        parser.error("--ramp-up must be in [0, duration)")
    if urlsplit(args.postgres_url).hostname not in LOOPBACK_NAMES:
        parser.error("--postgres-url must point at 127.0.0.1 (loopback only)")
    if args.redis_host not in LOOPBACK_NAMES:
        parser.error("--redis-host must be 127.0.0.1 (loopback only)")
    return args


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_CLEARED_PREFIXES) and name not in _CLEARED_NAMES
    }
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
    env.update({"PYTHONUNBUFFERED": "1", "NO_PROXY": no_proxy, "no_proxy": no_proxy})
    return env


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: loopback only
    return session


def run_command(args: list[str], env: dict[str, str], log_path: Path) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            args,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SetupError(f"{' '.join(args[1:])} took over {COMMAND_TIMEOUT:.0f} s") from error
    output = result.stdout + result.stderr
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(args[1:])}\n{output}\n")
    if result.returncode != 0:
        raise SetupError(f"{' '.join(args[1:])} exited with {result.returncode}:\n{output}")
    return output


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"


@dataclass
class Server:
    """A server process in its own process group (so Ctrl-C reaches only this script)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.args,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        session = http_session()
        while True:
            code = self.process.poll()
            if code is not None:
                raise SetupError(f"{self.name} exited with {code}; its log:\n{tail(self.log_path)}")
            try:
                session.get(self.ready_url, timeout=2, allow_redirects=False)
                return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SetupError(
                    f"{self.name} did not answer {self.ready_url} within {timeout:.0f} s; "
                    f"its log:\n{tail(self.log_path)}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (gunicorn: graceful shutdown), wait, then SIGKILL this server's group."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group we created for it
            process.wait(timeout=STOP_TIMEOUT)


def _gunicorn_extra_options() -> list[str]:
    """Recent gunicorn opens a control socket in ~/.gunicorn, shared by every instance: not ours."""
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class Stack:
    """Provider + site + their databases; :meth:`close` undoes whatever was set up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="authgear-soak-"))
        self.op_port, self.site_port = free_port(), free_port()
        self.op_url = f"http://{HOST}:{self.op_port}"
        self.site_url = f"http://{HOST}:{self.site_port}"
        self.op_db = self.workdir / "op.sqlite3"
        self.database = f"soak_{secrets.token_hex(6)}"
        self.database_url = _with_database(args.postgres_url, self.database)
        self.redis_url = f"redis://{HOST}:{args.redis_port}/{args.redis_db}"
        self.servers: list[Server] = []
        self._database_created = False
        self._redis: Any = None

    # setup -------------------------------------------------------------------------------

    def start(self) -> None:
        args = self.args
        python = sys.executable
        provider = [python, "-m", "example_project.local_provider"]
        op_env = {
            **base_env(),
            "LOCAL_OP_PORT": str(self.op_port),
            "LOCAL_OP_ISSUER": self.op_url,
            "LOCAL_OP_DB": str(self.op_db),
            "LOCAL_OP_KEY_FILE": str(self.workdir / "op_rsa_key.pem"),
            "LOCAL_OP_ACCESS_TOKEN_LIFETIME": str(args.token_lifetime),
            "LOCAL_OP_REDIRECT_URIS": f"{self.site_url}/auth/callback/",
            "LOCAL_OP_POST_LOGOUT_REDIRECT_URIS": f"{self.site_url}/",
            "LOCAL_OP_TEST_HOOKS": "1",
            "LOCAL_OP_FAST_HASHES": "0" if args.slow_hashes else "1",
        }
        site_env = {
            **base_env(),
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "true" if args.debug else "false",
            "DJANGO_ALLOWED_HOSTS": HOST,
            "AUTHGEAR_ENDPOINT": self.op_url,
            "AUTHGEAR_CLIENT_ID": CLIENT_ID,
            "AUTHGEAR_CLIENT_SECRET": CLIENT_SECRET,
            # empty values also win over a developer's .env (python-dotenv does not override)
            "AUTHGEAR_REDIRECT_URL": "",
            "AUTHGEAR_POST_LOGOUT_REDIRECT_URL": "",
            "AUTHGEAR_WEBHOOK_SECRET": "",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "EXAMPLE_SQLITE_PATH": str(self.workdir / "unused-site.sqlite3"),
        }
        self._start_redis()
        self._create_database()
        op_log, site_log = self.workdir / "provider.log", self.workdir / "site.log"

        # migrate both at once (independent databases), then seed the provider
        errors: list[BaseException] = []

        def site_migrate() -> None:
            try:
                run_command([python, "manage.py", "migrate", "-v", "0"], site_env, site_log)
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=site_migrate, daemon=True)
        thread.start()
        run_command([*provider, "migrate", "-v", "0"], op_env, op_log)
        seeded = run_command([*provider, "seed_demo", "--users", str(args.users)], op_env, op_log)
        thread.join(COMMAND_TIMEOUT + 10)
        if errors:
            raise errors[0]
        if "soak users" not in seeded:
            raise SetupError(f"seed_demo --users did not create the soak users:\n{seeded}")

        op = Server(
            "provider",
            [*provider, "runserver", f"{HOST}:{self.op_port}", "--noreload"],
            op_env,
            op_log,
            f"{self.op_url}/.well-known/openid-configuration",
        )
        site = Server(
            "site (gunicorn)",
            [
                python,
                "-m",
                "gunicorn",
                "example_project.wsgi:application",
                "--chdir",
                str(ROOT),
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--bind",
                f"{HOST}:{self.site_port}",
                "--timeout",
                str(int(HTTP_TIMEOUT)),
                "--graceful-timeout",
                "5",
                "--keep-alive",
                str(args.keep_alive),
                "--access-logfile",
                "-",
                "--access-logformat",
                'ACCESS %(p)s "%(r)s" %(s)s %(M)sms',
                *_gunicorn_extra_options(),
            ],
            site_env,
            site_log,
            f"{self.site_url}/",
        )
        self.servers = [op, site]
        op.start()
        site.start()
        op.wait_ready()
        site.wait_ready()

    def _start_redis(self) -> None:
        try:
            import redis
        except ImportError as error:
            raise SetupError("the redis package is missing: .venv/bin/pip install redis") from error
        client = redis.Redis(
            host=self.args.redis_host,
            port=self.args.redis_port,
            db=self.args.redis_db,
            socket_timeout=5,
            socket_connect_timeout=3,
        )
        try:
            keys = client.dbsize()
            client.flushdb()  # the DB number is dedicated to this test
        except redis.RedisError as error:
            raise SetupError(f"Redis at {self.redis_url} does not answer: {error}") from error
        self._redis = client
        if keys:
            print(f"flushed {keys} old key(s) from Redis DB {self.args.redis_db}")

    def _create_database(self) -> None:
        try:
            import psycopg
        except ImportError as error:
            raise SetupError(
                "psycopg is missing: .venv/bin/pip install 'psycopg[binary]'"
            ) from error
        try:
            with psycopg.connect(
                self.args.postgres_url, autocommit=True, connect_timeout=5
            ) as connection:
                connection.execute(f'CREATE DATABASE "{self.database}"')
        except psycopg.Error as error:
            raise SetupError(f"cannot create the PostgreSQL database: {error}") from error
        self._database_created = True

    # while running -----------------------------------------------------------------------

    def provider_stats(self) -> dict[str, Any]:
        response = http_session().get(f"{self.op_url}/_test/stats", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def site_logins(self) -> list[dict[str, Any]]:
        """The site's login rows (with the user's email), read from the soak database."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.database_url, connect_timeout=5, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT a.email, l.refresh_count, l.created_at, l.last_refreshed_at"
                " FROM authgear_django_authgearlogin l"
                " JOIN authgear_django_authgearaccount a ON a.id = l.account_id"
            ).fetchall()
        return list(rows)

    def provider_refresh_tokens(self) -> dict[str, list[tuple[float, float | None]]]:
        """Per user email, (created, revoked) of each refresh token, oldest first.

        With rotation every refresh revokes the token it used and issues a new one with a new
        access token, so this is each login's chain: token 0 from the login, token k from the
        k-th refresh (issued at the refresh's time).
        """
        connection = sqlite3.connect(f"file:{self.op_db}?mode=ro", uri=True, timeout=10)
        try:
            rows = connection.execute(
                "SELECT u.email, r.created, r.revoked FROM oauth2_provider_refreshtoken r"
                " JOIN auth_user u ON u.id = r.user_id ORDER BY r.created, r.id"
            ).fetchall()
        finally:
            connection.close()
        chains: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
        for email, created, revoked in rows:
            chains[email].append(
                (_sqlite_time(created), _sqlite_time(revoked) if revoked else None)
            )
        return chains

    def access_log_by_worker(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        log = self.workdir / "site.log"
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                match = re.match(r"ACCESS <(\d+)> ", line)
                if match:
                    counts[match.group(1)] += 1
        return counts

    def worker_incidents(self) -> list[str]:
        """gunicorn log lines of worker timeouts, crashes or extra boots during the run."""
        incidents, boots = [], 0
        with contextlib.suppress(OSError):
            for line in (self.workdir / "site.log").read_text(errors="replace").splitlines():
                if "Booting worker" in line:
                    boots += 1
                    if boots > self.args.workers:
                        incidents.append(line)
                elif re.search(r"WORKER TIMEOUT|was sent SIG|exited with code|Worker failed", line):
                    incidents.append(line)
        return incidents

    def redis_keys(self) -> int:
        return int(self._redis.dbsize()) if self._redis is not None else 0

    # teardown ----------------------------------------------------------------------------

    def close(self, *, keep: bool) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as error:
                print(f"could not stop {server.name}: {error}", file=sys.stderr)
        if self._database_created:
            try:
                import psycopg

                with psycopg.connect(
                    self.args.postgres_url, autocommit=True, connect_timeout=5
                ) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                self._database_created = False
            except Exception as error:
                print(f"could not drop database {self.database}: {error}", file=sys.stderr)
        if self._redis is not None:
            try:
                self._redis.flushdb()
                self._redis.close()
            except Exception as error:
                print(f"could not flush Redis DB {self.args.redis_db}: {error}", file=sys.stderr)
            self._redis = None
        if keep:
            print(f"logs and provider database kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _sqlite_time(value: str) -> float:
    """Django's SQLite datetimes are naive UTC strings."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


# --- simulated users -------------------------------------------------------------------------


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
                self.add(
                    "server_errors", f"login flow {path}: HTTP {hop.status_code} {_short(hop)}"
                )


_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_NEXT = re.compile(r'name="next" value="([^"]*)"')
_API_STATUS = re.compile(r'id="api-status">(\d+)<')
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def _reset_before_answer(error: requests.ConnectionError) -> bool:
    """The connection was reset or closed before any answer (not a timeout)."""
    if isinstance(error, requests.Timeout):
        return False
    text = str(error)
    return "Connection aborted" in text and (
        "ConnectionResetError" in text or "RemoteDisconnected" in text
    )


def _short(response: requests.Response) -> str:
    match = _TITLE.search(response.text)
    text = match.group(1) if match else response.text[:120]
    return " ".join(html.unescape(text).split())[:160]


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
            csrf, next_value = _CSRF.search(page.text), _NEXT.search(page.text)
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
                f"{_short(done)}",
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
            results.add("server_errors", f"{where}: HTTP {status} {_short(response)}")
        elif status in (301, 302, 303, 307, 308):
            location = response.headers.get("Location", "")
            target = urlsplit(location)
            if target.path.startswith(LOGIN_PATH) or location.startswith(self.op):
                results.add("unexpected_logouts", f"{where}: HTTP {status} to {location}")
                self.logged_out = True
            else:
                results.add("other_redirects", f"{where}: HTTP {status} to {location}")
        elif status == 401:
            results.add("unexpected_logouts", f"{where}: HTTP 401 {_short(response)}")
            self.logged_out = True
        elif status == 200:
            self.check_content(page, response, where)

    def get(self, page: str) -> requests.Response:
        return self.browser.get(f"{self.site}{page}", allow_redirects=False, timeout=HTTP_TIMEOUT)

    def check_content(self, page: str, response: requests.Response, where: str) -> None:
        text, email = response.text, self.record.email
        if page == "/private/":
            if "<h1>Private page</h1>" not in text:
                self.results.add("wrong_content", f"{where}: {_short(response)}")
        elif page == "/welcome/":
            if f"<h1>Welcome {email}</h1>" not in text:
                self.results.add("wrong_content", f"{where}: {_short(response)}")
        else:
            match = _API_STATUS.search(text)
            api_status = match.group(1) if match else "no answer"
            if api_status != "200":
                self.results.add("api_not_ok", f"{where}: API status {api_status}")
            elif f"&quot;email&quot;: &quot;{email}&quot;" not in text:
                self.results.add("wrong_content", f"{where}: API answered for another user")


# --- the run ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1000:.0f} ms"


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_load(
    stack: Stack, args: argparse.Namespace
) -> tuple[Results, list[UserRecord], float, float]:
    results = Results()
    stop = threading.Event()
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    print(f"random seed {seed}")
    started = time.time() + 0.5
    deadline = started + args.duration
    records = [UserRecord(i, EMAIL.format(i)) for i in range(1, args.users + 1)]
    users = [
        SimulatedUser(
            record,
            stack=stack,
            args=args,
            results=results,
            start_at=started + args.ramp_up * n / args.users,
            deadline=deadline,
            stop=stop,
            seed=seed + record.index,
        )
        for n, record in enumerate(records)
    ]
    for user in users:
        user.start()
    try:
        last_report = time.time()
        while any(user.is_alive() for user in users):
            now = time.time()
            if now > deadline + HTTP_TIMEOUT + 15:
                stop.set()
                stuck = [user.name for user in users if user.is_alive()]
                results.add("client_errors", f"users still running long after the end: {stuck}")
                break
            if now - last_report >= 15 and now < deadline:
                with results.lock:
                    served = len(results.latencies)
                print(
                    f"  t={now - started:5.1f} s  requests {served}  "
                    f"logged in {sum(1 for r in records if r.logged_in)}/{args.users}",
                    flush=True,
                )
                last_report = now
            time.sleep(0.2)
    finally:
        stop.set()
        join_deadline = time.monotonic() + HTTP_TIMEOUT + 5
        for user in users:
            user.join(timeout=max(0.0, join_deadline - time.monotonic()))
    return results, records, started, time.time()


@dataclass
class LoginRefreshes:
    email: str
    browsing: float  # seconds from sending the login form to the start of the last request
    provider_refreshes: int  # refresh grants of this login's chain at the provider
    site_refreshes: int | None  # AuthgearLogin.refresh_count
    windows: int  # floor(browsing / (lifetime - leeway)): expiry windows lived through
    intervals: list[float]  # seconds between consecutive refreshes, at the provider
    early: list[str]  # refreshes of a token not yet due


def analyse_refreshes(
    stack: Stack, args: argparse.Namespace, records: list[UserRecord]
) -> tuple[list[LoginRefreshes], float]:
    lifetime = float(args.token_lifetime)
    leeway = min(60.0, lifetime / 2)  # authgear_django.store.refresh_leeway
    window = lifetime - leeway
    chains = stack.provider_refresh_tokens()
    site_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in stack.site_logins():
        site_rows[row["email"]].append(row)
    logins = []
    for record in records:
        if record.login_submitted is None or record.last_request is None:
            continue
        end = record.last_request
        browsing = end - record.login_submitted
        chain = [created for created, _revoked in chains.get(record.email, [])]
        early = []
        for k, (created, replaced) in enumerate(itertools.pairwise(chain)):
            # The site stores each token a moment after the provider issued it, so the site's
            # refresh point (its expiry - leeway, compared exactly under the row lock) is
            # never earlier than this one: a refresh before it is a second one in a window.
            due = created + window
            if replaced < due:
                early.append(f"token {k} replaced {due - replaced:.2f} s before its refresh point")
        rows = site_rows.get(record.email, [])
        # one login per user, unless it was logged out (then the run fails anyway)
        logins.append(
            LoginRefreshes(
                email=record.email,
                browsing=browsing,
                provider_refreshes=max(0, len(chain) - record.logins),
                site_refreshes=sum(row["refresh_count"] for row in rows) if rows else None,
                windows=math.floor(browsing / window),
                intervals=[b - a for a, b in itertools.pairwise(chain)],
                early=early,
            )
        )
    return logins, leeway


def grants(stats: dict[str, Any], grant_type: str) -> tuple[int, int]:
    counts = stats.get("token", {}).get(grant_type, {})
    return int(counts.get("ok", 0)), int(counts.get("error", 0))


def summary(values: list[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    return f"{min(values):.2f}-{max(values):.2f} {unit} (mean {statistics.fmean(values):.2f})"


def report(
    stack: Stack,
    args: argparse.Namespace,
    results: Results,
    records: list[UserRecord],
    started: float,
    ended: float,
    before: dict[str, Any],
    after: dict[str, Any],
) -> bool:
    logins, leeway = analyse_refreshes(stack, args, records)
    window = args.token_lifetime - leeway
    ok_before, error_before = grants(before, "refresh_token")
    ok_after, error_after = grants(after, "refresh_token")
    refresh_ok, refresh_errors = ok_after - ok_before, error_after - error_before
    refresh_calls = refresh_ok + refresh_errors
    code_ok, code_errors = (
        a - b
        for a, b in zip(
            grants(after, "authorization_code"), grants(before, "authorization_code"), strict=True
        )
    )
    windows = sum(login.windows for login in logins)
    per_expiry = refresh_calls / windows if windows else math.nan
    browsing = [login.browsing for login in logins]
    intervals = [value for login in logins for value in login.intervals]
    early = [f"{login.email}: {item}" for login in logins for item in login.early]
    over_bound = [
        f"{login.email}: {login.site_refreshes} refreshes > {login.windows} windows + 1"
        for login in logins
        if max(login.site_refreshes or 0, login.provider_refreshes) > login.windows + 1
    ]
    mismatched = [
        f"{login.email}: site {login.site_refreshes}, provider {login.provider_refreshes}"
        for login in logins
        if login.site_refreshes != login.provider_refreshes
    ]
    logged_in = sum(1 for record in records if record.logged_in)
    served = len(results.latencies)
    elapsed = ended - started
    by_worker = stack.access_log_by_worker()
    incidents = stack.worker_incidents()
    five_xx = results.status_classes.get("5xx", 0) + results.login_status_classes.get("5xx", 0)
    revocations = sum(after.get("revoke", {}).values()) - sum(before.get("revoke", {}).values())

    print()
    print("=== soak results ===")
    print(
        f"setup        gunicorn {args.workers} workers x {args.threads} threads; PostgreSQL "
        f"{stack.database}; Redis DB {args.redis_db} ({stack.redis_keys()} keys at the end); "
        f"access tokens {args.token_lifetime} s, leeway min(60 s, {args.token_lifetime} s / 2) = "
        f"{leeway:g} s, rotation on"
    )
    print(
        f"load         {args.users} users for {elapsed:.0f} s (ramp-up {args.ramp_up:.0f} s), "
        f"think 0-{args.think_max * 1000:.0f} ms, {results.bursts} bursts of {args.burst} "
        f"pages at once"
    )
    print(
        f"logins       {logged_in}/{args.users} ({code_ok} code exchanges ok, {code_errors} "
        f"failed); responses "
        + ", ".join(f"{k} {v}" for k, v in sorted(results.login_status_classes.items()))
        + f"; login flow p50 {ms(percentile(results.login_durations, 0.5))}, "
        f"p95 {ms(percentile(results.login_durations, 0.95))}"
    )
    print(
        f"requests     {served} pages served ({served / elapsed:.1f}/s): "
        + ", ".join(f"{key} {value}" for key, value in sorted(results.status_classes.items()))
        + f"; {len(results.no_response)} without an answer; "
        f"{results.connection_retries} connection resets retried once"
    )
    if by_worker:
        print(
            "workers      requests per gunicorn worker (access log, logins included): "
            + ", ".join(str(count) for _pid, count in by_worker.most_common())
            + f"; worker timeouts/restarts: {len(incidents)}"
        )
    print(
        f"latency      p50 {ms(percentile(results.latencies, 0.5))}, "
        f"p95 {ms(percentile(results.latencies, 0.95))}, "
        f"p99 {ms(percentile(results.latencies, 0.99))}, "
        f"max {ms(max(results.latencies, default=math.nan))}"
    )
    for page in PAGES:
        values = results.latencies_by_page.get(page, [])
        print(
            f"             {page:<11} {len(values):5d} pages, p50 {ms(percentile(values, 0.5))},"
            f" p95 {ms(percentile(values, 0.95))}"
        )
    print(
        f"unexpected logouts {len(results.unexpected_logouts)}; wrong user/content "
        f"{len(results.wrong_content)}; /call-api/ answers other than 200 "
        f"{len(results.api_not_ok)}"
    )
    print(
        f"refreshes    {refresh_calls} refresh_token calls at the provider ({refresh_ok} ok, "
        f"{refresh_errors} failed); site refresh_count total "
        f"{sum(login.site_refreshes or 0 for login in logins)}; revocations {revocations}"
    )
    print(f"             time between two refreshes of a login: {summary(intervals)}")
    print(
        f"per expiry   {per_expiry:.3f} refreshes per login per expiry = {refresh_calls} refresh "
        f"calls / {windows} expiry windows\n"
        f"             expiry windows = sum over logins of floor(T / (lifetime - leeway)) = "
        f"floor(T / {window:g} s),\n"
        f"             T = a login's browsing time, from sending the login form to its last "
        f"request: {summary(browsing)}.\n"
        f"             A token is refreshed at the first request after its expiry - leeway, so "
        f"windows last a\n"
        f"             little over {window:g} s and a correct site scores a little under 1."
    )
    print(
        f"per login    refreshes <= its windows + 1: {len(logins) - len(over_bound)}/{len(logins)};"
        f" site refresh_count = provider's count: {len(logins) - len(mismatched)}/{len(logins)}\n"
        f"             refreshes that replaced a token which had reached expiry - leeway (from the"
        f" provider's\n"
        f"             token records; an early one would be a second refresh in one window): "
        f"{len(intervals) - len(early)}/{len(intervals)}"
    )

    goals = [
        ("every user logged in", logged_in == args.users and not results.failed_logins),
        ("5xx responses = 0", five_xx == 0),
        ("requests without an answer = 0", not results.no_response),
        ("no gunicorn worker timeout or restart", not incidents),
        ("unexpected logouts = 0", not results.unexpected_logouts),
        ("every page showed its own user", not results.wrong_content),
        ("/call-api/: the API accepted the token", not results.api_not_ok),
        ("refresh calls refused by the provider = 0", refresh_errors == 0),
        ("refreshes per login per expiry <= 1", not per_expiry > 1),
        ("no second refresh in an expiry window (none before its token was due)", not early),
        ("per login: refreshes <= windows elapsed + 1", not over_bound),
        ("site and provider refresh counts agree", not mismatched),
        ("no error in the soak script", not results.client_errors),
    ]
    print()
    for name, met in goals:
        print(f"{'ok  ' if met else 'FAIL'}  {name}")
    for title, items in (
        ("failed logins", results.failed_logins),
        ("5xx", results.server_errors),
        ("no answer", results.no_response),
        ("connection resets retried", results.retried),
        ("gunicorn incidents", incidents),
        ("unexpected logouts", results.unexpected_logouts),
        ("other redirects", results.other_redirects),
        ("wrong content", results.wrong_content),
        ("API not ok", results.api_not_ok),
        ("early refreshes", early),
        ("over the per-login bound", over_bound),
        ("site/provider mismatch", mismatched),
        ("script errors", results.client_errors),
    ):
        if items:
            print(f"\n{title} ({len(items)}), first ones:")
            for item in items[:8]:
                print(f"  {item}")
    return all(met for _name, met in goals)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        print("gunicorn is missing: .venv/bin/pip install gunicorn redis", file=sys.stderr)
        return 2
    stack = Stack(args)
    keep = args.keep
    began = time.monotonic()
    with interrupt_on_sigterm():
        try:
            print(f"starting the provider and the site (workdir {stack.workdir}) ...", flush=True)
            try:
                stack.start()
            except SetupError as error:
                print(f"setup failed: {error}", file=sys.stderr)
                keep = True
                return 2
            print(
                f"provider {stack.op_url}, site {stack.site_url} "
                f"(ready after {time.monotonic() - began:.0f} s); load for {args.duration:.0f} s",
                flush=True,
            )
            before = stack.provider_stats()
            results, records, started, ended = run_load(stack, args)
            after = stack.provider_stats()
            passed = report(stack, args, results, records, started, ended, before, after)
            print(f"\ntotal time {time.monotonic() - began:.0f} s (stopping the servers next)")
            if not passed:
                keep = True
                print("\nSOAK FAILED: a goal was missed (logs are kept, see below)")
                return 1
            print("\nsoak passed")
            return 0
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the servers", file=sys.stderr)
            return 130
        finally:
            stack.close(keep=keep)


if __name__ == "__main__":
    sys.exit(main())

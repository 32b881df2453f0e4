"""The servers of the end-to-end tests: the local provider and the example site, as processes.

A :class:`Stack` is one provider plus one example site wired to it, each on a free loopback
port, with its own databases in a temporary directory (the site on a fresh PostgreSQL database
when one is reachable, for its row locks). The site runs under ``manage.py runserver`` (WSGI)
or, with ``site_server="asgi"``, under uvicorn (``example_project.asgi``). Every wait is
bounded; processes are stopped with terminate, wait, kill.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "authgear-demo"
CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"

STARTUP_TIMEOUT = 30.0  # seconds for a server to answer its first request
COMMAND_TIMEOUT = 120.0  # seconds for migrate / seed_demo
STOP_TIMEOUT = 5.0  # seconds between terminate and kill
ASGI_GRACEFUL_SHUTDOWN = 2  # seconds uvicorn waits for open (keep-alive) connections on stop
HTTP_TIMEOUT = 5.0  # seconds for the tests' own HTTP calls

# Where the site's PostgreSQL databases are created ("" disables PostgreSQL: SQLite only).
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"

# How the example site is served: Django's development server (WSGI) or uvicorn (ASGI).
SITE_SERVERS = ("runserver", "asgi")

# Variables of the parent environment that would change how the servers run.
_CLEARED_PREFIXES = ("LOCAL_OP_", "AUTHGEAR_", "DJANGO_", "EXAMPLE_")
_CLEARED_NAMES = {"DATABASE_URL", "REDIS_URL"}


class ServerError(RuntimeError):
    pass


def http() -> requests.Session:
    """A requests session for the tests' own calls: no proxies from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def free_port() -> int:
    """A free loopback port (the kernel's choice; it stays free until a server takes it)."""
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


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:])


def run_command(name: str, args: list[str], env: dict[str, str], log_path: Path) -> str:
    """Run a management command to completion; its output goes to the log and is returned."""
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
        raise ServerError(f"{name}: {' '.join(args)} took over {COMMAND_TIMEOUT}s") from error
    output = result.stdout + result.stderr
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(args[1:])}\n{output}\n")
    if result.returncode != 0:
        raise ServerError(f"{name}: {' '.join(args)} exited with {result.returncode}:\n{output}")
    return output


@dataclass
class Server:
    """A long-running server process whose output goes to ``log_path``."""

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
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until the server answers any HTTP request (bounded); fail if it exits."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        session = http()
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(
                    f"{self.name} exited with {code} during startup; its log:\n{self.log_tail()}"
                )
            try:
                session.get(self.ready_url, timeout=2, allow_redirects=False)
                return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} did not answer {self.ready_url} within {timeout}s; its log:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Terminate, wait, kill: only this server's own process."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 80) -> str:
        return _tail(self.log_path, lines)


def postgres_admin_url() -> str | None:
    """The URL to create the sites' databases with, if PostgreSQL answers; else None."""
    url = os.environ.get("E2E_POSTGRES_URL", DEFAULT_POSTGRES_URL).strip()
    if not url:
        return None
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.Error:
        return None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _create_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Stack:
    """One local provider and one example site logging in through it."""

    name: str
    workdir: Path
    op_url: str
    site_url: str
    access_token_lifetime: int
    database: str  # "postgresql" or "sqlite"
    op: Server
    site: Server
    demo_sub: str = ""
    site_server: str = "runserver"  # one of SITE_SERVERS
    _postgres: tuple[str, str] | None = None  # (admin URL, database name) to drop
    servers: list[Server] = field(default_factory=list)

    # --- the provider's test hooks (LOCAL_OP_TEST_HOOKS=1) ----------------------------------

    def stats(self) -> dict[str, Any]:
        response = http().get(f"{self.op_url}/_test/stats", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    @staticmethod
    def grants(stats: dict[str, Any], grant_type: str) -> int:
        """Token requests of a grant type, whatever the answer (a failed refresh counts)."""
        counts = stats["token"].get(grant_type, {})
        return int(counts.get("ok", 0)) + int(counts.get("error", 0))

    def refresh_grants(self) -> int:
        return self.grants(self.stats(), "refresh_token")

    def live_access_tokens(self, email: str = DEMO_EMAIL) -> int:
        return int(self.stats()["live_access_tokens"].get(email, 0))

    def wait_until_access_tokens_expire(self, email: str = DEMO_EMAIL) -> None:
        """Poll the provider until none of ``email``'s access tokens is live.

        Logins of earlier tests have stopped refreshing, so this is when the newest token
        (this test's) has expired at the provider; the site's copy of the expiry is set a
        moment after the provider's, so wait a little past it.
        """
        deadline = time.monotonic() + self.access_token_lifetime + 5
        while self.live_access_tokens(email):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{email} still has live access tokens {self.access_token_lifetime + 5}s "
                    "after the last login"
                )
            time.sleep(0.25)
        time.sleep(0.3)

    # --- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        for server in (self.site, self.op):
            server.stop()
        if self._postgres is not None:
            admin_url, database = self._postgres
            self._postgres = None
            _drop_database(admin_url, database)

    def logs(self, lines: int = 80) -> list[tuple[str, str]]:
        return [(f"{self.name} {server.name}", server.log_tail(lines)) for server in self.servers]


def site_command(site_server: str, port: int) -> list[str]:
    """The command that serves the example site on ``port``: ``runserver`` or uvicorn."""
    python = sys.executable
    if site_server == "runserver":
        return [python, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"]
    return [
        python,
        "-m",
        "uvicorn",
        "example_project.asgi:application",
        "--host",
        HOST,
        "--port",
        str(port),
        "--lifespan",
        "off",  # Django does not speak the lifespan protocol
        "--timeout-graceful-shutdown",
        str(ASGI_GRACEFUL_SHUTDOWN),
    ]


def start_stack(
    name: str,
    workdir: Path,
    *,
    access_token_lifetime: int,
    postgres_url: str | None,
    site_server: str = "runserver",
    site_env: Mapping[str, str] | None = None,
) -> Stack:
    """Start a provider and a site for it; the caller must call :meth:`Stack.stop`.

    ``site_server``: ``"runserver"`` (Django's WSGI development server) or ``"asgi"``
    (uvicorn serving ``example_project.asgi:application``). ``site_env``: more environment
    variables for the site (e.g. ``AUTHGEAR_SESSION_CHECK_INTERVAL``); they win over ours.
    """
    if site_server not in SITE_SERVERS:  # before anything starts
        raise ServerError(f"unknown site server {site_server!r}; expected one of {SITE_SERVERS}")
    workdir.mkdir(parents=True, exist_ok=True)
    op_port, site_port = free_port(), free_port()
    op_url, site_url = f"http://{HOST}:{op_port}", f"http://{HOST}:{site_port}"
    python = sys.executable
    provider_command = [python, "-m", "example_project.local_provider"]

    op_env = {
        **base_env(),
        "LOCAL_OP_PORT": str(op_port),
        "LOCAL_OP_ISSUER": op_url,
        "LOCAL_OP_DB": str(workdir / "op.sqlite3"),
        "LOCAL_OP_KEY_FILE": str(workdir / "op_rsa_key.pem"),
        "LOCAL_OP_ACCESS_TOKEN_LIFETIME": str(access_token_lifetime),
        "LOCAL_OP_REDIRECT_URIS": f"{site_url}/auth/callback/",
        "LOCAL_OP_POST_LOGOUT_REDIRECT_URIS": f"{site_url}/auth/logout/return/",
        "LOCAL_OP_TEST_HOOKS": "1",
    }
    site_env = {
        **base_env(),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_DEBUG": "true",
        # One key per stack: nothing written into the repository, nothing shared between stacks.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "AUTHGEAR_ENDPOINT": op_url,
        "AUTHGEAR_CLIENT_ID": CLIENT_ID,
        "AUTHGEAR_CLIENT_SECRET": CLIENT_SECRET,
        # Empty values also win over a developer's .env file (python-dotenv does not override).
        "AUTHGEAR_REDIRECT_URL": "",
        "AUTHGEAR_POST_LOGOUT_REDIRECT_URL": "",
        "REDIS_URL": "",
        "DATABASE_URL": "",
        "EXAMPLE_SQLITE_PATH": str(workdir / "site.sqlite3"),
        # The e2e tests measure refreshes before every expiry (10 s tokens): eager, explicitly
        # (the library's default is lazy); a stack may pass "false" in site_env.
        "AUTHGEAR_EAGER_REFRESH": "true",
        **(site_env or {}),
    }
    postgres: tuple[str, str] | None = None
    if postgres_url:
        database = f"e2e_site_{secrets.token_hex(6)}"
        _create_database(postgres_url, database)
        postgres = (postgres_url, database)
        site_env["DATABASE_URL"] = _with_database(postgres_url, database)

    op = Server(
        "provider",
        [*provider_command, "runserver", f"{HOST}:{op_port}", "--noreload"],
        op_env,
        workdir / "provider.log",
        f"{op_url}/.well-known/openid-configuration",
    )
    site = Server(
        "site",
        site_command(site_server, site_port),
        site_env,
        workdir / "site.log",
        f"{site_url}/",
    )
    stack = Stack(
        name=name,
        workdir=workdir,
        op_url=op_url,
        site_url=site_url,
        access_token_lifetime=access_token_lifetime,
        database="postgresql" if postgres else "sqlite",
        op=op,
        site=site,
        _postgres=postgres,
        site_server=site_server,
        servers=[op, site],
    )
    try:
        run_command("provider", [*provider_command, "migrate", "-v", "0"], op_env, op.log_path)
        seeded = run_command("provider", [*provider_command, "seed_demo"], op_env, op.log_path)
        match = re.search(r"\bsub ([0-9a-f-]{36})\b", seeded)
        if not match:
            raise ServerError(f"seed_demo did not print the demo user's sub:\n{seeded}")
        stack.demo_sub = match.group(1)
        run_command("site", [python, "manage.py", "migrate", "-v", "0"], site_env, site.log_path)
        op.start()
        site.start()
        op.wait_ready()
        site.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


# --- a provider alone, and a server run from another directory (the quickstart test) ----------


@dataclass
class DirectoryServer(Server):
    """A :class:`Server` started in ``cwd`` (a user's project), not in the repository."""

    cwd: Path = ROOT

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )


def run_command_in(
    cwd: Path,
    name: str,
    args: list[str],
    env: dict[str, str],
    log_path: Path,
    timeout: float = COMMAND_TIMEOUT,
) -> str:
    """:func:`run_command` in ``cwd``, as a user types it there; output logged and returned."""
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ServerError(f"{name}: {' '.join(args)} took over {timeout}s") from error
    output = result.stdout + result.stderr
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(args)}\n{output}\n")
    if result.returncode != 0:
        raise ServerError(f"{name}: {' '.join(args)} exited with {result.returncode}:\n{output}")
    return output


@dataclass
class Provider:
    """A local provider started alone, for a site the test builds itself."""

    url: str
    server: Server
    demo_sub: str


def start_provider(
    workdir: Path,
    *,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    access_token_lifetime: int = 300,
) -> Provider:
    """Start a local provider whose demo client accepts exactly these URIs (seed_demo).

    The caller must call ``provider.server.stop()``. Unlike :func:`start_stack`, no example
    site is started: the test serves its own site at the registered URIs. Loopback URIs match
    on any port (django-oauth-toolkit follows RFC 8252), but scheme, host and path must match.
    """
    if not redirect_uris or not post_logout_redirect_uris:
        raise ServerError("start_provider needs redirect and post-logout URIs (seed defaults)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "example_project.local_provider"]
    env = {
        **base_env(),
        "LOCAL_OP_PORT": str(port),
        "LOCAL_OP_ISSUER": url,
        "LOCAL_OP_DB": str(workdir / "op.sqlite3"),
        "LOCAL_OP_KEY_FILE": str(workdir / "op_rsa_key.pem"),
        "LOCAL_OP_ACCESS_TOKEN_LIFETIME": str(access_token_lifetime),
        "LOCAL_OP_REDIRECT_URIS": " ".join(redirect_uris),
        # Not empty: seed_demo would register its default, http://127.0.0.1:8000/auth/logout/
        # return/, which matches this site's return URI on ANY port (RFC 8252 loopback rule).
        "LOCAL_OP_POST_LOGOUT_REDIRECT_URIS": " ".join(post_logout_redirect_uris),
    }
    server = Server(
        "provider",
        [*command, "runserver", f"{HOST}:{port}", "--noreload"],
        env,
        workdir / "provider.log",
        f"{url}/.well-known/openid-configuration",
    )
    try:
        run_command("provider", [*command, "migrate", "-v", "0"], env, server.log_path)
        seeded = run_command("provider", [*command, "seed_demo"], env, server.log_path)
        match = re.search(r"\bsub ([0-9a-f-]{36})\b", seeded)
        if not match:
            raise ServerError(f"seed_demo did not print the demo user's sub:\n{seeded}")
        server.start()
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return Provider(url=url, server=server, demo_sub=match.group(1))

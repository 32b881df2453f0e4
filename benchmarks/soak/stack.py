"""The servers under test and their stores: set up for one run, then removed again.

- the local OpenID provider (``example_project/local_provider``, ``runserver``, one process so
  its ``/_test/stats`` counters see every request), on its own SQLite file in a temporary
  directory, with a short access-token lifetime, refresh-token rotation (always on there), the
  test hooks, fast password/secret hashes and ``seed_demo --users N``;
- the example site under gunicorn with several worker processes and threads, on a fresh
  PostgreSQL database ``soak_<random>`` (row locks: one refresh per login and expiry across
  workers), with Redis as its shared Django cache (a dedicated DB number, flushed before and
  after) and database-backed sessions, after ``manage.py migrate``. ``--break-cache`` leaves
  ``REDIS_URL`` empty instead, so each worker has its own LocMemCache (a deliberate break).

The cache backend and discovery/JWKS cache periods the site really uses are read back from its
settings (:attr:`Stack.site_cache`), for the goal on discovery and JWKS fetches.

:meth:`Stack.close` undoes whatever :meth:`Stack.start` got done, also after an error.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .constants import COMMAND_TIMEOUT, HOST, HTTP_TIMEOUT, ROOT
from .processes import Server, SetupError, base_env, free_port, run_command

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"

# Prints, as JSON, what the site's settings make of its cache (read through authgear_django.conf).
SITE_CACHE_PROBE = (
    "import json; from authgear_django.conf import conf; "
    "print('SITE_CACHE ' + json.dumps({"
    "'backend': conf.CACHES[conf.AUTHGEAR_CACHE_ALIAS].get('BACKEND', ''), "
    "'discovery_ttl': conf.AUTHGEAR_DISCOVERY_CACHE_TTL, "
    "'jwks_ttl': conf.AUTHGEAR_JWKS_CACHE_TTL}))"
)


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
        self.site_log = self.workdir / "site.log"
        self.database = f"soak_{secrets.token_hex(6)}"
        self.database_url = _with_database(args.postgres_url, self.database)
        self.redis_url = f"redis://{HOST}:{args.redis_port}/{args.redis_db}"
        self.servers: list[Server] = []
        self._database_created = False
        self._redis: Any = None
        self.site_cache: dict[str, Any] = {}  # backend, discovery_ttl, jwks_ttl (site settings)
        self.site_started: float | None = None  # wall clock: gunicorn started

    # setup -------------------------------------------------------------------------------

    def _provider_env(self) -> dict[str, str]:
        return {
            **base_env(),
            "LOCAL_OP_PORT": str(self.op_port),
            "LOCAL_OP_ISSUER": self.op_url,
            "LOCAL_OP_DB": str(self.op_db),
            "LOCAL_OP_KEY_FILE": str(self.workdir / "op_rsa_key.pem"),
            "LOCAL_OP_ACCESS_TOKEN_LIFETIME": str(self.args.token_lifetime),
            "LOCAL_OP_REDIRECT_URIS": f"{self.site_url}/auth/callback/",
            "LOCAL_OP_POST_LOGOUT_REDIRECT_URIS": f"{self.site_url}/auth/logout/return/",
            "LOCAL_OP_TEST_HOOKS": "1",
            "LOCAL_OP_FAST_HASHES": "0" if self.args.slow_hashes else "1",
        }

    def _site_env(self) -> dict[str, str]:
        return {
            **base_env(),
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "true" if self.args.debug else "false",
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "AUTHGEAR_ENDPOINT": self.op_url,
            "AUTHGEAR_CLIENT_ID": CLIENT_ID,
            "AUTHGEAR_CLIENT_SECRET": CLIENT_SECRET,
            # empty values also win over a developer's .env (python-dotenv does not override)
            "AUTHGEAR_REDIRECT_URL": "",
            "AUTHGEAR_POST_LOGOUT_REDIRECT_URL": "",
            "AUTHGEAR_WEBHOOK_SECRET": "",
            "DATABASE_URL": self.database_url,
            # --break-cache: empty, so example_project.settings falls back to LocMemCache
            "REDIS_URL": "" if self.args.break_cache else self.redis_url,
            "EXAMPLE_SQLITE_PATH": str(self.workdir / "unused-site.sqlite3"),
        }

    def _gunicorn_args(self) -> list[str]:
        args = self.args
        return [
            sys.executable,
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
        ]

    def start(self) -> None:
        python = sys.executable
        provider = [python, "-m", "example_project.local_provider"]
        op_env, site_env = self._provider_env(), self._site_env()
        self._start_redis()
        self._create_database()
        op_log = self.workdir / "provider.log"

        # migrate both at once (independent databases), then seed the provider
        errors: list[BaseException] = []

        def site_migrate() -> None:
            try:
                run_command([python, "manage.py", "migrate", "-v", "0"], site_env, self.site_log)
                probe = [python, "manage.py", "shell", "-c", SITE_CACHE_PROBE]
                for line in run_command(probe, site_env, self.site_log).splitlines():
                    if line.startswith("SITE_CACHE "):
                        self.site_cache = json.loads(line.removeprefix("SITE_CACHE "))
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=site_migrate, daemon=True)
        thread.start()
        run_command([*provider, "migrate", "-v", "0"], op_env, op_log)
        users = str(self.args.users)
        seeded = run_command([*provider, "seed_demo", "--users", users], op_env, op_log)
        thread.join(COMMAND_TIMEOUT + 10)
        if errors:
            raise errors[0]
        if "soak users" not in seeded:
            raise SetupError(f"seed_demo --users did not create the soak users:\n{seeded}")
        if not self.site_cache:
            raise SetupError("could not read the site's cache settings (see the site log)")

        op = Server(
            "provider",
            [*provider, "runserver", f"{HOST}:{self.op_port}", "--noreload"],
            op_env,
            op_log,
            # not discovery: every discovery and JWKS fetch the provider counts is the site's
            f"{self.op_url}/_test/stats",
        )
        site = Server(
            "site (gunicorn)", self._gunicorn_args(), site_env, self.site_log, f"{self.site_url}/"
        )
        self.servers = [op, site]
        op.start()
        self.site_started = time.time()
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

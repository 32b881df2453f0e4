"""Child processes of the soak test: free ports, a clean environment, one-off commands, servers.

The stack builds on these; they know nothing of Django or the provider. Servers run in their own
process group so that Ctrl-C reaches only the soak script, and stop gracefully, then by force.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from .constants import COMMAND_TIMEOUT, HOST, ROOT

STARTUP_TIMEOUT = 60.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 10.0  # seconds between terminate and kill

# Variables of the parent environment that would change how the servers run.
_CLEARED_PREFIXES = ("LOCAL_OP_", "AUTHGEAR_", "DJANGO_", "EXAMPLE_")
_CLEARED_NAMES = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}


class SetupError(RuntimeError):
    """The stack could not be started (exit status 2)."""


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

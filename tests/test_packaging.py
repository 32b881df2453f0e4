"""Packaging: one version, read back from the installed metadata; the wheel is what the suite
tests under ``scripts/test-wheel``; a hung test fails instead of hanging CI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest

import authgear_django

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(authgear_django.__file__).parent
# Set by scripts/test-wheel, which runs this suite from an unpacked sdist against the wheel.
RUNS_AGAINST_THE_WHEEL = os.environ.get("AUTHGEAR_TEST_INSTALLED") == "1"


def pyproject_version() -> str:
    """``[project] version`` (the only place the version is written); a regex, not tomllib,
    which Python 3.10 lacks."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    project_table = pyproject.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^version = "([^"]+)"$', project_table, re.M)
    assert found, "pyproject.toml has no [project] version"
    return found.group(1)


def test_version_is_the_installed_distributions_which_is_pyprojects() -> None:
    assert authgear_django.__version__ == distribution("authgear-django").version
    assert authgear_django.__version__ == pyproject_version()


def test_the_version_is_written_nowhere_in_the_package() -> None:
    version = pyproject_version()
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text()
        assert f'"{version}"' not in text and f"'{version}'" not in text, source


def test_a_source_tree_that_was_never_installed_still_imports(tmp_path: Path) -> None:
    """Only on sys.path (a checkout, a vendored copy): no metadata, no crash, and a version
    that says it is unknown rather than a stale one."""
    shutil.copytree(PACKAGE, tmp_path / "authgear_django")
    # -S: no site-packages, so no installed metadata; -E: no PYTHONPATH. The working directory
    # (first on sys.path for -c) holds the copy and no *.dist-info / *.egg-info.
    shown = subprocess.run(
        [sys.executable, "-S", "-E", "-c", "import authgear_django as a; print(a.__version__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert shown.stdout.strip() == authgear_django.UNKNOWN_VERSION == "0+unknown"


@pytest.mark.skipif(not RUNS_AGAINST_THE_WHEEL, reason="only under scripts/test-wheel")
def test_the_suite_runs_against_the_installed_wheel_not_the_source() -> None:
    imported_from = Path(authgear_django.__file__)
    assert imported_from.is_relative_to(Path(sys.prefix)), imported_from
    assert "site-packages" in imported_from.parts
    assert not imported_from.is_relative_to(ROOT), imported_from
    # Installed from a wheel file, not an editable install of a checkout.
    installed = json.loads(distribution("authgear-django").read_text("direct_url.json") or "{}")
    assert installed["url"].endswith(".whl"), installed
    assert "dir_info" not in installed, installed


HANGING_TEST = """
import threading

def test_hangs():
    never_set = threading.Event()
    worker = threading.Thread(target=never_set.wait, daemon=True)
    worker.start()
    worker.join()
"""


def test_a_hung_test_fails_instead_of_hanging_the_run(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """pytest-timeout, configured in pyproject: 300 s per test, by SIGALRM so the run carries on
    (a worker thread, as in the e2e and concurrency tests, does not stop it)."""
    assert pytestconfig.getini("timeout") == "300"
    assert pytestconfig.getini("timeout_method") == "signal"
    test_file = tmp_path / "test_hang.py"
    test_file.write_text(HANGING_TEST)
    started = time.monotonic()
    run = subprocess.run(  # noqa: S603  (our own interpreter, a fixed program)
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-o",
            "timeout=1",
            str(test_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Failed: Timeout (>1.0s) from pytest-timeout." in run.stdout, run.stdout
    assert "1 failed" in run.stdout
    assert time.monotonic() - started < 60

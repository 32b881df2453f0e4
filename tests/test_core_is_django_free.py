"""The protocol core imports no Django: it can be reused, and tested, outside a Django project."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE_MODULES = [
    "authgear_django.access_tokens",
    "authgear_django.authorization",
    "authgear_django.capacity",
    "authgear_django.client",
    "authgear_django.crypto",
    "authgear_django.devices",
    "authgear_django.exceptions",
    "authgear_django.logsafe",
    "authgear_django.session_entry",
    "authgear_django.verification",
]

BLOCK_DJANGO = """
import importlib.abc
import sys


class BlockDjango(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith(("django.", "mozilla_django_oidc")):
            raise ImportError(f"the core imported {name}")
        return None


sys.meta_path.insert(0, BlockDjango())
import importlib
importlib.import_module(sys.argv[1])
assert not any(m == "django" or m.startswith("django.") for m in sys.modules), sorted(sys.modules)
print("ok")
"""


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_django(module: str) -> None:
    result = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", BLOCK_DJANGO, module], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_the_guard_catches_a_module_that_imports_django() -> None:
    """The block really blocks: a Django module fails under it."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", BLOCK_DJANGO, "authgear_django.conf"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "the core imported django" in result.stderr

"""authgear-django: log Django users in through Authgear (OpenID Connect).

The version lives in one place, ``pyproject.toml``; ``__version__`` reads it back from the
installed distribution's metadata so that a release never needs a second edit here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION_NAME = "authgear-django"
# PEP 440 "local version" marker for a source tree that was never installed (e.g. only put on
# sys.path): importing must still work, and the value says plainly that the version is unknown.
UNKNOWN_VERSION = "0+unknown"


def _installed_version() -> str:
    """The installed distribution's version, or ``UNKNOWN_VERSION`` when it is not installed."""
    try:
        return version(DISTRIBUTION_NAME)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


__version__ = _installed_version()

__all__ = ["__version__"]

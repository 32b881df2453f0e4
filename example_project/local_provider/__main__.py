"""``python -m example_project.local_provider <command>``: manage.py for the local provider.

It always uses ``example_project.local_provider.settings`` (even when the shell exports
``DJANGO_SETTINGS_MODULE`` for the example site). ``runserver`` without an address listens
on ``127.0.0.1:$LOCAL_OP_PORT`` (default 9000); with an explicit ``host:port`` and no
``LOCAL_OP_PORT`` in the environment, that port is also used for the issuer URL.
"""

from __future__ import annotations

import os
import sys

SETTINGS_MODULE = "example_project.local_provider.settings"

# runserver options that take a separate value (``--settings X``); anything else that
# starts with "-" is a flag, and the first other argument is the address.
_OPTIONS_WITH_VALUE = {"--settings", "--pythonpath", "-v", "--verbosity"}


def _runserver_address(args: list[str]) -> tuple[int, str | None]:
    """Return (index after which to insert an address, the address given or None)."""
    index = args.index("runserver")
    skip = False
    for arg in args[index + 1 :]:
        if skip:
            skip = False
            continue
        if arg in _OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return index, arg
    return index, None


def _prepare_runserver(argv: list[str]) -> list[str]:
    if len(argv) < 2 or argv[1] != "runserver":
        return argv
    index, address = _runserver_address(argv)
    if address is None:
        port = os.environ.get("LOCAL_OP_PORT", "9000")
        return [*argv[: index + 1], f"127.0.0.1:{port}", *argv[index + 1 :]]
    port = address.rsplit(":", 1)[-1] if ":" in address else address
    if port.isdigit():
        configured = os.environ.get("LOCAL_OP_PORT")
        if configured is None:
            os.environ["LOCAL_OP_PORT"] = port
        elif configured != port and "LOCAL_OP_ISSUER" not in os.environ:
            print(
                f"warning: listening on port {port} but LOCAL_OP_PORT={configured}; the issuer "
                f"will be http://127.0.0.1:{configured}",
                file=sys.stderr,
            )
    return argv


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    from django.core.management import execute_from_command_line

    argv = [f"{sys.executable} -m example_project.local_provider", *sys.argv[1:]]
    execute_from_command_line(_prepare_runserver(argv))


if __name__ == "__main__":
    main()

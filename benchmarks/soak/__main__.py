"""Entry point of ``python -m benchmarks.soak``: set up, load, report, tear down, exit status.

Exit status: 0 every goal met, 1 a goal was missed (see ``report``), 2 the stack could not be
started (gunicorn missing or a :class:`~.processes.SetupError`), 130 interrupted by Ctrl-C or
SIGTERM. The stack is removed in every case; its logs are kept when the run did not pass.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType

from . import probes
from .load import run_load
from .options import parse_args
from .processes import SetupError
from .report import report
from .stack import Stack


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
            before = probes.provider_stats(stack)
            results, records, started, ended = run_load(stack, args)
            after = probes.provider_stats(stack)
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

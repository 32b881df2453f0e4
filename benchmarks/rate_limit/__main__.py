"""Entry point of ``python -m benchmarks.rate_limit``: set up, load, report, tear down.

Exit status: 0 every goal met, 1 a goal was missed, 2 the stack could not be started, 130
interrupted (Ctrl-C or SIGTERM). The stack is removed in every case; its logs are kept when the
run did not pass.
"""

from __future__ import annotations

import importlib.util
import sys
import time

from ..soak.__main__ import interrupt_on_sigterm
from ..soak.processes import SetupError
from .load import RateLimitStack, run_load
from .options import Demand, parse_args
from .report import report

CI_LINE = ".venv/bin/python -m benchmarks.rate_limit --profile ci"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    demand = Demand.of(args)
    print(
        f"eager refresh would make {demand.eager:.0f} token calls/min for {args.users} users "
        f"with {args.token_lifetime} s tokens; the provider allows {demand.limit}/min"
        f"{' (a third)' if args.limit is None else ''}; lazy refresh with a check every "
        f"{args.check_interval} s needs {demand.lazy:.0f}/min (steady state)",
        flush=True,
    )
    if importlib.util.find_spec("gunicorn") is None:
        print("gunicorn is missing: .venv/bin/pip install gunicorn redis", file=sys.stderr)
        return 2
    stack = RateLimitStack(args, limit=demand.limit)
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
            requested = "eager" if args.eager else "lazy"
            print(
                f"site ready after {time.monotonic() - began:.0f} s, refresh mode requested "
                f"{requested}, running {stack.site_mode}; load for {args.duration:.0f} s",
                flush=True,
            )
            results, records, samples, started, ended = run_load(stack, args)
            passed = report(
                args,
                mode=stack.site_mode,
                demand=demand,
                results=results,
                records=records,
                samples=samples,
                started=started,
                ended=ended,
            )
            print(f"\ntotal time {time.monotonic() - began:.0f} s (stopping the servers next)")
            print(f"CI: {CI_LINE}")
            if not passed:
                keep = True
                print("\nRATE-LIMIT TEST FAILED: a goal was missed (logs are kept, see below)")
                return 1
            print("\nrate-limit test passed")
            return 0
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the servers", file=sys.stderr)
            return 130
        finally:
            stack.close(keep=keep)


if __name__ == "__main__":
    sys.exit(main())

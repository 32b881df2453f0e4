"""The load phase: start every simulated user, watch them until the deadline, then stop them.

Logins are spread over the ramp-up so that token expiries are spread too; a progress line is
printed every 15 s, and users still running long after the deadline count as a script error.
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time

from .constants import EMAIL, HTTP_TIMEOUT
from .results import Results, UserRecord
from .stack import Stack
from .users import SimulatedUser


def run_load(
    stack: Stack, args: argparse.Namespace
) -> tuple[Results, list[UserRecord], float, float]:
    """Results, the users' records, and the wall-clock start and end of the load."""
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

"""Benchmark: what authgear_django costs a request, beside plain Django and mozilla-django-oidc.

Run from the repository root (after ``scripts/test --version`` has made ``.venv``):

    .venv/bin/python benchmarks/bench_requests.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_requests.py
    .venv/bin/python benchmarks/bench_requests.py --callgrind 300   # instruction counts

Everything is measured in this one run, against a baseline measured in the same run:

1. Sides: four test clients, each with its own middleware chain and logged-in user, requesting
   the same views in interleaved rounds (every side in turn, in a shuffled order), so machine
   noise falls on all of them alike:

   - ``plain``: a password user (``ModelBackend`` session), Django's middleware only;
   - ``plain twin``: a second identical plain stack: its ratio to ``plain`` is the noise floor;
   - ``authgear_django``: a user logged in through our flow, with ``TokenRefreshMiddleware``;
   - ``mozilla-django-oidc``: a user of ``OIDCAuthenticationBackend`` behind its
     ``SessionRefresh`` middleware, with the session keys that make it consider the login fresh.

   Ratios are req/s relative to ``plain`` (goal for ours: >= 0.99), on a ``login_required``
   view and on a view that never reads ``request.user`` (goal: no query more than plain).
2. ``--callgrind N``: the same sides, one valgrind process each, counting the instructions of
   N requests after a warm-up (deterministic: the figure to decide by on a busy machine).
3. Backend construction, which Django does on every request: ours vs ``ModelBackend`` vs
   mozilla-django-oidc's.
4. Refresh storm (PostgreSQL only): N simultaneous requests with an expired token over K
   processes, for several logins, with rotating refresh tokens — refresh calls per login
   (goal: 1), successes and logouts.

Authgear is the test suite's fake, served over HTTP on loopback.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.backends import ModelBackend  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
    teardown_test_environment,
)
from django.utils import timezone  # noqa: E402

from authgear_django.backends import AuthgearBackend  # noqa: E402
from authgear_django.models import AuthgearLogin  # noqa: E402
from authgear_django.store import SESSION_LOGIN_KEY  # noqa: E402
from tests.bursts import request_burst  # noqa: E402
from tests.conftest import LoginFlow  # noqa: E402
from tests.fake_authgear import FakeAuthgear, FakeUser  # noqa: E402
from tests.fake_authgear_server import serve_fake_authgear  # noqa: E402

OURS = "authgear_django.middleware.TokenRefreshMiddleware"
MOZILLA_MIDDLEWARE = "mozilla_django_oidc.middleware.SessionRefresh"
MOZILLA_BACKEND = "mozilla_django_oidc.auth.OIDCAuthenticationBackend"
PRIVATE = "/private/"  # login_required: reads request.user
PUBLIC = "/"  # never reads request.user
PLAIN, TWIN, AUTHGEAR, MOZILLA = "plain", "plain twin", "authgear_django", "mozilla-django-oidc"
SIDES = (PLAIN, TWIN, AUTHGEAR, MOZILLA)


def build_sides(fake: FakeAuthgear, ours_middleware: str, warm_up: int = 100) -> dict[str, Client]:
    """One logged-in client per side, each with the middleware chain of its stack."""
    plain_middleware = [m for m in settings.MIDDLEWARE if m != OURS]
    where = settings.MIDDLEWARE.index(OURS)
    ours_stack = [*plain_middleware[:where], ours_middleware, *plain_middleware[where:]]
    mozilla_stack = [*plain_middleware[:where], MOZILLA_MIDDLEWARE, *plain_middleware[where:]]
    settings.ROOT_URLCONF = "benchmarks.bench_urls"
    # mozilla's backend and middleware read these when built (its backend: on every request)
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, MOZILLA_BACKEND]
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{fake.endpoint}/oauth2/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{fake.endpoint}/oauth2/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{fake.endpoint}/oauth2/userinfo"
    settings.OIDC_RP_CLIENT_ID = "bench-client"
    settings.OIDC_RP_CLIENT_SECRET = "bench-secret"

    users = get_user_model().objects
    users.create_user("plain", password="bench-password")
    sides: dict[str, Client] = {}
    for name in (PLAIN, TWIN):  # same user, same stack: the pair measures the noise floor
        client = Client()
        with override_settings(MIDDLEWARE=plain_middleware):
            client.get(PUBLIC)  # builds this client's middleware chain
            # logs in through Django's LoginView, as a real password user would
            client.post("/accounts/login/", {"username": "plain", "password": "bench-password"})
        sides[name] = client

    ours = Client()
    with override_settings(MIDDLEWARE=ours_stack):
        ours.get(PUBLIC)
        assert LoginFlow(ours, fake).login(FakeUser()).status_code == 302
    sides[AUTHGEAR] = ours

    mozilla = Client()
    with override_settings(MIDDLEWARE=mozilla_stack):
        mozilla.get(PUBLIC)
    mozilla.force_login(users.create_user("mozilla"), backend=MOZILLA_BACKEND)
    session = mozilla.session
    session["oidc_id_token_expiration"] = time.time() + 86_400  # SessionRefresh: still fresh
    session.save()
    sides[MOZILLA] = mozilla

    for client in sides.values():  # warm-up, and a check of what is measured
        for _ in range(warm_up):
            response = client.get(PRIVATE)
        assert response.status_code == 200, response.status_code
        assert client.get(PUBLIC).status_code == 200
    return sides


def interleaved(sides: dict[str, Client], path: str, requests_per_round: int, rounds: int) -> None:
    """Every side in turn, in a new shuffled order each time; req/s from median latencies."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    round_ratios: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    shuffle = random.Random(2024).shuffle
    clock = time.perf_counter
    gc.disable()  # a collection landing on one side would decide the comparison
    try:
        for _ in range(rounds):
            this_round: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(requests_per_round):
                # shuffled, not rotated: with a fixed cycle one side would always follow the
                # slowest one (cold caches after it) and look slower than its twin
                shuffle(order)
                for name in order:
                    client = sides[name]
                    start = clock()
                    client.get(path)
                    this_round[name].append(clock() - start)
            gc.collect()
            plain_median = statistics.median(this_round[PLAIN])
            for name, latencies in this_round.items():
                round_ratios[name].append(plain_median / statistics.median(latencies))
                times[name] += latencies
    finally:
        gc.enable()
    plain_rate = 1 / statistics.median(times[PLAIN])
    print(f"{path} ({rounds} rounds x {requests_per_round} interleaved requests per side):")
    for name in sides:
        rate = 1 / statistics.median(times[name])
        rounds_text = ", ".join(f"{r:.3f}" for r in round_ratios[name])
        note = ""
        if name == TWIN:
            note = "  <- noise floor"
        elif name == AUTHGEAR:
            note = "  (goal >= 0.99: " + ("ok" if rate / plain_rate >= 0.99 else "BELOW") + ")"
        print(
            f"  {name:20} {rate:7.0f} req/s  {rate / plain_rate:6.3f}x plain{note}"
            f"   rounds: {rounds_text}"
        )


def queries_per_request(sides: dict[str, Client]) -> None:
    print("queries per request (" + ", ".join(sides) + "):")
    for path in (PRIVATE, PUBLIC):
        counts = []
        for client in sides.values():
            with CaptureQueriesContext(connection) as queries:
                client.get(path)
            counts.append(len(queries))
        goal = "ok" if counts[SIDES.index(AUTHGEAR)] <= counts[0] else "MORE THAN PLAIN"
        print(f"  {path:10} {counts}   (ours <= plain: {goal})")


def callgrind_child(client: Client, path: str, requests: int) -> None:
    """Inside valgrind: zero the counters, make the requests, dump (the part ``.1``)."""
    for _ in range(20):
        client.get(path)
    gc.collect()
    gc.disable()
    control = [_tool("callgrind_control"), str(os.getpid())]
    subprocess.run([*control, "--zero"], check=True, capture_output=True)  # noqa: S603
    for _ in range(requests):
        client.get(path)
    subprocess.run([*control, "--dump"], check=True, capture_output=True)  # noqa: S603


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} not found: apt-get install valgrind")
    return path


def callgrind_all(args: argparse.Namespace) -> None:
    """One valgrind process per side; instructions per request, and ratios to plain."""
    results: dict[str, float] = {}
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sides.split(","):
            out = Path(folder) / f"side{SIDES.index(name)}.out"
            command = [
                _tool("valgrind"),
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(Path(__file__).resolve()),
                f"--callgrind={args.callgrind}",
                f"--callgrind-side={name}",
                f"--path={args.path}",
                f"--ours-middleware={args.ours_middleware}",
            ]
            child = subprocess.run(  # noqa: S603 - our own interpreter and arguments
                command, env=env, capture_output=True, text=True, timeout=1800
            )
            if child.returncode:
                raise SystemExit(f"{name} failed under valgrind:\n{child.stderr[-3000:]}")
            dumped = Path(f"{out}.1").read_text()
            total = next(
                int(line.split()[1]) for line in dumped.splitlines() if line.startswith("summary:")
            )
            results[name] = total / args.callgrind
    print(f"callgrind, {args.path}, {args.callgrind} requests per side ({connection.vendor}):")
    for name, instructions in results.items():
        ratio = f"{results[PLAIN] / instructions:6.3f}x plain" if PLAIN in results else ""
        print(f"  {name:20} {instructions:11,.0f} instructions/request  {ratio}")


def backend_construction() -> None:
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    number = 200_000
    ours = min(timeit.repeat(AuthgearBackend, number=number, repeat=5)) / number
    model = min(timeit.repeat(ModelBackend, number=number, repeat=5)) / number
    with override_settings(
        OIDC_OP_TOKEN_ENDPOINT="https://x.test/token",
        OIDC_OP_USER_ENDPOINT="https://x.test/userinfo",
        OIDC_RP_CLIENT_ID="id",
        OIDC_RP_CLIENT_SECRET="secret",
    ):
        mozilla = min(timeit.repeat(OIDCAuthenticationBackend, number=20_000, repeat=5)) / 20_000
    print("backend construction (Django does it on every request):")
    print(
        f"  AuthgearBackend()             {ours * 1e6:6.2f} us ({ours / model:.2f}x ModelBackend)"
    )
    print(f"  ModelBackend()                {model * 1e6:6.2f} us")
    print(f"  mozilla-django-oidc's backend {mozilla * 1e6:6.2f} us ({mozilla / ours:.0f}x ours)")


def refresh_storm(fake: object, logins: int, requests_each: int, processes: int) -> None:
    from tests.fake_authgear import FakeAuthgear

    assert isinstance(fake, FakeAuthgear)
    fake.rotation = True
    fake.refresh_latency = 0.1
    ok = logged_out = other = 0
    calls_per_login = []
    for _ in range(logins):
        flow = LoginFlow(Client(), fake)
        flow.login(FakeUser())
        login = AuthgearLogin.objects.order_by("-created_at").first()
        assert login is not None
        expired = timezone.now() - timedelta(seconds=1)
        AuthgearLogin.objects.filter(pk=login.pk).update(access_token_expires_at=expired)
        session = flow.client.session
        login_id, _, _ = session[SESSION_LOGIN_KEY]
        session[SESSION_LOGIN_KEY] = [login_id, expired.timestamp(), expired.timestamp()]
        session.save()
        cookies = {name: morsel.value for name, morsel in flow.client.cookies.items()}
        before = fake.calls["refresh"]
        outcomes = request_burst(
            cookies,
            path="/private/",
            processes=processes,
            threads_each=max(1, requests_each // processes),
        )
        calls_per_login.append(fake.calls["refresh"] - before)
        for status, _ in outcomes:
            if status == 200:
                ok += 1
            elif status == 302:
                logged_out += 1
            else:
                other += 1
    total = ok + logged_out + other
    per_login = statistics.mean(calls_per_login)
    verdict = "ok" if set(calls_per_login) == {1} else "ABOVE GOAL"
    print(
        f"refresh storm ({logins} logins x {requests_each} simultaneous requests over "
        f"{processes} processes, rotation on):"
    )
    print(
        f"  refresh calls per login  {per_login:.2f}   (goal 1: {verdict}; "
        f"per login: {calls_per_login})"
    )
    print(f"  successes {ok}/{total}, logouts {logged_out}, other {other}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--callgrind",
        type=int,
        default=0,
        metavar="N",
        help="instead of timing: count instructions of N requests per side under valgrind",
    )
    parser.add_argument(
        "--sides", default=",".join(SIDES), help="sides of --callgrind (default: all)"
    )
    parser.add_argument("--callgrind-side", help=argparse.SUPPRESS)  # a valgrind child
    parser.add_argument(
        "--path", default=PRIVATE, help="view of --callgrind (default: %(default)s)"
    )
    parser.add_argument(
        "--ours-middleware",
        default=OURS,
        help="dotted path of the refresh middleware to measure as ours (to compare versions)",
    )
    parser.add_argument("--storm-logins", type=int, default=5)
    parser.add_argument("--storm-requests", type=int, default=20)
    parser.add_argument("--storm-processes", type=int, default=4)
    args = parser.parse_args()

    if args.callgrind and not args.callgrind_side:
        callgrind_all(args)
        return
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with serve_fake_authgear() as fake:
            settings.AUTHGEAR_ENDPOINT = fake.endpoint
            sides = build_sides(fake, args.ours_middleware, 2 if args.callgrind_side else 100)
            if args.callgrind_side:
                callgrind_child(sides[args.callgrind_side], args.path, args.callgrind)
                return
            print(
                f"database: {connection.vendor}; Python {sys.version.split()[0]}; "
                f"Django {django.get_version()}"
            )
            for path in (PRIVATE, PUBLIC):
                interleaved(sides, path, args.requests, args.rounds)
            queries_per_request(sides)
            print(f"refresh calls during the run: {fake.calls['refresh']} (goal: 0)")
            backend_construction()
            if connection.vendor == "postgresql":
                refresh_storm(fake, args.storm_logins, args.storm_requests, args.storm_processes)
            else:
                print("refresh storm: skipped (needs PostgreSQL: set DATABASE_URL)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()

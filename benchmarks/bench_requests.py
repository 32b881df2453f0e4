"""Benchmark: what authgear_django costs a logged-in request, and how many refreshes a storm makes.

Run from the repository root (after ``scripts/test --version`` has made ``.venv``):

    .venv/bin/python benchmarks/bench_requests.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_requests.py

Everything is measured in this one run, against a baseline measured in the same run:

1. Hot path: a ``login_required`` view requested alternately by a user logged in through
   Authgear (our backend + ``TokenRefreshMiddleware``) and by a user logged in with a password
   (``ModelBackend``, no middleware of ours) — throughput ratio (goal >= 0.99) and queries per
   request (goal: equal).
2. Backend construction, which Django does on every request: ours vs ``ModelBackend`` vs
   mozilla-django-oidc's.
3. Refresh storm (PostgreSQL only): N simultaneous requests with an expired token over K
   processes, for several logins, with rotating refresh tokens — refresh calls per login
   (goal: 1), successes and logouts.

Authgear is the test suite's fake, served over HTTP on loopback.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
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
from tests.fake_authgear import FakeUser  # noqa: E402
from tests.fake_authgear_server import serve_fake_authgear  # noqa: E402

OURS = "authgear_django.middleware.TokenRefreshMiddleware"


def hot_path(requests_per_round: int, rounds: int, flow: LoginFlow) -> None:
    ours = flow.client
    plain_middleware = [m for m in settings.MIDDLEWARE if m != OURS]
    get_user_model().objects.create_user("plain", password="bench-password")
    plain = Client()
    with override_settings(MIDDLEWARE=plain_middleware):
        plain.get("/")  # builds this client's middleware chain without ours
        # logs in through Django's LoginView, as a real password user would
        plain.post("/accounts/login/", {"username": "plain", "password": "bench-password"})

    plain_twin = Client()  # same user and stack as ``plain``: measures the noise floor
    with override_settings(MIDDLEWARE=plain_middleware):
        plain_twin.get("/")  # builds this client's middleware chain without ours
        # logs in through Django's LoginView, as a real password user would
        plain_twin.post("/accounts/login/", {"username": "plain", "password": "bench-password"})

    for client in (ours, plain, plain_twin):  # warm-up, and a sanity check of what is measured
        for _ in range(200):
            response = client.get("/private/")
        assert response.status_code == 200, response.status_code

    ours_times: list[float] = []
    plain_times: list[float] = []
    ratios = []
    twin_a: list[float] = []
    twin_b: list[float] = []
    gc.disable()  # a collection landing on one side would decide the comparison
    try:
        for round_number in range(rounds):
            first, second = (ours, plain) if round_number % 2 == 0 else (plain, ours)
            round_ours: list[float] = []
            round_plain: list[float] = []
            for _ in range(requests_per_round // 4):  # plain vs plain, same conditions
                start = time.perf_counter()
                plain.get("/private/")
                middle = time.perf_counter()
                plain_twin.get("/private/")
                end = time.perf_counter()
                twin_a.append(middle - start)
                twin_b.append(end - middle)
            for _ in range(requests_per_round):
                start = time.perf_counter()
                first.get("/private/")
                middle = time.perf_counter()
                second.get("/private/")
                end = time.perf_counter()
                a, b = middle - start, end - middle
                round_ours.append(a if first is ours else b)
                round_plain.append(b if first is ours else a)
            gc.collect()
            ratios.append(statistics.median(round_plain) / statistics.median(round_ours))
            ours_times += round_ours
            plain_times += round_plain
    finally:
        gc.enable()
    ours_rate = 1 / statistics.median(ours_times)
    plain_rate = 1 / statistics.median(plain_times)

    with CaptureQueriesContext(connection) as ours_queries:
        ours.get("/private/")
    with CaptureQueriesContext(connection) as plain_queries:
        plain.get("/private/")

    ratio = ours_rate / plain_rate
    print(
        f"hot path ({rounds} rounds x {requests_per_round} alternating requests; "
        "rates from median latencies):"
    )
    print(f"  authgear_django   {ours_rate:8.0f} req/s")
    print(f"  plain Django      {plain_rate:8.0f} req/s")
    verdict = "ok" if ratio >= 0.99 else "BELOW GOAL"
    print(
        f"  throughput ratio  {ratio:8.3f}   (goal >= 0.99: {verdict}; rounds: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + ")"
    )
    noise = statistics.median(twin_a) / statistics.median(twin_b)
    print(
        f"  noise floor       {noise:8.3f}   (plain vs plain, same run: how far from 1.000 "
        "measurement alone moves a ratio)"
    )
    equal = "ok" if len(ours_queries) == len(plain_queries) else "NOT EQUAL"
    print(
        f"  queries/request   {len(ours_queries)} vs {len(plain_queries)}   (goal: equal: {equal})"
    )
    print(f"  refresh calls during the hot path: {flow.fake.calls['refresh']} (goal: 0)")


def middleware_overhead(flow: LoginFlow) -> None:
    """The middleware alone on a logged-in request whose session is loaded: its hot-path cost."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from authgear_django.middleware import TokenRefreshMiddleware

    engine = __import__(settings.SESSION_ENGINE, fromlist=["SessionStore"])
    request = RequestFactory().get("/private/")
    request.session = engine.SessionStore(flow.client.session.session_key)
    request.session.load()
    response = HttpResponse()
    bare = lambda request: response  # noqa: E731
    middleware = TokenRefreshMiddleware(bare)
    number = 200_000
    with_ours = min(timeit.repeat(lambda: middleware(request), number=number, repeat=5)) / number
    without = min(timeit.repeat(lambda: bare(request), number=number, repeat=5)) / number
    print(
        f"TokenRefreshMiddleware hot path: {(with_ours - without) * 1e6:.2f} us per request "
        f"(no query, no network call)"
    )


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
    parser.add_argument("--requests", type=int, default=3000, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--storm-logins", type=int, default=5)
    parser.add_argument("--storm-requests", type=int, default=20)
    parser.add_argument("--storm-processes", type=int, default=4)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with serve_fake_authgear() as fake:
            settings.AUTHGEAR_ENDPOINT = fake.endpoint
            flow = LoginFlow(Client(), fake)
            assert flow.login(FakeUser()).status_code == 302
            print(
                f"database: {connection.vendor}; Python {sys.version.split()[0]}; "
                f"Django {django.get_version()}"
            )
            hot_path(args.requests, args.rounds, flow)
            middleware_overhead(flow)
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

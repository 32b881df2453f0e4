"""Load test of the token-endpoint rate limit: many browsing users, a provider limited to 1/3.

Run from the repository root (with the ``demo`` extra, gunicorn, redis and psycopg installed,
PostgreSQL and Redis on 127.0.0.1, as for ``benchmarks.soak``)::

    .venv/bin/python -m benchmarks.rate_limit --profile ci            # lazy refresh
    .venv/bin/python -m benchmarks.rate_limit --profile ci --eager    # the same load, eager

Signed-in users load a page that needs no access token (``/private/``) every half second, with
10 s access tokens, against the local provider limited (``LOCAL_OP_TOKEN_RATE_LIMIT``) to a
third of the calls eager refresh would make (computed with :mod:`authgear_django.capacity`).
It reuses the soak test's stack (provider, gunicorn site, PostgreSQL, Redis) and simulated
browsers. Modules: ``options`` (command line and the demand model), ``load`` (users and the
sampler of the provider's counters), ``report`` (figures and goals); ``__main__`` ties them
together. Exit status: 0 every goal met, 1 a goal was missed, 2 the stack could not be started,
130 interrupted.
"""

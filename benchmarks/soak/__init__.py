"""Soak test: many users browsing the example site under gunicorn while their tokens expire.

Run from the repository root (with the ``demo`` extra, gunicorn and redis installed):

    .venv/bin/python -m benchmarks.soak [--workers 3 --users 30 --duration 90 --token-lifetime 10]

Everything runs on 127.0.0.1 and is removed at the end (also on Ctrl-C or an error). The
modules, in the order a run uses them: ``options`` (the command line), ``stack`` (provider,
site, PostgreSQL and Redis, on top of ``processes``), ``load`` (the simulated browsers of
``users``, reading ``pages`` and writing into ``results``), ``probes`` (what the servers
recorded), ``analysis`` (refreshes per login and expiry window) and ``report`` (figures and
goals); ``__main__`` ties them together. Exit status: 0 passed, 1 a goal was missed, 2 the
stack could not be started, 130 interrupted.
"""

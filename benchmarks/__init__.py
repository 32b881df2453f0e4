"""Benchmarks and the soak test of authgear-django (a package so that ``-m benchmarks.soak`` runs).

``bench_requests.py`` and ``bench_jwt.py`` are run as scripts; ``soak`` as a module.
"""

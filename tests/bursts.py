"""Simultaneous requests of one browser session, from several processes and threads each."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from django.db import connection, connections
from django.test import Client


def _worker(cookies: dict[str, str], path: str, threads: int, barrier: Any, results: Any) -> None:
    def one() -> None:
        client = Client()
        for name, value in cookies.items():
            client.cookies[name] = value
        barrier.wait(timeout=30)
        try:
            response = client.get(path)
            results.put((response.status_code, response.content.decode(errors="replace")))
        except Exception as exc:  # reported to the parent as a failure, not lost
            results.put((599, repr(exc)))
        finally:
            connection.close()

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def request_burst(
    cookies: dict[str, str], *, path: str, processes: int, threads_each: int
) -> list[tuple[int, str]]:
    """Fork ``processes`` workers that each fire ``threads_each`` requests at the same moment.

    Needs a database every process can reach (PostgreSQL): the children inherit Django's
    settings, test database name included, and open their own connections.
    """
    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes * threads_each)
    results = context.Queue()
    children = [
        context.Process(target=_worker, args=(cookies, path, threads_each, barrier, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in range(processes * threads_each)]
    for child in children:
        child.join(timeout=30)
        if child.exitcode != 0:
            raise RuntimeError(f"burst worker exited with {child.exitcode}")
    return outcomes

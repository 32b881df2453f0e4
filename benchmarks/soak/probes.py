"""What the running stack recorded, read back for the report.

The provider's request counters (``/_test/stats``), the site's login rows in the soak database,
the provider's refresh-token records and gunicorn's log. Reading only: nothing here changes the
stack.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any

from .processes import http_session
from .stack import Stack


def provider_stats(stack: Stack) -> dict[str, Any]:
    response = http_session().get(f"{stack.op_url}/_test/stats", timeout=10)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def site_logins(stack: Stack) -> list[dict[str, Any]]:
    """The site's login rows (with the user's email), read from the soak database."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(stack.database_url, connect_timeout=5, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT a.email, l.refresh_count, l.created_at, l.last_refreshed_at"
            " FROM authgear_django_authgearlogin l"
            " JOIN authgear_django_authgearaccount a ON a.id = l.account_id"
        ).fetchall()
    return list(rows)


def provider_refresh_tokens(stack: Stack) -> dict[str, list[tuple[float, float | None]]]:
    """Per user email, (created, revoked) of each refresh token, oldest first.

    With rotation every refresh revokes the token it used and issues a new one with a new
    access token, so this is each login's chain: token 0 from the login, token k from the
    k-th refresh (issued at the refresh's time).
    """
    connection = sqlite3.connect(f"file:{stack.op_db}?mode=ro", uri=True, timeout=10)
    try:
        rows = connection.execute(
            "SELECT u.email, r.created, r.revoked FROM oauth2_provider_refreshtoken r"
            " JOIN auth_user u ON u.id = r.user_id ORDER BY r.created, r.id"
        ).fetchall()
    finally:
        connection.close()
    chains: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    for email, created, revoked in rows:
        chains[email].append((_sqlite_time(created), _sqlite_time(revoked) if revoked else None))
    return chains


def _sqlite_time(value: str) -> float:
    """Django's SQLite datetimes are naive UTC strings."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def access_log_by_worker(stack: Stack) -> Counter[str]:
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for line in stack.site_log.read_text(errors="replace").splitlines():
            match = re.match(r"ACCESS <(\d+)> ", line)
            if match:
                counts[match.group(1)] += 1
    return counts


def worker_incidents(stack: Stack) -> list[str]:
    """gunicorn log lines of worker timeouts, crashes or extra boots during the run."""
    incidents, boots = [], 0
    with contextlib.suppress(OSError):
        for line in stack.site_log.read_text(errors="replace").splitlines():
            if "Booting worker" in line:
                boots += 1
                if boots > stack.args.workers:
                    incidents.append(line)
            elif re.search(r"WORKER TIMEOUT|was sent SIG|exited with code|Worker failed", line):
                incidents.append(line)
    return incidents

"""Fixtures shared by the management command tests."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture
def row_locks() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite has no row locks")

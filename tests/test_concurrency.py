"""Concurrent first logins of the same Authgear user (two tabs, two devices): one Django user."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from authgear_django.models import AuthgearAccount, AuthgearLogin
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _needs_row_locking_database() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises writers")


def test_simultaneous_first_logins_link_one_user(fake_authgear: FakeAuthgear) -> None:
    parallel = 4
    user = FakeUser(email="race@example.com")
    flows = [LoginFlow(Client(), fake_authgear) for _ in range(parallel)]
    callbacks = [fake_authgear.authorize(flow.start(), user) for flow in flows]
    # Authgear answers userinfo to all callbacks at the same moment, so that every callback
    # then finds no linked account and races to create one.
    barrier = threading.Barrier(parallel, timeout=10)
    fake_authgear.userinfo_tamper = lambda claims: barrier.wait()

    def finish(index: int) -> Any:
        try:
            return flows[index].finish(callbacks[index]).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(parallel) as pool:
        statuses = list(pool.map(finish, range(parallel)))

    assert statuses == [302] * parallel
    assert get_user_model().objects.count() == 1
    assert AuthgearAccount.objects.count() == 1
    assert AuthgearLogin.objects.count() == parallel
    for flow in flows:
        assert flow.client.get("/private/").status_code == 200

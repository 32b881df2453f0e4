"""Fixed facts of the soak setup that several of its modules share.

Kept apart so that the process, stack, user and load modules agree on the repository root, the
loopback address, the time limits and the credentials of the users ``seed_demo`` creates.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: benchmarks/soak/constants.py
HOST = "127.0.0.1"

EMAIL = "soak-{}@example.com"  # seed_demo --users N: i = 1..N
PASSWORD = "authgear-demo"  # seed_demo gives every soak user the demo password

COMMAND_TIMEOUT = 180.0  # seconds for migrate / seed_demo
HTTP_TIMEOUT = 30.0  # seconds for one request of a simulated user (gunicorn's worker timeout)

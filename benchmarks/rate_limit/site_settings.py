"""The example site's settings plus the refresh mode from ``AUTHGEAR_EAGER_REFRESH``.

The rate-limit test runs the same site in both modes; this wrapper reads the mode from the
environment whether or not ``example_project.settings`` does (it did not when this test was
written), so the test does not depend on that file.
"""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403 - the example site, unchanged

AUTHGEAR_EAGER_REFRESH = os.environ.get("AUTHGEAR_EAGER_REFRESH", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}

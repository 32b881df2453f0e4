"""End-to-end tests: the example site and the local provider as real servers, a real browser."""

from __future__ import annotations

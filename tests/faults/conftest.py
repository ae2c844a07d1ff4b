"""Fixtures for the fault matrix: every test fails on an asyncio error log record (a task
destroyed while pending, an exception never retrieved, a callback that raised)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _no_asyncio_errors(no_asyncio_errors: None) -> None:
    """Applies the suite's asyncio log guard to every test here."""

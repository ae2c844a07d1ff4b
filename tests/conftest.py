"""Fixtures shared by the test suite."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.records.append(record)


@pytest.fixture
def no_asyncio_errors() -> Iterator[None]:
    """Fail the test on an asyncio error log record: a task destroyed while pending, an
    exception never retrieved, a callback that raised."""
    handler = _Records()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        gc.collect()  # "never retrieved" / "destroyed but pending" are logged on collection
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in handler.records]
    assert not messages, f"asyncio logged: {messages}"

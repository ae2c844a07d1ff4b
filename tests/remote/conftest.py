"""Fixtures of the remote-worker tests: one SSH server (asyncssh) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from remotekit import Sshd, start_sshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    with start_sshd() as server:
        yield server

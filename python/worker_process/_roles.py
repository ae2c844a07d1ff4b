"""The two roles of the protocol."""

from __future__ import annotations

import enum

__all__ = ["Role"]


class Role(enum.Enum):
    """Which end of the channel a codec serves: the side that spawned (``PARENT``) or the
    spawned process (``WORKER``). Codecs take their *own* side's role."""

    PARENT = "parent"
    WORKER = "worker"

    @property
    def peer(self) -> Role:
        """The other role."""
        return Role.WORKER if self is Role.PARENT else Role.PARENT

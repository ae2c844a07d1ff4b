"""Events a :class:`~worker_process.Decoder` produces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "HandshakeReceived", "MessageReceived", "StreamEnded"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeReceived:
    """The peer's handshake byte arrived and was the right one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """One whole frame arrived.

    Attributes:
        payload: the message, possibly empty.
    """

    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnded:
    """The peer ended its stream at a frame boundary: it will send nothing more."""


Event = HandshakeReceived | MessageReceived | StreamEnded

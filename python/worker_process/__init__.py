"""worker-process: a tiny binary IPC protocol between a parent process and the worker it spawns.

The parent starts a worker with the channel on fd 3 (an AF_UNIX stream socket); after a
one-byte handshake each way (``0x00`` from the parent, ``0x01`` in answer) both sides exchange
frames: a 32-bit big-endian length, then that many payload bytes.

- asyncio parent: ``worker = await create_worker("worker.py")`` (:class:`Worker`)
- asyncio worker: ``conn = await connect()`` (:class:`Connection`)
- blocking API: :mod:`worker_process.sync`
- sans-I/O codec: :class:`Decoder`, :class:`Encoder`

Importing this package imports neither asyncio nor construct (nor typing or dataclasses): the
asyncio API and the event classes are loaded on first use, so a worker using
:mod:`worker_process.sync` starts fast.
"""

from __future__ import annotations

# Imported first: it notes what fd 3 is before this process can make an event loop (whose
# descriptors would take the number 3 if it is free).
from . import _channel_fd  # noqa: F401  # isort: skip
from ._codec import Decoder, DecoderState, Encoder, EncoderState
from ._errors import (
    BrokenResourceError,
    ChannelUnavailableError,
    ClosedResourceError,
    EndOfStream,
    HandshakeByteError,
    HandshakeTimeoutError,
    LocalProtocolError,
    MaxDurationExceededError,
    MessageTooLargeError,
    NoReplyError,
    PayloadTooLargeError,
    PoolError,
    ProtocolError,
    RemoteError,
    RemoteProtocolError,
    ReplyFormatError,
    RequestConflictError,
    RequestTimeoutError,
    TruncatedStreamError,
    WorkerExitError,
    WorkerProcessError,
    WorkerStartError,
)
from ._lazy import lazy_names
from ._roles import Role
from ._wire import HEADER_SIZE, MAX_PAYLOAD, PARENT_HANDSHAKE, WORKER_HANDSHAKE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._events import Event, HandshakeReceived, MessageReceived, StreamEnded
    from ._launch import WorkerOptions
    from ._parent import Worker, create_worker
    from ._pool import Pool, PoolOptions
    from ._replies import decode_reply
    from ._serve import serve
    from ._worker import Connection, connect

__version__ = "0.2.0"

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "PARENT_HANDSHAKE",
    "WORKER_HANDSHAKE",
    "BrokenResourceError",
    "ChannelUnavailableError",
    "ClosedResourceError",
    "Connection",
    "Decoder",
    "DecoderState",
    "Encoder",
    "EncoderState",
    "EndOfStream",
    "Event",
    "HandshakeByteError",
    "HandshakeReceived",
    "HandshakeTimeoutError",
    "LocalProtocolError",
    "MaxDurationExceededError",
    "MessageReceived",
    "MessageTooLargeError",
    "NoReplyError",
    "PayloadTooLargeError",
    "Pool",
    "PoolError",
    "PoolOptions",
    "ProtocolError",
    "RemoteError",
    "RemoteProtocolError",
    "ReplyFormatError",
    "RequestConflictError",
    "RequestTimeoutError",
    "Role",
    "StreamEnded",
    "TruncatedStreamError",
    "Worker",
    "WorkerExitError",
    "WorkerOptions",
    "WorkerProcessError",
    "WorkerStartError",
    "connect",
    "create_worker",
    "decode_reply",
    "serve",
]

_LAZY = {
    "Worker": "._parent",
    "create_worker": "._parent",
    "Connection": "._worker",
    "connect": "._worker",
    "Pool": "._pool",
    "PoolOptions": "._pool",
    "serve": "._serve",
    "decode_reply": "._replies",
    "Event": "._events",
    "HandshakeReceived": "._events",
    "MessageReceived": "._events",
    "StreamEnded": "._events",
    "WorkerOptions": "._launch",
}


__getattr__ = lazy_names(globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The asyncio worker side: :func:`connect` and :class:`Connection`."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import weakref

from ._aio_channel import AsyncChannel
from ._channel_fd import open_channel
from ._checks import check_handshake_timeout
from ._codec import Decoder, Encoder
from ._errors import ClosedResourceError, HandshakeTimeoutError, WorkerProcessError
from ._messages import MessageStream
from ._outcome import report_broken_and_exit
from ._roles import Role
from ._wire import MAX_PAYLOAD

__all__ = ["Connection", "connect", "report_broken_and_exit"]


async def connect(
    *,
    handshake_timeout: float = 60.0,
    max_message_size: int = MAX_PAYLOAD,
    exit_on_broken: bool = True,
) -> Connection:
    """Connect to the parent over fd 3 and complete the handshake.

    Once connected, if the channel breaks (the parent sent bytes that break the protocol, its
    stream was cut inside a frame, or the parent process is gone) the worker writes the error
    to stderr and exits with code 1 at once, as the original library does. Pass
    ``exit_on_broken=False`` to get :class:`BrokenResourceError` from ``send``/``recv``
    instead. A clean end of the parent's stream is not a break: ``recv`` raises
    :class:`EndOfStream` and ``async for`` ends.

    Raises:
        ChannelUnavailableError: fd 3 is not the channel (the process was not started by a
            worker-process parent).
        HandshakeByteError: the parent's first byte was not ``0x00``.
        TruncatedStreamError: the parent closed the channel before its handshake byte.
        HandshakeTimeoutError: no byte within ``handshake_timeout`` seconds.
        ValueError: ``handshake_timeout`` is not a number ``>= 0`` (``math.inf``: no limit),
            or ``max_message_size`` is out of range.
    """
    loop = asyncio.get_running_loop()
    limit = check_handshake_timeout(handshake_timeout)
    decoder = Decoder(Role.WORKER, max_message_size=max_message_size)
    sock = open_channel()
    channel = AsyncChannel(sock, decoder, Encoder(Role.WORKER), loop=loop, hup_is_broken=True)
    channel.start()
    try:
        await asyncio.wait_for(channel.wait_handshake(), limit)
    except (TimeoutError, asyncio.TimeoutError):
        channel.close()
        raise HandshakeTimeoutError(
            f"no handshake byte from the parent within {handshake_timeout} s"
        ) from None
    except BaseException:
        channel.close()
        raise
    channel.write_handshake()
    return Connection(channel, exit_on_broken)


class Connection(MessageStream):
    """The worker's channel to its parent. Create it with :func:`connect`.

    Messages: :meth:`send`, :meth:`recv`, ``async for``, or :attr:`onmessage` with
    :meth:`wait_closed`. End with :meth:`finish` (``async with`` does it on leaving).
    """

    def __init__(self, channel: AsyncChannel, exit_on_broken: bool) -> None:
        """Internal: use ``await connect()``."""
        self._channel = channel
        # The channel's own methods, bound on the instance: one coroutine less per message
        # (MessageStream's methods document them, and stand in for them on the class).
        self.send = channel.send  # type: ignore[method-assign]
        self.recv = channel.inbox.recv  # type: ignore[method-assign]
        if exit_on_broken:
            channel.on_broken = report_broken_and_exit
            # The channel may have broken between the handshake and now (bad bytes in the
            # handshake's own chunk, the parent gone at once), before the hook was set.
            broken = channel.core.read_error or channel.core.write_error
            if broken is not None:
                report_broken_and_exit(broken)
        # A worker that returns without finish() still gets what it queued out (bounded).
        ref = weakref.ref(channel)
        atexit.register(_flush_at_exit, ref)

    async def finish(self) -> None:
        """Send everything queued, then end this side's stream.

        When it returns, every message sent before is in the kernel's hands: the process may
        exit at once (even with ``os._exit``) and the parent still receives everything.
        Idempotent.

        Raises:
            BrokenResourceError: the channel broke first (only with ``exit_on_broken=False``).
        """
        await self._channel.finish()

    async def wait_closed(self) -> None:
        """For callback-style workers: wait until the parent ends its stream and every
        message was handed to :attr:`onmessage`, then :meth:`finish`.

        Raises:
            BrokenResourceError: as :meth:`finish`.
        """
        await self._channel.inbox.wait_read_done()
        with contextlib.suppress(ClosedResourceError):
            await self._channel.finish()

    def close(self) -> None:
        """Close the channel at once, without finishing (unsent messages are dropped)."""
        self._channel.close()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            await self.finish()
        else:
            with contextlib.suppress(WorkerProcessError):
                await self.finish()


def _flush_at_exit(ref: weakref.ReferenceType[AsyncChannel]) -> None:
    channel = ref()
    if channel is not None:
        channel.flush_blocking(timeout=10.0)

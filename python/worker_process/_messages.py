"""The message API that :class:`~worker_process.Worker` and
:class:`~worker_process.Connection` share."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ._aio_channel import AsyncChannel
from ._aio_inbox import MessageHandler
from ._codec import BytesLike
from ._errors import EndOfStream

__all__ = ["MessageStream"]


class MessageStream:
    """Send and receive messages over an :class:`AsyncChannel`."""

    _channel: AsyncChannel

    async def send(self, data: BytesLike) -> None:
        """Send one message (``bytes``, ``bytearray`` or ``memoryview``; may be empty).

        Returns once the frame is queued under a bounded buffer (back-pressure: it waits
        while the peer is not reading). A large ``bytearray``/``memoryview`` is sent without a
        copy; do not change it until ``send`` returns.

        Raises:
            PayloadTooLargeError: longer than 2**32 - 1 bytes.
            ClosedResourceError: this side closed or finished the channel.
            BrokenResourceError: the channel broke (``__cause__`` says how).
        """
        await self._channel.send(data)

    async def recv(self) -> bytes:
        """The next message, in order. Messages that arrived before anyone asked are kept.

        Raises:
            EndOfStream: the peer ended its stream and every message was received.
            BrokenResourceError: the channel broke (``__cause__`` is the
                :class:`~worker_process.ProtocolError` or ``OSError``).
            ClosedResourceError: this side closed the channel.
        """
        return await self._channel.inbox.recv()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._channel.inbox.recv()
        except EndOfStream:
            raise StopAsyncIteration from None

    @property
    def onmessage(self) -> MessageHandler | None:
        """A callable taking each message (``bytes``), as in the original library.

        Setting it delivers, in order, any message that arrived before. If it returns an
        awaitable, that is awaited before the next message is delivered. An exception it
        raises is reported through the event loop's exception handler. Set it to ``None`` to
        go back to ``recv()``.
        """
        return self._channel.inbox.handler

    @onmessage.setter
    def onmessage(self, handler: MessageHandler | None) -> None:
        self._channel.inbox.handler = handler

"""The asyncio transport's read side as its consumers see it: ``recv()`` waiters, the
``onmessage`` handler and ``wait_read_done()`` over a :class:`~._inbox.MessageQueue`, whose
water marks pause and resume reading. A handler gets messages in order; one that returns an
awaitable gets the next message once it is done.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ._core import ChannelCore
from ._inbox import MessageQueue

__all__ = ["Inbox", "MessageHandler"]

MessageHandler = Callable[[bytes], object]


class Inbox:
    """Received messages of one channel. ``pause()`` stops reading the socket, ``resume()``
    starts it again; ``owner`` is named in the loop's exception handler context when a
    handler raises."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        core: ChannelCore,
        *,
        pause: Callable[[], None],
        resume: Callable[[], None],
        owner: object,
    ) -> None:
        self._loop = loop
        self._core = core
        self._pause = pause
        self._resume = resume
        self._owner = owner
        #: The messages waiting, and whether reading is paused for them.
        self.queue = MessageQueue()
        self._recv_waiter: asyncio.Future[None] | None = None
        self._handler: MessageHandler | None = None
        self._dispatching = False
        self._ended_waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        """The read side is done (end, break, close): wake whoever waits."""
        self.wake_reader()
        self.maybe_ended()

    def deliver(self, payloads: list[bytes], *, may_pause: bool = True) -> None:
        """Hand ``payloads`` to the handler or queue them; pause reading over the high water
        mark unless ``may_pause`` is False (what a peer left at its exit is read whole)."""
        handler = self._handler
        if handler is not None and not self.queue and not self._dispatching:
            for index, payload in enumerate(payloads):
                result = self._call_handler(handler, payload)
                if result is not None:
                    self._queue(payloads[index + 1 :])
                    self._dispatch_async(result)
                    break
        else:
            self._queue(payloads)
        if may_pause and self.queue.pause_due():
            self._pause()

    def _queue(self, payloads: list[bytes]) -> None:
        if payloads:
            self.queue.put(payloads)
            self.wake_reader()

    def _call_handler(self, handler: MessageHandler, payload: bytes) -> Awaitable[Any] | None:
        try:
            result = handler(payload)
        except Exception as exc:
            self._report_handler_error(exc)
            return None
        if inspect.isawaitable(result):
            return result
        return None

    def _report_handler_error(self, exc: BaseException) -> None:
        self._loop.call_exception_handler(
            {"message": "onmessage handler raised", "exception": exc, "channel": self._owner}
        )

    def _dispatch_async(self, first: Awaitable[Any]) -> None:
        self._dispatching = True
        self._loop.create_task(self._dispatcher(first))

    async def _dispatcher(self, first: Awaitable[Any]) -> None:
        pending: Awaitable[Any] | None = first
        try:
            while True:
                if pending is not None:
                    try:
                        await pending
                    except Exception as exc:
                        self._report_handler_error(exc)
                handler = self._handler
                if handler is None or not self.queue:
                    return
                payload = self._take()
                pending = self._call_handler(handler, payload)
        finally:
            self._dispatching = False
            self.maybe_ended()

    def _take(self) -> bytes:
        payload = self.queue.take()
        if self.queue.resume_due():
            self._resume()
        return payload

    @property
    def handler(self) -> MessageHandler | None:
        return self._handler

    @handler.setter
    def handler(self, handler: MessageHandler | None) -> None:
        self._handler = handler
        if handler is None or self._dispatching:
            return
        while self.queue and self._handler is handler:
            result = self._call_handler(handler, self._take())
            if result is not None:
                self._dispatch_async(result)
                return
        self.maybe_ended()

    def wake_reader(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None:
            self._recv_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def recv(self) -> bytes:
        """The next message.

        Raises:
            EndOfStream: the peer ended its stream and every message was received.
            BrokenResourceError: the channel broke (``__cause__`` says how).
            ClosedResourceError: this side closed the channel.
        """
        if self.queue:
            return self._take()
        while True:
            if self.queue:
                return self._take()
            err = self._core.recv_error()
            if err is not None:
                raise err
            if self._recv_waiter is not None and not self._recv_waiter.done():
                raise RuntimeError("recv() is already being awaited by another task")
            waiter = self._recv_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                # A cancelled recv() (e.g. under asyncio.wait_for) must not leave its waiter
                # behind: the next recv() would take it for another task's.
                if self._recv_waiter is waiter:
                    self._recv_waiter = None

    def _all_read(self) -> bool:
        # With a handler, "read" means handed to it; without one, queued for recv().
        return (
            self._core.read_done
            and not self._dispatching
            and not (self.queue and self._handler is not None)
        )

    def maybe_ended(self) -> None:
        if self._ended_waiters and self._all_read():
            self.wake_ended()

    def wake_ended(self) -> None:
        waiters, self._ended_waiters = self._ended_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_read_done(self) -> None:
        """Wait until the peer's stream ended and every message was dispatched or queued."""
        while not self._all_read():
            fut = self._loop.create_future()
            self._ended_waiters.append(fut)
            await fut

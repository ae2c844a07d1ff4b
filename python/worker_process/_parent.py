"""The asyncio parent: :func:`create_worker` and :class:`Worker`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import _aio_exit
from ._aio_channel import AsyncChannel
from ._aio_inbox import MessageHandler
from ._checks import check_timeout
from ._codec import Encoder
from ._errors import (
    BrokenResourceError,
    EndOfStream,
    TruncatedStreamError,
    WorkerProcessError,
    WorkerStartError,
)
from ._exit_reason import checked_outcome, record_settings, wants_check
from ._launch import Launched, WorkerOptions, launch
from ._messages import MessageStream
from ._outcome import ExitRules, describe_exit
from ._roles import Role

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Worker", "create_worker"]


async def create_worker(
    file: str | os.PathLike[str], args: Sequence[str] = (), **options: Unpack[WorkerOptions]
) -> Worker:
    """Start a worker and complete the handshake.

    ``file`` runs under this Python interpreter, or under Node.js when it ends in ``.js``,
    ``.mjs`` or ``.cjs``; ``args`` are its arguments. The worker gets the channel on fd 3;
    its stdio is the parent's unless the options say otherwise. The options, their defaults
    and their rules are those of :class:`~worker_process.WorkerOptions` (``is_command``,
    ``node``, ``handshake_timeout``, ``max_duration``, ``cwd``, ``env``, ``stdin``,
    ``stdout``, ``stderr``, ``max_message_size``, ``remote``, ``stderr_tail``, ``check``).
    With ``PIPE``, :attr:`Worker.stdin`/``stdout``/``stderr`` are asyncio streams.

    Raises:
        TypeError: an unknown option.
        ValueError: a time or ``max_message_size`` out of range, or ``remote`` not a valid
            target (nothing was started).
        WorkerStartError: the program could not be started, exited before the handshake
            (``returncode`` says how; through ``remote``, 255 when ssh or the link failed and
            127 when a piece is missing on the remote host), or closed the channel before it
            (killed).
        HandshakeTimeoutError: no handshake byte within ``handshake_timeout``; the worker was
            killed.
        HandshakeByteError: the worker's first byte was wrong (raised at once); the worker was
            killed.
    """
    loop = asyncio.get_running_loop()
    launched = launch(file, args, options, "create_worker")
    worker = Worker(loop, launched)
    if launched.tail is not None:
        _aio_exit.watch_tail(worker, launched.tail)
    await worker._handshake(launched.handshake_timeout)
    return worker


class Worker(MessageStream):
    """A running worker process, seen from its parent. Create it with :func:`create_worker`.

    Use it as ``async with``: leaving the block calls :meth:`close`, which always reaps the
    child. Messages: :meth:`send`, :meth:`recv`, ``async for``, or :attr:`onmessage`.
    """

    #: The worker's process id.
    pid: int
    #: The command line it runs.
    args: list[str]
    #: Resolves to ``None`` when the worker exits with code 0 after everything it sent was
    #: read; fails with :class:`WorkerExitError` (``returncode``/``signal``),
    #: :class:`MaxDurationExceededError`, or :class:`BrokenResourceError` (the worker broke
    #: the protocol and was killed; ``__cause__`` is the protocol error) otherwise.
    lifetime: asyncio.Future[None]
    #: With ``stdin=PIPE``, a writer to the worker's stdin.
    stdin: asyncio.StreamWriter | None
    #: With ``stdout=PIPE`` / ``stderr=PIPE``, readers of the worker's output.
    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    def __init__(self, loop: asyncio.AbstractEventLoop, launched: Launched) -> None:
        """Internal: use ``await create_worker(...)``."""
        self._loop = loop
        child = launched.child
        self.pid = child.pid
        self.args = launched.argv
        self._child = child
        self._returncode: int | None = None
        self._rules = ExitRules(launched.argv, launched.max_duration)
        record_settings(self, launched.check, launched.tail)
        self._deadline: asyncio.TimerHandle | None = None
        self._close_task: asyncio.Task[None] | None = None
        self.lifetime = loop.create_future()
        self._exited: asyncio.Future[int] = loop.create_future()
        self.stdin = self.stdout = self.stderr = None
        self._pipe_transports: list[asyncio.BaseTransport] = []
        self._pidfd = os.pidfd_open(child.pid)
        loop.add_reader(self._pidfd, self._on_exit)
        self._channel = AsyncChannel(
            launched.sock, launched.decoder, Encoder(Role.PARENT), loop=loop
        )
        self._channel.on_broken = self._on_broken
        self._channel.start()
        self._channel.write_handshake()

    # -- start-up ----------------------------------------------------------------------------

    async def _handshake(self, timeout: float | None) -> None:
        try:
            await self._connect_pipes()
            await self._await_handshake(timeout)
        except BaseException:
            await self._abort()
            raise
        limit = self._rules.max_duration
        if limit is not None and self._returncode is None:
            self._deadline = self._loop.call_later(limit, self._on_max_duration)

    async def _await_handshake(self, timeout: float | None) -> None:
        handshake = self._loop.create_task(self._channel.wait_handshake())
        waiting: set[asyncio.Future[object]] = {handshake, self._exited}  # type: ignore[arg-type]
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not handshake.done():
                handshake.cancel()
                with contextlib.suppress(BaseException):
                    await handshake
        if handshake in done:
            exc = handshake.exception()
            if exc is None:
                return
            if isinstance(exc, TruncatedStreamError | BrokenResourceError):
                # The worker closed its end first: report how the process ended, if it did.
                await self._wait_exit(5.0 if timeout is None else min(timeout, 5.0))
                if self._returncode is not None:
                    raise self._rules.exited_before_handshake(self._returncode) from exc
                raise WorkerStartError(
                    f"worker {self.args!r} closed the channel before the handshake; it was"
                    " killed"
                ) from exc
            raise exc
        if self._exited in done:
            # Exited; what it wrote is still readable.
            self._channel.read_available()
            if self._channel.handshake_done:
                return
            assert self._returncode is not None
            raise self._rules.exited_before_handshake(self._returncode)
        assert timeout is not None
        raise self._rules.handshake_timed_out(timeout)

    async def _connect_pipes(self) -> None:
        child, loop = self._child, self._loop
        if child.stdin is not None:
            writer, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, os.fdopen(child.stdin, "wb", buffering=0)
            )
            self.stdin = asyncio.StreamWriter(writer, protocol, None, loop)
            self._pipe_transports.append(writer)
        for fd, name in ((child.stdout, "stdout"), (child.stderr, "stderr")):
            if fd is None:
                continue
            reader = asyncio.StreamReader(loop=loop)

            def protocol_factory(
                reader: asyncio.StreamReader = reader,
            ) -> asyncio.StreamReaderProtocol:
                return asyncio.StreamReaderProtocol(reader)

            transport, _ = await loop.connect_read_pipe(
                protocol_factory, os.fdopen(fd, "rb", buffering=0)
            )
            setattr(self, name, reader)
            self._pipe_transports.append(transport)

    async def _abort(self) -> None:
        """Kill, reap and release everything (a failed start)."""
        self.kill(_signal.SIGKILL)
        await asyncio.shield(self._exited)
        self._release()
        self._retrieve_lifetime()

    # -- the process -------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """The exit status once the worker was reaped (``-N``: killed by signal N)."""
        return self._returncode

    def kill(self, signal: int = _signal.SIGTERM) -> None:
        """Send ``signal`` to the worker (no effect once it was reaped)."""
        if self._returncode is None:
            with contextlib.suppress(ProcessLookupError):
                _signal.pidfd_send_signal(self._pidfd, signal)

    async def wait(self) -> int:
        """Wait for the worker to exit; return its exit status (``-N``: signal N)."""
        return await asyncio.shield(self._exited)

    def _on_exit(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 255 << 8  # reaped by someone else: the status is lost
        if pid == 0:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        returncode = os.waitstatus_to_exitcode(status)
        self._returncode = returncode
        if self._deadline is not None:
            self._deadline.cancel()
        # Everything the worker wrote before exiting is in our receive buffer now.
        self._channel.read_available()
        if self._channel.read_done:
            self._channel.release_after_peer_exit()
        self._exited.set_result(returncode)
        self._settle_lifetime(returncode)

    def _settle_lifetime(self, returncode: int) -> None:
        if self.lifetime.done():
            return
        error = self._rules.outcome(returncode)
        if error is None:
            self.lifetime.set_result(None)
        else:
            self.lifetime.set_exception(error)

    def _on_max_duration(self) -> None:
        self._deadline = None
        if self._returncode is None and self._rules.ran_too_long():
            self.kill(_signal.SIGKILL)

    def _on_broken(self, exc: BaseException) -> None:
        if self._rules.channel_broke(exc):
            self.kill(_signal.SIGKILL)

    async def _wait_exit(self, timeout: float) -> bool:
        if self._returncode is None:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        return self._returncode is not None

    # -- messages: a worker's death explains itself -------------------------------------------

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """As :meth:`Connection.send`. When the channel broke because the worker died, the
        :class:`BrokenResourceError` is also a :class:`WorkerExitError` (``returncode``,
        ``signal``, the kept stderr lines); the exit status is awaited up to 1 s."""
        try:
            await self._channel.send(data)
        except BrokenResourceError as exc:
            error = await _aio_exit.explain(self, exc)
            if error is exc:
                raise
            raise error from error.__cause__

    async def recv(self) -> bytes:
        """As :meth:`Connection.recv`. When the stream ended or broke because the worker
        died, the :class:`EndOfStream`/:class:`BrokenResourceError` is also a
        :class:`WorkerExitError` (``returncode``, ``signal``, the kept stderr lines); the
        exit status is awaited up to 1 s."""
        try:
            return await self._channel.inbox.recv()
        except (EndOfStream, BrokenResourceError) as exc:
            error = await _aio_exit.explain(self, exc)
            if error is exc:
                raise
            raise error from error.__cause__

    # -- requests (spec/requests.md) ---------------------------------------------------------

    @property
    def onmessage(self) -> MessageHandler | None:
        """As :attr:`Connection.onmessage`.

        Raises:
            RequestConflictError: (on setting) requests wait for their replies.
        """
        return self._channel.inbox.handler

    @onmessage.setter
    def onmessage(self, handler: MessageHandler | None) -> None:
        from ._request import check_onmessage

        check_onmessage(self, handler)
        self._channel.inbox.handler = handler

    async def request(
        self, data: bytes | bytearray | memoryview, timeout: float | None = None
    ) -> bytes:
        """Send ``data`` as a request and return the worker's reply to it.

        The worker must answer each message with exactly one message, in order (a
        ``serve()`` worker, or any one-for-one worker); the n-th reply belongs to the n-th
        request. Safe to call concurrently: requests are pipelined and matched in order.
        While requests are pending, the worker's messages are their replies: ``recv()`` and
        setting :attr:`onmessage` raise :class:`RequestConflictError` then (do not iterate
        the worker either). The reply is returned as it is: a ``serve()`` reply
        starts with a status byte (``worker_process.decode_reply`` undoes it; a
        :class:`Pool` does it for you).

        Raises:
            RequestTimeoutError: no reply within ``timeout`` seconds (the request keeps its
                place: its reply, when it comes, is dropped).
            NoReplyError: the worker ended its stream, broke or exited first (with
                ``returncode``/``signal``; ``__cause__`` is a :class:`WorkerExitError`);
                later requests raise it at once.
            RequestConflictError: :attr:`onmessage` is set.
            ClosedResourceError, PayloadTooLargeError: as :meth:`send`.
            ValueError: ``timeout`` is not ``None`` or a positive number (``math.inf``: no
                limit); nothing was sent.
        """
        from ._request import queue_of

        return await queue_of(self).request(data, timeout)

    # -- closing -----------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0, *, check: bool | None = None) -> None:
        """End the worker cleanly, and always reap it.

        Sends everything queued, ends this side's stream (a worker reading with ``async for``
        sees its loop end), and waits up to ``timeout`` seconds for the worker to exit; then
        sends SIGTERM and waits ``timeout`` more; then SIGKILL. Idempotent. With
        ``check=True`` (default: ``create_worker``'s ``check``), raises what :attr:`lifetime`
        fails with; otherwise does not raise for the worker's exit status.

        Raises:
            ValueError: ``timeout`` is not a number ``>= 0`` (``math.inf``: no limit).
            WorkerExitError, MaxDurationExceededError, BrokenResourceError: with ``check``.
        """
        timeout = check_timeout("timeout", timeout)
        if self._close_task is None:
            self._close_task = self._loop.create_task(self._close(timeout))
        await asyncio.shield(self._close_task)
        if wants_check(self, check) and self.lifetime.done() and not self.lifetime.cancelled():
            error = checked_outcome(self, self.lifetime.exception())
            if error is not None:
                raise error

    async def _close(self, timeout: float) -> None:
        try:
            if self._returncode is None:
                start = self._loop.time()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError, WorkerProcessError):
                    await asyncio.wait_for(self._channel.finish(), timeout)
                left = max(0.0, timeout - (self._loop.time() - start))
                if not await self._wait_exit(left):
                    self.kill(_signal.SIGTERM)
                    if not await self._wait_exit(timeout):
                        self.kill(_signal.SIGKILL)
                        await asyncio.shield(self._exited)
        finally:
            if self._returncode is None:  # cancelled: still never leave a child behind
                self.kill(_signal.SIGKILL)
            self._release()
            self._retrieve_lifetime()

    def _release(self) -> None:
        self._channel.close()
        for transport in self._pipe_transports:
            transport.close()
        if self._deadline is not None:
            self._deadline.cancel()

    def _retrieve_lifetime(self) -> None:
        # Whoever closes the worker has the outcome in ``lifetime`` and ``returncode``; an
        # unobserved failure must not also be logged as "never retrieved".
        def mark(fut: asyncio.Future[None]) -> None:
            if not fut.cancelled():
                fut.exception()

        self.lifetime.add_done_callback(mark)

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self.close(check=None if exc_type is None else False)

    def __repr__(self) -> str:
        state = "running" if self._returncode is None else describe_exit(self._returncode)
        return f"<Worker pid={self.pid} {state} args={self.args!r}>"


"""The blocking API: the asyncio API's names and behaviour, without an event loop.

Parent::

    from worker_process.sync import create_worker

    with create_worker("worker.py") as worker:
        worker.send(b"ping")
        print(worker.recv(timeout=5))
    worker.result()  # None, or raises WorkerExitError & co., like ``lifetime``

Worker::

    from worker_process.sync import connect

    with connect() as conn:
        for message in conn:
            conn.send(message)

``send`` may be called from several threads at once; frames never interleave. Importing this
module (and ``connect()``) imports neither asyncio nor construct, so a worker starts fast.
"""

from __future__ import annotations

import _thread
import os
import select
import signal as _signal
from time import monotonic

from ._channel_fd import open_channel_raw
from ._checks import check_handshake_timeout, check_timeout
from ._codec import BytesLike, Decoder, Encoder
from ._errors import (
    BrokenResourceError,
    EndOfStream,
    HandshakeTimeoutError,
    PeerGoneError,
    ProtocolError,
    TruncatedStreamError,
    WorkerProcessError,
)
from ._lazy import lazy_names
from ._outcome import ExitRules, describe_exit, report_broken_and_exit
from ._roles import Role
from ._sync_channel import SyncChannel, poll_ms, suppress, wait_fd
from ._wire import MAX_PAYLOAD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import BinaryIO

    from typing_extensions import Unpack

    from ._launch import Launched, WorkerOptions
    from ._sync_pool import Pool
    from ._sync_serve import serve

__all__ = ["Connection", "Pool", "Worker", "connect", "create_worker", "serve"]

_LAZY = {"Pool": "._sync_pool", "serve": "._sync_serve"}


# The pool (asyncio, threads) and serve load on first use: a worker starts fast.
__getattr__ = lazy_names(globals(), _LAZY)

#: While waiting for a worker to exit, read at most this much of what it sends, so that a
#: worker writing its last messages is not blocked by a parent that does not read them.
WAIT_READ_LIMIT = 1 << 22
_ALL = 1 << 62
_INF = float("inf")


class _MessageStream:
    """``send``, ``recv`` and iteration over a :class:`SyncChannel`."""

    _channel: SyncChannel

    def _bind(self, channel: SyncChannel) -> None:
        self._channel = channel
        # The channel's own methods, bound on the instance: one Python call less per message
        # (the methods below document them, and stand in for them on the class).
        self.send = channel.send  # type: ignore[assignment]
        self.recv = channel.recv  # type: ignore[method-assign]

    def send(self, data: BytesLike) -> None:
        """Send one message (``bytes``, ``bytearray`` or ``memoryview``; may be empty).

        Blocks until the frame is written to the socket (while the peer does not read, the
        socket's buffer fills and ``send`` waits). Thread-safe: frames from several threads
        never interleave. The payload may be changed once ``send`` returns.

        Raises:
            PayloadTooLargeError: longer than 2**32 - 1 bytes.
            ClosedResourceError: this side closed or finished the channel.
            BrokenResourceError: the channel broke (``__cause__`` says how).
        """
        self._channel.send(data)

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message, in order, waiting at most ``timeout`` seconds (``None``: no
        limit). Thread-safe: each message goes to exactly one caller.

        Raises:
            TimeoutError: no whole message arrived within ``timeout`` (nothing is lost: a
                partly received message is kept for the next call).
            EndOfStream: the peer ended its stream and every message was received.
            BrokenResourceError: the channel broke (``__cause__`` is the
                :class:`~worker_process.ProtocolError` or ``OSError``).
            ClosedResourceError: this side closed the channel.
        """
        return self._channel.recv(timeout)

    def __iter__(self) -> _MessageStream:
        return self

    def __next__(self) -> bytes:
        try:
            return self._channel.recv(None)
        except EndOfStream:
            raise StopIteration from None


# --- parent -------------------------------------------------------------------------------------


def create_worker(
    file: str | os.PathLike[str], args: Sequence[str] = (), **options: Unpack[WorkerOptions]
) -> Worker:
    """Start a worker and complete the handshake (blocking).

    The arguments and options are those of the asyncio :func:`worker_process.create_worker`
    (:class:`~worker_process.WorkerOptions`), with the same rules and errors; ``check=True``
    makes :meth:`Worker.close` and ``with`` raise as :meth:`Worker.result`. With
    ``subprocess.PIPE``, :attr:`Worker.stdin` is a binary file to write to and
    :attr:`Worker.stdout`/``stderr`` binary files to read from.

    Raises:
        TypeError: an unknown option.
        ValueError: a time or ``max_message_size`` out of range (nothing was started).
        WorkerStartError: the program could not be started, or exited before the handshake
            (``returncode`` says how).
        HandshakeTimeoutError: no handshake byte within ``handshake_timeout``; the worker was
            killed.
        HandshakeByteError: the worker's first byte was wrong (raised at once); the worker was
            killed.
    """
    from ._exit_reason import watch_tail
    from ._launch import launch  # the parent side only: a worker never imports it

    launched = launch(file, args, options, "create_worker")
    worker = Worker(launched)
    if launched.tail is not None:
        watch_tail(launched.tail)
    worker._handshake(launched.handshake_timeout)
    return worker


class Worker(_MessageStream):
    """A running worker process, seen from its parent. Create it with :func:`create_worker`.

    Use it as ``with``: leaving the block calls :meth:`close`, which always reaps the child.
    Messages: :meth:`send`, :meth:`recv`, ``for message in worker``. The outcome, as the
    asyncio ``lifetime``: :meth:`result` (waits) and :meth:`check` (does not).
    """

    #: The worker's process id.
    pid: int
    #: The command line it runs.
    args: list[str]
    #: With ``stdin=PIPE``, a binary file writing to the worker's stdin.
    stdin: BinaryIO | None
    #: With ``stdout=PIPE`` / ``stderr=PIPE``, binary files reading the worker's output.
    stdout: BinaryIO | None
    stderr: BinaryIO | None

    def __init__(self, launched: Launched) -> None:
        """Internal: use ``create_worker(...)``."""
        from ._exit_reason import explain_calls, record_settings  # the parent side only

        child = launched.child
        self.pid = child.pid
        self.args = launched.argv
        self._returncode: int | None = None
        self._rules = ExitRules(launched.argv, launched.max_duration)  # under _proc_lock
        record_settings(self, launched.check, launched.tail)
        self._outcome: WorkerProcessError | None = None
        self._proc_lock = _thread.allocate_lock()  # returncode, pidfd, kill_reason
        self._close_lock = _thread.RLock()
        self._released = False
        self._duration_lock: _thread.LockType | None = None
        self.stdin = open(child.stdin, "wb") if child.stdin is not None else None  # noqa: SIM115
        self.stdout = open(child.stdout, "rb") if child.stdout is not None else None  # noqa: SIM115
        self.stderr = open(child.stderr, "rb") if child.stderr is not None else None  # noqa: SIM115
        self._pidfd = os.pidfd_open(child.pid)
        self._pidfd_users = 0  # wait() calls polling it: it is closed once none is left
        self._bind(SyncChannel(launched.sock, launched.decoder, Encoder(Role.PARENT)))
        explain_calls(self)  # a death that ends the channel is raised as a WorkerExitError
        self._channel.on_broken = self._on_broken
        with suppress(BrokenResourceError):
            self._channel.write_handshake()

    # -- start-up ----------------------------------------------------------------------------

    def _handshake(self, timeout: float | None) -> None:
        try:
            self._await_handshake(timeout)
        except BaseException:
            self._abort()
            raise
        limit = self._rules.max_duration
        if limit is not None and self._returncode is None:
            lock = _thread.allocate_lock()
            lock.acquire()
            self._duration_lock = lock
            _thread.start_new_thread(self._watch_duration, (lock, limit))

    def _await_handshake(self, timeout: float | None) -> None:
        channel = self._channel
        deadline = monotonic() + (_INF if timeout is None else timeout)
        poller = select.poll()
        poller.register(channel.fd, select.POLLIN)
        poller.register(self._pidfd, select.POLLIN)
        while not channel.handshake_done:
            if channel.read_done:
                self._handshake_failed(channel.read_error, timeout)
            left = deadline - monotonic()
            if left <= 0:
                assert timeout is not None
                raise self._rules.handshake_timed_out(timeout)
            for fd, _ in poller.poll(poll_ms(left)):
                if fd == channel.fd:
                    channel.read_available(_ALL)
                elif self._poll_exit() is not None:  # also reads what it left
                    if channel.handshake_done:
                        return
                    assert self._returncode is not None
                    raise self._rules.exited_before_handshake(self._returncode)

    def _handshake_failed(self, err: BaseException | None, timeout: float | None) -> None:
        if isinstance(err, ProtocolError) and not isinstance(err, TruncatedStreamError):
            raise err
        # The worker closed its end first: report how the process ended, if it did.
        try:
            returncode = self.wait(5.0 if timeout is None else min(timeout, 5.0))
        except TimeoutError:
            if isinstance(err, TruncatedStreamError):
                raise err from None
            raise BrokenResourceError(f"the channel broke: {err}") from err
        raise self._rules.exited_before_handshake(returncode) from err

    def _abort(self) -> None:
        """Kill, reap and release everything (a failed start)."""
        self.kill(_signal.SIGKILL)
        self.wait(None)  # no limit: never a TimeoutError
        self._release()

    def _watch_duration(self, cancelled: _thread.LockType, max_duration: float) -> None:
        if not cancelled.acquire(True, min(max_duration, _thread.TIMEOUT_MAX)):
            self._on_max_duration()

    def _on_max_duration(self) -> None:
        with self._proc_lock:
            kill = self._returncode is None and self._rules.ran_too_long()
        if kill:
            self.kill(_signal.SIGKILL)

    def _on_broken(self, exc: BaseException) -> None:
        with self._proc_lock:
            kill = self._rules.channel_broke(exc)
        if kill:
            self.kill(_signal.SIGKILL)

    # -- the process -------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """The exit status once the worker exited (``-N``: killed by signal N), else None.
        Reading it reaps the worker if it has exited (it never blocks)."""
        return self._poll_exit()

    def kill(self, signal: int = _signal.SIGTERM) -> None:
        """Send ``signal`` to the worker (no effect once it was reaped)."""
        with self._proc_lock:
            if self._returncode is None and self._pidfd >= 0:
                with suppress(ProcessLookupError):
                    _signal.pidfd_send_signal(self._pidfd, signal)

    def _poll_exit(self) -> int | None:
        """Reap the worker if it exited (without blocking); its exit status or None."""
        with self._proc_lock:
            if self._returncode is not None or self._pidfd < 0:
                return self._returncode
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 255 << 8  # reaped by someone else: the status is lost
            if pid == 0:
                return None
            self._returncode = returncode = os.waitstatus_to_exitcode(status)
            if self._duration_lock is not None:
                self._duration_lock.release()
                self._duration_lock = None
            self._drop_pidfd()
        # Everything the worker wrote before exiting is in the receive buffer now: read it,
        # so that a protocol error in it still decides the outcome.
        if not self._released:
            self._channel.read_available(_ALL)
        return returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker to exit; return its exit status (``-N``: signal N).

        While waiting, messages the worker sends are read and kept for :meth:`recv` (up to
        4 MiB), so a worker blocked writing its last messages can still exit.

        Raises:
            TimeoutError: it did not exit within ``timeout`` seconds.
            ValueError: ``timeout`` is not ``None`` or a number ``>= 0`` (``math.inf``: no
                limit).
        """
        if timeout is not None:
            timeout = check_timeout("timeout", timeout)
        with self._proc_lock:
            self._pidfd_users += 1
        try:
            return self._wait(timeout)
        finally:
            with self._proc_lock:
                self._pidfd_users -= 1
                self._drop_pidfd()

    def _wait(self, timeout: float | None) -> int:
        returncode = self._poll_exit()
        if returncode is not None:
            return returncode
        deadline = None if timeout is None else monotonic() + timeout
        channel = self._channel
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)  # open: reaped, it has users (this one)
        reading = not self._released and not channel.read_done
        if reading:
            poller.register(channel.fd, select.POLLIN)
        budget = WAIT_READ_LIMIT
        while True:
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"worker {self.args!r} did not exit within {timeout} s")
            for fd, _ in poller.poll(poll_ms(left)):
                if reading and fd == channel.fd:
                    got = channel.read_available(budget)
                    budget -= max(got, 0)
                    if got < 0 or budget <= 0 or channel.read_done:
                        poller.unregister(channel.fd)
                        reading = False
            returncode = self._poll_exit()
            if returncode is not None:
                return returncode

    def _drop_pidfd(self) -> None:
        # Called with _proc_lock held. Once the exit is collected the pidfd has no use left;
        # it is closed as soon as no wait() polls it (never under a poller's feet).
        if self._returncode is not None and self._pidfd_users == 0 and self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        # A worker dropped without close(): its pidfd must not leak (the process itself is
        # left alone; its exit status goes to whoever reaps it). os.close is bound early:
        # at interpreter exit the module's globals may be gone.
        pidfd = getattr(self, "_pidfd", -1)
        if pidfd >= 0:
            self._pidfd = -1
            _close(pidfd)

    def result(self, timeout: float | None = None) -> None:
        """Wait for the worker to exit, then return None if it exited with code 0, or raise
        what the asyncio API's ``lifetime`` fails with. Messages the worker sent before
        exiting can still be received with :meth:`recv`.

        Raises:
            WorkerExitError: it exited with another code, or was killed by a signal.
            MaxDurationExceededError: it ran longer than ``max_duration`` and was killed.
            BrokenResourceError: it broke the protocol and was killed (``__cause__`` is the
                protocol error).
            TimeoutError: it did not exit within ``timeout`` seconds.
        """
        self._raise_outcome(self.wait(timeout))

    def check(self) -> None:
        """Without waiting: raise as :meth:`result` if the worker already ended badly;
        return None if it is running or exited with code 0.

        Raises:
            WorkerExitError, MaxDurationExceededError, BrokenResourceError: as :meth:`result`.
        """
        returncode = self._poll_exit()
        if returncode is not None:
            self._raise_outcome(returncode)

    def _raise_outcome(self, returncode: int) -> None:
        with self._proc_lock:
            outcome = self._outcome
            if outcome is None:
                outcome = self._outcome = self._rules.outcome(returncode)
        if outcome is not None:
            raise outcome

    # -- requests (spec/requests.md) ---------------------------------------------------------

    def request(self, data: BytesLike, timeout: float | None = None) -> bytes:
        """Send ``data`` as a request and return the worker's reply to it (blocking).

        As the asyncio :meth:`worker_process.Worker.request`: the n-th reply belongs to the
        n-th request; threads may call it at once (requests are pipelined and matched in
        order); ``recv()`` raises :class:`~worker_process.RequestConflictError` while
        requests are pending (do not iterate the worker then either).

        Raises:
            RequestTimeoutError: no reply within ``timeout`` seconds (its reply is dropped).
            NoReplyError: the worker ended its stream, broke or exited first.
            ClosedResourceError, PayloadTooLargeError: as :meth:`send`.
            ValueError: ``timeout`` is not ``None`` or a positive number (``math.inf``: no
                limit); nothing was sent.
        """
        from ._sync_request import queue_of

        return queue_of(self).request(data, timeout)

    # -- closing -----------------------------------------------------------------------------

    def close(self, timeout: float = 5.0, *, check: bool | None = None) -> None:
        """End the worker cleanly, and always reap it.

        Ends this side's stream (a worker reading with ``for`` sees its loop end), and waits
        up to ``timeout`` seconds for the worker to exit; then sends SIGTERM and waits
        ``timeout`` more; then SIGKILL. Idempotent. With ``check=True`` (default:
        ``create_worker``'s ``check``), raises as :meth:`result`; otherwise does not raise
        for the worker's exit status (see :meth:`result`, :attr:`returncode`).

        Raises:
            ValueError: ``timeout`` is not a number ``>= 0`` (``math.inf``: no limit).
            WorkerExitError, MaxDurationExceededError, BrokenResourceError: with ``check``.
        """
        timeout = check_timeout("timeout", timeout)
        self._close(timeout)
        from ._exit_reason import checked_outcome, wants_check

        if wants_check(self, check) and self._returncode is not None:
            try:
                self._raise_outcome(self._returncode)
            except WorkerProcessError as error:
                raise checked_outcome(self, error) or error from error.__cause__

    def _close(self, timeout: float) -> None:
        with self._close_lock:
            if self._released:
                return
            try:
                if self._poll_exit() is None:
                    start = monotonic()
                    with suppress(WorkerProcessError):
                        self._channel.finish(timeout)
                    left = max(0.0, timeout - (monotonic() - start))
                    if not self._exited_within(left):
                        self.kill(_signal.SIGTERM)
                        if not self._exited_within(timeout):
                            self.kill(_signal.SIGKILL)
            finally:
                if self._returncode is None:  # interrupted: still never leave a child behind
                    self.kill(_signal.SIGKILL)
                self.wait(None)  # no limit: never a TimeoutError
                self._release()

    def _exited_within(self, timeout: float) -> bool:
        try:
            self.wait(timeout)
        except TimeoutError:
            return False
        return True

    def _release(self) -> None:
        self._released = True
        self._channel.close()
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        with self._proc_lock:
            if self._duration_lock is not None:
                self._duration_lock.release()
                self._duration_lock = None
            if self._pidfd >= 0:
                os.close(self._pidfd)
                self._pidfd = -1

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close(check=None if exc_type is None else False)

    def __repr__(self) -> str:
        returncode = self._returncode
        state = "running" if returncode is None else describe_exit(returncode)
        return f"<Worker pid={self.pid} {state} args={self.args!r}>"


# --- worker -------------------------------------------------------------------------------------


def _watch_hangup(channel: SyncChannel) -> None:
    """Runs in a thread of its own: waits for the parent's socket to be released (POLLHUP
    with no events asked for: incoming data does not wake it), so that a worker which never
    reads still exits when its parent is gone."""
    poller = select.poll()
    poller.register(channel.fd, 0)
    while True:
        try:
            ready = poller.poll()
        except OSError:
            return
        # Closing or finishing this side (then the parent's half-close) also raises POLLHUP.
        if channel.finished:
            return
        if ready:
            channel.break_with(PeerGoneError("the parent is gone (its end of the channel closed)"))
            return


def connect(
    *,
    handshake_timeout: float = 60.0,
    max_message_size: int = MAX_PAYLOAD,
    exit_on_broken: bool = True,
) -> Connection:
    """Connect to the parent over fd 3 and complete the handshake (blocking).

    The options, the errors and the rule for a broken channel (the worker reports it on
    stderr and exits 1, unless ``exit_on_broken=False``) are those of the asyncio
    :func:`worker_process.connect`; here a thread watches the channel so that a break ends
    the worker even while it is not reading. A clean end of the parent's stream makes
    ``recv`` raise :class:`EndOfStream` and ends ``for`` loops.
    """
    limit = check_handshake_timeout(handshake_timeout)
    decoder = Decoder(Role.WORKER, max_message_size=max_message_size)
    channel = SyncChannel(open_channel_raw(), decoder, Encoder(Role.WORKER), hup_is_broken=True)
    try:
        deadline = monotonic() + (_INF if limit is None else limit)
        while not channel.handshake_done:
            err = channel.read_error
            if isinstance(err, ProtocolError):
                raise err
            if err is not None:
                raise BrokenResourceError(f"the channel broke: {err}") from err
            left = deadline - monotonic()
            if left <= 0:
                raise HandshakeTimeoutError(
                    f"no handshake byte from the parent within {handshake_timeout} s"
                )
            if wait_fd(channel.fd, select.POLLIN, left):
                channel.read_available(_ALL)
        # The parent may be gone already (EPIPE): that is a broken channel, handled as any
        # break once connected (exit 1, or BrokenResourceError from send/recv), not an error
        # of connect().
        with suppress(BrokenResourceError):
            channel.write_handshake()
    except BaseException:
        channel.close()
        raise
    return Connection(channel, exit_on_broken)


class Connection(_MessageStream):
    """The worker's channel to its parent. Create it with :func:`connect`.

    Messages: :meth:`send`, :meth:`recv`, ``for message in conn``. End with :meth:`finish`
    (``with`` does it on leaving).
    """

    def __init__(self, channel: SyncChannel, exit_on_broken: bool) -> None:
        """Internal: use ``connect()``."""
        self._bind(channel)
        if exit_on_broken:
            channel.on_broken = report_broken_and_exit
            # The channel may have broken before the hook was set (bad bytes in the
            # handshake's own chunk, the parent gone before our handshake byte).
            broken = channel.read_error or channel.write_error
            if broken is not None:
                report_broken_and_exit(broken)
            _thread.start_new_thread(_watch_hangup, (channel,))

    def finish(self) -> None:
        """End this side's stream. Every message sent before is in the kernel's hands
        already: the process may exit at once (even with ``os._exit``) and the parent still
        receives everything. Idempotent.

        Raises:
            BrokenResourceError: the channel broke first (only with ``exit_on_broken=False``).
            ClosedResourceError: the channel was closed.
        """
        self._channel.finish()

    def close(self) -> None:
        """Close the channel at once, without finishing."""
        self._channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            with suppress(WorkerProcessError):
                self.finish()

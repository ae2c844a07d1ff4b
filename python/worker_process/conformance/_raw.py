"""The probe's end of a channel: a raw socket driven byte by byte, with deadlines.

Nothing here uses the library's transports or codec: the probe writes exactly the bytes a
scenario asks for (wrong ones included) and parses what comes back itself, so it can misbehave
on purpose and see exactly what the candidate wrote.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from collections.abc import Callable

__all__ = ["Deadline", "Fail", "RawPeer", "frame", "pattern"]

_HEADER = struct.Struct(">I")
_READ_SIZE = 1 << 20


class Fail(Exception):
    """A scenario failed; the message is the one-line reason shown in the report."""


class Deadline:
    """A point in time every wait of a scenario is bounded by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def within(self, seconds: float) -> float:
        """The earlier of ``seconds`` from now and this deadline, as a monotonic time."""
        return min(self.at, time.monotonic() + seconds)


def frame(payload: bytes) -> bytes:
    """One frame: the 4-byte big-endian length, then the payload."""
    return _HEADER.pack(len(payload)) + payload


def pattern(size: int, seed: int) -> bytes:
    """``size`` bytes that differ from any shifted or reordered copy of themselves."""
    import random

    return random.Random(seed).randbytes(size)


def _describe(data: bytes | bytearray, limit: int = 24) -> str:
    if not data:
        return "nothing"
    shown = bytes(data[:limit]).hex(" ")
    more = f" ... ({len(data)} bytes)" if len(data) > limit else f" ({len(data)} bytes)"
    return shown + more


class RawPeer:
    """One end of the channel socket. Reads everything the candidate writes into
    :attr:`inbox` whenever it waits, so that the candidate is never blocked on its writes
    while the probe writes (full duplex)."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.deadline = deadline
        self.inbox = bytearray()
        self.received_total = 0
        self.eof = False
        self.read_error: OSError | None = None
        self.write_error: OSError | None = None
        self._closed = False

    # -- the loop --------------------------------------------------------------------------

    def _pump(self, until: Callable[[], bool], out: memoryview | None, end: float) -> memoryview:
        """Read (and write ``out``) until ``until()`` holds, ``out`` is written and
        ``until()`` holds, or ``end`` passes. Returns what is left of ``out``."""
        if out is None:
            out = memoryview(b"")
        poller = select.poll()
        fd = self.sock.fileno()
        while True:
            if until() and not out:
                return out
            if self._closed:
                return out
            want = 0
            if not self.eof and self.read_error is None:
                want |= select.POLLIN
            if out and self.write_error is None:
                want |= select.POLLOUT
            if not want:
                return out
            left = end - time.monotonic()
            if left <= 0:
                return out
            poller.register(fd, want)
            events = poller.poll(max(1, int(left * 1000)))
            poller.unregister(fd)
            for _, ev in events:
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and want & select.POLLIN:
                    self._read()
                if ev & (select.POLLOUT | select.POLLERR | select.POLLHUP) and out:
                    out = self._write(out)

    def _read(self) -> None:
        try:
            data = self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.read_error = exc
            return
        if not data:
            self.eof = True
            return
        self.inbox += data
        self.received_total += len(data)

    def _write(self, out: memoryview) -> memoryview:
        try:
            n = self.sock.send(out)
        except (BlockingIOError, InterruptedError):
            return out
        except OSError as exc:
            self.write_error = exc
            return memoryview(b"")
        return out[n:]

    # -- writing ---------------------------------------------------------------------------

    def send(self, data: bytes, what: str = "data", *, allow_failure: bool = False) -> bool:
        """Write all of ``data`` (reading meanwhile). Returns False if the candidate closed
        the channel first and ``allow_failure``.

        Raises:
            Fail: the write did not complete in time, or failed and not ``allow_failure``.
        """
        left = self._pump(lambda: True, memoryview(data), self.deadline.at)
        if self.write_error is not None:
            if allow_failure:
                return False
            raise Fail(f"writing {what} failed: {self.write_error.strerror or self.write_error}"
                       f" (the candidate closed the channel?)")
        if left:
            raise Fail(f"timed out writing {what}: {len(left)} of {len(data)} bytes unwritten"
                       " (the candidate stopped reading)")
        return True

    def send_slowly(self, data: bytes, what: str, gap: float = 0.002) -> None:
        """Write ``data`` one byte per write, ``gap`` seconds apart, so that the candidate
        reads it a byte at a time.

        Raises:
            Fail: as :meth:`send`.
        """
        for i in range(len(data)):
            self.send(data[i : i + 1], what)
            self._pump(lambda: False, None, self.deadline.within(gap))

    def shutdown_write(self) -> None:
        """End this side's stream (half-close): the candidate sees a clean end of stream."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if exc.errno not in (errno.ENOTCONN, errno.EPIPE):
                raise

    def close(self) -> None:
        """Release the socket (the candidate sees the channel gone)."""
        if not self._closed:
            self._closed = True
            self.sock.close()

    # -- reading ---------------------------------------------------------------------------

    def wait_for(self, n: int, end: float | None = None) -> bool:
        """Wait until :attr:`inbox` holds ``n`` bytes (or the stream ended, or ``end``)."""
        self._pump(lambda: len(self.inbox) >= n or self.eof, None,
                   self.deadline.at if end is None else end)
        return len(self.inbox) >= n

    def read_exact(self, n: int, what: str) -> bytes:
        """The next ``n`` bytes.

        Raises:
            Fail: they did not arrive before the end of stream or the deadline.
        """
        if not self.wait_for(n):
            got = _describe(self.inbox)
            why = "the stream ended" if self.eof else (
                f"read failed: {self.read_error}" if self.read_error else
                f"no more within {self.deadline.seconds:g} s")
            raise Fail(f"expected {what} ({n} bytes), got {got}; {why}")
        data = bytes(self.inbox[:n])
        del self.inbox[:n]
        return data

    def expect(self, expected: bytes, what: str) -> None:
        """The next bytes must be exactly ``expected``.

        Raises:
            Fail: they differ, or did not arrive in time.
        """
        got = self.read_exact(len(expected), what)
        if got != expected:
            raise Fail(f"expected {what} = {_describe(expected)}, got {_describe(got)}")

    def read_frame(self, what: str) -> bytes:
        """The next frame's payload, parsed here.

        Raises:
            Fail: the frame did not arrive whole in time.
        """
        (length,) = _HEADER.unpack(self.read_exact(4, f"the header of {what}"))
        return self.read_exact(length, f"the {length}-byte payload of {what}")

    def expect_frame(self, payload: bytes, what: str) -> None:
        """The next frame must carry exactly ``payload``.

        Raises:
            Fail: it differs, or did not arrive in time.
        """
        header = self.read_exact(4, f"the header of {what}")
        (length,) = _HEADER.unpack(header)
        if length != len(payload):
            raise Fail(f"{what}: expected a {len(payload)}-byte frame, the header says {length}"
                       f" ({header.hex(' ')}; next bytes {_describe(self.inbox)})")
        got = self.read_exact(length, f"the payload of {what}")
        if got != payload:
            at = next(i for i, (a, b) in enumerate(zip(got, payload, strict=True)) if a != b)
            raise Fail(f"{what}: the {length}-byte payload differs at byte {at}")

    def expect_eof(self, what: str = "the end of stream") -> None:
        """Nothing more may arrive before the end of stream.

        Raises:
            Fail: more bytes came, or no end of stream in time.
        """
        self._pump(lambda: self.eof or bool(self.inbox), None, self.deadline.at)
        if self.inbox:
            raise Fail(f"expected {what}, got more bytes: {_describe(self.inbox)}")
        if not self.eof:
            if self.read_error is not None:
                raise Fail(f"expected {what}, the read failed: {self.read_error}")
            raise Fail(f"expected {what} within {self.deadline.seconds:g} s")

    def drain_until_eof(self, end: float | None = None) -> bool:
        """Read until the end of stream (or ``end``); True if it came."""
        self._pump(lambda: self.eof, None, self.deadline.at if end is None else end)
        return self.eof

    def collect(self, seconds: float) -> bytes:
        """Whatever arrives in the next ``seconds`` (less at the end of stream)."""
        self._pump(lambda: self.eof, None, self.deadline.within(seconds))
        data = bytes(self.inbox)
        self.inbox.clear()
        return data

    def peer_released(self) -> bool:
        """Whether the candidate's socket is gone altogether (POLLHUP), rather than only
        half-closed."""
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLOUT)
        return any(ev & select.POLLHUP for _, ev in poller.poll(0))

"""The relay link: one byte stream (an ssh session's stdin/stdout, ``docker exec -i``...) that
carries a worker's channel between ``relay`` and ``serve``, with the things a byte stream alone
cannot say (spec/protocol.md, "Relays").

``serve`` first writes :data:`MAGIC`; then both directions are records of a 1-byte kind, a
32-bit big-endian length and that many bytes. Sans-I/O: :func:`record` encodes,
:class:`RecordReader` decodes; the loops live in :mod:`._relay` and :mod:`._host`.

Also here: a small poll-driven pump over non-blocking descriptors that both ends share.
"""

from __future__ import annotations

import errno
import os
import select
import struct
from collections import deque
from collections.abc import Callable, Iterator

__all__ = [
    "DATA", "END", "EXIT", "FAILED", "GONE", "KEEPALIVE", "MAGIC", "OUTPUT", "SIGNAL",
    "LinkError", "OutBuffer", "Poller", "RecordReader", "exit_payload", "parse_exit", "record",
]

#: What ``serve`` writes first: the relay knows from it that the remote side runs.
MAGIC = b"worker-process serve 1\n"

# Both directions.
DATA = b"d"       #: channel bytes, passed through unchanged
END = b"e"        #: this side's end of the channel was shut down for writing (a clean end)
KEEPALIVE = b"k"  #: nothing to say; the link is alive
# relay -> serve
GONE = b"g"       #: the parent released its end without finishing
SIGNAL = b"s"     #: deliver signal N (1 byte) to the worker
# serve -> relay
OUTPUT = b"o"     #: bytes the worker wrote on its stdout
EXIT = b"x"       #: the worker exited: its status, a signed 32-bit ``-N`` for signal N
FAILED = b"f"     #: the worker could not be started: a UTF-8 message

_HEADER = struct.Struct(">cI")
HEADER_SIZE = _HEADER.size
#: The longest record either end writes; a longer one means the stream is not a link.
MAX_RECORD = 1 << 24
_KINDS = frozenset((DATA, END, KEEPALIVE, GONE, SIGNAL, OUTPUT, EXIT, FAILED))
_STREAMS = frozenset((DATA, OUTPUT))


#: :meth:`RecordReader.pump`: nothing to read now / the socket to splice into is full.
AGAIN = -1
SINK_FULL = -2
_SPLICE_FLAGS = getattr(os, "SPLICE_F_NONBLOCK", 2) | getattr(os, "SPLICE_F_MOVE", 1)


def can_splice(fd: int) -> bool:
    """Whether ``fd`` is a pipe this system can splice (the fast path of a link)."""
    import stat

    try:
        return hasattr(os, "splice") and stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _queued(fd: int) -> int:
    """Bytes waiting to be read in a socket or pipe (FIONREAD)."""
    import array
    import fcntl
    import termios

    buf = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    except OSError:
        return 0
    return buf[0]


class LinkError(Exception):
    """The link's byte stream is not what ``serve`` and ``relay`` write."""


def record(kind: bytes, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One record: kind, length, payload."""
    return _HEADER.pack(kind, len(payload)) + bytes(payload)


def exit_payload(returncode: int) -> bytes:
    """The payload of an :data:`EXIT` record."""
    return struct.pack(">i", returncode)


def parse_exit(payload: bytes) -> int:
    """The exit status an :data:`EXIT` record carries.

    Raises:
        LinkError: the payload is not 4 bytes.
    """
    if len(payload) != 4:
        raise LinkError(f"an exit record of {len(payload)} bytes")
    value: int = struct.unpack(">i", payload)[0]
    return value


class RecordReader:
    """Splits the bytes of a link into records, at any chunk boundary. With ``magic``, the
    stream must start with it (``serve``'s side of the link).

    The payloads of :data:`DATA` and :data:`OUTPUT` records are streams: they are handed on
    in pieces as they arrive (views of the chunk fed, not copies); the other records' payloads
    whole."""

    def __init__(self, magic: bytes = b"") -> None:
        self._buf = bytearray()  # an incomplete header or control record
        self._magic = magic
        self._kind = b""  # the stream record being passed through
        self._left = 0  # its bytes still to come
        #: How many bytes of the stream were consumed (for error messages).
        self.seen = 0

    @property
    def started(self) -> bool:
        """Whether the magic (if any) has arrived."""
        return not self._magic

    def head(self) -> bytes:
        """The first bytes held (to show what arrived instead of the magic)."""
        return bytes(self._buf[:80])

    def feed(self, data: bytes | memoryview,
             on_record: Callable[[bytes, memoryview], None]) -> None:
        """Consume ``data``; call ``on_record(kind, payload)`` for each record, or each piece
        of a stream record's payload. Payloads may be views of ``data``: a caller that reuses
        its buffer copies what it kept first (:meth:`OutBuffer.own`).

        Raises:
            LinkError: the magic is wrong, or a record has an unknown kind or a length over
                :data:`MAX_RECORD`.
        """
        self.seen += len(data)
        view = memoryview(data)
        if self._magic:
            self._buf += view
            n = min(len(self._buf), len(self._magic))
            if self._buf[:n] != self._magic[:n]:
                raise LinkError(f"the remote side wrote {bytes(self._buf[:80])!r} instead of"
                                " starting `serve`")
            if n < len(self._magic):
                return
            view = memoryview(bytes(self._buf[n:]))
            self._buf.clear()
            self._magic = b""
        pos, end = 0, len(view)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                on_record(self._kind, view[pos : pos + take])
                self._left -= take
                pos += take
                continue
            if self._buf or end - pos < HEADER_SIZE:
                # A header split across chunks (rare): gather it, and a control payload.
                need = HEADER_SIZE - len(self._buf) if len(self._buf) < HEADER_SIZE else 0
                if need:
                    self._buf += view[pos : pos + need]
                    pos += min(need, end - pos)
                    if len(self._buf) < HEADER_SIZE:
                        return
                kind, length = self._check(self._buf)
                if kind in _STREAMS:
                    self._buf.clear()
                    self._kind, self._left = kind, length
                    if not length:
                        on_record(kind, view[pos:pos])
                    continue
                take = min(HEADER_SIZE + length - len(self._buf), end - pos)
                self._buf += view[pos : pos + take]
                pos += take
                if len(self._buf) < HEADER_SIZE + length:
                    return
                payload = memoryview(bytes(self._buf[HEADER_SIZE:]))
                self._buf.clear()
                on_record(kind, payload)
                continue
            kind, length = self._check(view[pos : pos + HEADER_SIZE])
            pos += HEADER_SIZE
            if kind in _STREAMS:
                self._kind, self._left = kind, length
                if not length:
                    on_record(kind, view[pos:pos])
            elif end - pos >= length:
                on_record(kind, view[pos : pos + length])
                pos += length
            else:
                self._buf += _HEADER.pack(kind, length)
                self._buf += view[pos:]
                return

    def _wanted(self) -> int:
        """How many bytes complete the magic, the header or the control record in hand (a
        reader that splices reads no further, so that payloads stay in the pipe)."""
        if self._magic:
            return len(self._magic) - len(self._buf)
        if self._left:
            return self._left
        if len(self._buf) < HEADER_SIZE:
            return HEADER_SIZE - len(self._buf)
        _, length = _HEADER.unpack_from(self._buf)
        return HEADER_SIZE + int(length) - len(self._buf)

    def pump(self, fd: int, scratch: bytearray,
             on_record: Callable[[bytes, memoryview], None],
             splice_to: OutBuffer | None = None) -> int:
        """Read from the link once. With ``splice_to`` (a socket's queue; ``fd`` a pipe), the
        payloads of :data:`DATA` records move from the pipe to the socket inside the kernel
        while nothing is queued for it, and headers are read on their own.

        Returns the bytes consumed; 0 at the end of the link; :data:`AGAIN` when nothing can
        be read now; :data:`SINK_FULL` when the socket must drain first (wait for it to be
        writable).

        Raises:
            LinkError: as :meth:`feed`.
            OSError: reading ``fd`` failed.
        """
        limit = len(scratch)
        if splice_to is not None and not self._magic:
            if self._left and self._kind == DATA and not splice_to and splice_to.error is None:
                try:
                    n = os.splice(fd, splice_to.fd, min(self._left, limit),
                                  flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    return SINK_FULL if _queued(fd) else AGAIN
                except OSError as exc:
                    splice_to.error = exc  # the reader is gone: the bytes are read and dropped
                else:
                    self._left -= n
                    self.seen += n
                    return n
            limit = min(limit, self._wanted())
        try:
            with memoryview(scratch) as view:
                n = os.readv(fd, [view[:limit]])
                if n:
                    self.feed(view[:n], on_record)
        except BlockingIOError:
            return AGAIN
        return n

    @staticmethod
    def _check(header: bytes | bytearray | memoryview) -> tuple[bytes, int]:
        kind, length = _HEADER.unpack_from(header)
        if kind not in _KINDS or length > MAX_RECORD:
            raise LinkError(f"a record of kind {kind!r} and length {length}: the link stream"
                            " is corrupt")
        return kind, length


class OutBuffer:
    """Bytes waiting to be written to a non-blocking descriptor: a queue of chunks, written
    with ``writev`` (no copying into one buffer)."""

    def __init__(self, fd: int, chunk: int = 1 << 22, one_write: bool = False) -> None:
        self.fd = fd
        self._one_write = one_write
        self._chunks: deque[bytes | memoryview] = deque()
        self._size = 0
        self._splice_left = 0  # bytes of a spliced DATA record still to move
        self._splice_src = -1
        self._blocked = False  # a splice found the pipe full
        self._chunk = chunk
        #: Set once a write failed (the reader is gone): the error.
        self.error: OSError | None = None

    def __len__(self) -> int:
        return self._size + self._splice_left

    @property
    def busy(self) -> bool:
        """A spliced record is unfinished, or the pipe was full: nothing new can start."""
        return bool(self._splice_left or self._blocked)

    def __bool__(self) -> bool:
        """Whether something waits to be written (queued, or a record being spliced, or a
        pipe found full)."""
        return bool(self._size or self._splice_left or self._blocked)

    def write(self, data: bytes | memoryview) -> None:
        """Queue ``data`` (which must not change afterwards)."""
        if self.error is None and len(data):
            self._chunks.append(data)
            self._size += len(data)

    def write_record(self, kind: bytes, payload: bytes | memoryview = b"") -> None:
        self.write(_HEADER.pack(kind, len(payload)))
        self.write(payload)

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0
        self._splice_left = 0
        self._blocked = False

    def splice_from(self, sock: int, limit: int) -> int:
        """Move up to ``limit`` bytes waiting in the socket ``sock`` into this pipe as a
        :data:`DATA` record, inside the kernel (after whatever is queued). Returns the bytes
        moved: 0 when the socket has none (then read it as usual: it may be at its end) or
        the pipe is full (then this buffer is not empty: wait until it is writable)."""
        if self._chunks and (not self.flush() or self._chunks):
            return 0
        if not self._splice_left:
            waiting = _queued(sock)
            if not waiting:
                return 0
            try:
                os.write(self.fd, _HEADER.pack(DATA, min(waiting, limit)))  # atomic: 5 bytes
            except BlockingIOError:
                self._blocked = True
                return 0
            self._splice_left = min(waiting, limit)
            self._splice_src = sock
        return self._continue_splice()

    def _continue_splice(self) -> int:
        try:
            n = os.splice(self._splice_src, self.fd, self._splice_left, flags=_SPLICE_FLAGS)
        except BlockingIOError:
            self._blocked = True
            return 0
        except OSError as exc:
            self.error = exc
            self.clear()
            return 0
        self._splice_left -= n
        self._blocked = bool(self._splice_left)
        return n

    def own(self, scratch: bytearray) -> None:
        """Copy the queued chunks that are views of ``scratch``, which is about to be
        reused (reading into one buffer spares an allocation, and its page faults, per
        read; what was written at once needs no copy at all)."""
        chunks = self._chunks
        for i, chunk in enumerate(chunks):
            if isinstance(chunk, memoryview) and chunk.obj is scratch:
                chunks[i] = chunk.tobytes()

    def flush(self) -> bool:
        """Write what the descriptor takes now; False once a write failed."""
        if self.error is not None:
            return False
        self._blocked = False
        if self._splice_left:
            self._continue_splice()
            if self._splice_left:
                return self.error is None
        chunks = self._chunks
        while chunks:
            batch: list[bytes | memoryview] = []
            total = 0
            for chunk in chunks:
                batch.append(chunk)
                total += len(chunk)
                if total >= self._chunk or len(batch) >= 64:
                    break
            if total > self._chunk and len(batch) == 1:
                batch = [memoryview(batch[0])[: self._chunk]]
            try:
                n = os.writev(self.fd, batch)
            except BlockingIOError:
                return True
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self.error = exc
                self.clear()
                return False
            self._size -= n
            while n:
                head = chunks[0]
                if len(head) <= n:
                    n -= len(head)
                    chunks.popleft()
                else:
                    chunks[0] = memoryview(head)[n:]
                    n = 0
            if self._one_write:
                break
        return True


class Poller:
    """``select.poll`` whose registrations are changed only when they change (``None``: not
    registered; ``0``: woken by POLLHUP/POLLERR only)."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._events: dict[int, int] = {}

    def want(self, fd: int, events: int | None) -> None:
        old = self._events.get(fd)
        if events == old:
            return
        if events is None:
            self._poll.unregister(fd)
            del self._events[fd]
        elif old is None:
            self._poll.register(fd, events)
            self._events[fd] = events
        else:
            self._poll.modify(fd, events)
            self._events[fd] = events

    def poll(self, seconds: float) -> list[tuple[int, int]]:
        return self._poll.poll(max(1, int(seconds * 1000) + 1))


def wake_on_signals(signals: tuple[int, ...]) -> tuple[int, list[int]]:
    """Note ``signals`` in a list instead of acting on them, and write to a pipe that wakes
    ``poll()`` (Python would otherwise restart the poll after running the handler). Returns
    the pipe's read end and the list."""
    import signal

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    pending: list[int] = []
    for signum in signals:
        signal.signal(signum, lambda n, f: pending.append(n))
    return wake_r, pending


def split_argv(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """``OPTIONS... -- COMMAND...`` as (options, command); None without ``--`` or command."""
    if "--" not in argv:
        return None
    cut = argv.index("--")
    return (argv[:cut], argv[cut + 1 :]) if argv[cut + 1 :] else None


def keepalive_options(word: str, it: Iterator[str], settings: dict[str, float]) -> bool:
    """Parse ``--keepalive S`` / ``--keepalive-count N`` into ``settings``; False for any
    other word.

    Raises:
        ValueError: a bad value.
        StopIteration: the value is missing.
    """
    if word == "--keepalive":
        settings["keepalive"] = float(next(it))
        if settings["keepalive"] <= 0:
            raise ValueError("--keepalive must be positive")
    elif word == "--keepalive-count":
        settings["count"] = int(next(it))
        if settings["count"] < 1:
            raise ValueError("--keepalive-count must be at least 1")
    else:
        return False
    return True


def set_nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)


def grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Make a pipe's buffer larger (fewer wake-ups per megabyte); best effort."""
    import contextlib
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, 1031, size)  # F_SETPIPE_SZ

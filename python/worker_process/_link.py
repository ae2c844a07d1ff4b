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
import struct
from collections.abc import Callable

__all__ = [
    "DATA", "END", "EXIT", "FAILED", "GONE", "KEEPALIVE", "MAGIC", "OUTPUT", "SIGNAL",
    "LinkError", "OutBuffer", "RecordReader", "exit_record", "parse_exit", "record",
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


class LinkError(Exception):
    """The link's byte stream is not what ``serve`` and ``relay`` write."""


def record(kind: bytes, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One record: kind, length, payload."""
    return _HEADER.pack(kind, len(payload)) + bytes(payload)


def exit_record(returncode: int) -> bytes:
    return record(EXIT, struct.pack(">i", returncode))


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
    stream must start with it (``serve``'s side of the link)."""

    def __init__(self, magic: bytes = b"") -> None:
        self._buf = bytearray()
        self._magic = magic
        #: How many bytes of the stream were consumed (for error messages).
        self.seen = 0

    @property
    def started(self) -> bool:
        """Whether the magic (if any) has arrived."""
        return not self._magic

    @property
    def pending(self) -> int:
        """Bytes held that do not make a whole record yet."""
        return len(self._buf)

    def head(self) -> bytes:
        """The first bytes held (to show what arrived instead of the magic)."""
        return bytes(self._buf[:80])

    def feed(self, data: bytes, on_record: Callable[[bytes, memoryview], None]) -> None:
        """Consume ``data``; call ``on_record(kind, payload)`` for each whole record. The
        payload view is valid during the call only.

        Raises:
            LinkError: the magic is wrong, or a record has an unknown kind or a length over
                :data:`MAX_RECORD`.
        """
        buf = self._buf
        buf += data
        self.seen += len(data)
        if self._magic:
            n = min(len(buf), len(self._magic))
            if buf[:n] != self._magic[:n]:
                raise LinkError(f"the remote side wrote {bytes(buf[:80])!r} instead of"
                                " starting `serve`")
            if n < len(self._magic):
                return
            del buf[:n]
            self._magic = b""
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= HEADER_SIZE:
                kind, length = _HEADER.unpack_from(buf, pos)
                if kind not in _KINDS or length > MAX_RECORD:
                    raise LinkError(f"a record of kind {kind!r} and length {length}: the link"
                                    " stream is corrupt")
                stop = pos + HEADER_SIZE + length
                if stop > end:
                    break
                on_record(kind, view[pos + HEADER_SIZE : stop])
                pos = stop
        finally:
            view.release()
        if pos:
            del buf[:pos]


class OutBuffer:
    """Bytes waiting to be written to a non-blocking descriptor."""

    def __init__(self, fd: int, chunk: int = 1 << 20) -> None:
        self.fd = fd
        self.buf = bytearray()
        self._chunk = chunk
        #: Set once a write failed (the reader is gone): the error.
        self.error: OSError | None = None

    def __len__(self) -> int:
        return len(self.buf)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.error is None:
            self.buf += data

    def flush(self) -> bool:
        """Write what the descriptor takes now; False once a write failed."""
        if self.error is not None:
            return False
        buf = self.buf
        while buf:
            try:
                with memoryview(buf) as view:
                    n = os.write(self.fd, view[: self._chunk])
            except BlockingIOError:
                return True
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self.error = exc
                buf.clear()
                return False
            del buf[:n]
        return True


def set_nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)


def grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Make a pipe's buffer larger (fewer wake-ups per megabyte); best effort."""
    import contextlib
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, 1031, size)  # F_SETPIPE_SZ

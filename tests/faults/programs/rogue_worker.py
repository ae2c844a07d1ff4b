"""A worker that speaks the wire protocol by hand on fd 3, to lie to its parent.

Usage: ``rogue_worker.py BEHAVIOUR``. It imports nothing from worker_process: every byte it
writes is chosen here. Behaviours that must outlive their lie (so that the parent, not the end
of the process, is what reacts) call :func:`linger`, which blocks for at most a minute and is
only a safety net against a leaked process.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time

FD = 3
HEADER = struct.Struct(">L")


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(FD, view) :]


def read_handshake() -> None:
    got = os.read(FD, 1)
    if got != b"\x00":
        sys.stderr.write(f"rogue worker: unexpected parent handshake {got!r}\n")
        os._exit(9)


def linger() -> None:
    """Stay alive (the parent is expected to kill us); give up after a minute."""
    time.sleep(60)
    os._exit(3)


def wait_for_eof() -> None:
    """Read fd 3 until the parent's end of stream (discarding what arrives)."""
    while os.read(FD, 65536):
        pass


def main(behaviour: str) -> None:
    pidfile = os.environ.get("WP_PIDFILE")
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
    if behaviour == "bad-handshake":
        read_handshake()
        write(b"\x02")
        linger()
    elif behaviour == "bad-handshake-first":
        # The wrong byte before anything else, then a valid-looking frame.
        write(b"\x7f" + frame(b"never"))
        linger()
    elif behaviour == "exit-before-handshake":
        os._exit(5)
    elif behaviour == "eof-before-handshake":
        os.close(FD)
        os._exit(0)
    elif behaviour == "eof-before-handshake-linger":
        os.close(FD)
        linger()
    elif behaviour == "eof-after-handshake":
        read_handshake()
        write(b"\x01")
        os._exit(0)
    elif behaviour == "truncated-header":
        read_handshake()
        write(b"\x01" + frame(b"whole") + b"\x00\x00")
        os._exit(0)
    elif behaviour == "truncated-payload":
        read_handshake()
        write(b"\x01" + frame(b"whole") + HEADER.pack(10) + b"abc")
        os._exit(0)
    elif behaviour == "truncated-payload-large":
        read_handshake()
        write(b"\x01" + HEADER.pack(1 << 20) + b"z" * 1000)
        os._exit(0)
    elif behaviour == "oversized":
        # A header announcing 4 GiB - 1, then nothing: the socket stays open.
        read_handshake()
        write(b"\x01" + frame(b"before") + HEADER.pack(0xFFFFFFFF))
        linger()
    elif behaviour == "oversized-with-handshake":
        # The handshake byte and an oversized header in one write.
        read_handshake()
        write(b"\x01" + HEADER.pack(0xFFFFFFFF))
        linger()
    elif behaviour == "silent":
        linger()
    elif behaviour == "early-frames":
        # Frames before the parent's handshake byte was even read.
        write(b"\x01" + frame(b"early-1") + frame(b""))
        read_handshake()
        write(frame(b"early-2"))
        wait_for_eof()
        os._exit(0)
    elif behaviour == "flood-then-truncated":
        # More than the parent's read high-water mark, then a cut header, then exit 0.
        read_handshake()
        chunk = frame(b"f" * 65536)
        write(b"\x01" + chunk * 66 + b"\x00\x00\x01")
        os._exit(0)
    elif behaviour == "half-frame-then-sigkill":
        read_handshake()
        write(b"\x01" + frame(b"whole") + HEADER.pack(100) + b"half")
        os.kill(os.getpid(), signal.SIGKILL)
    elif behaviour == "close-channel-linger":
        # Ends its stream cleanly (half-close) but never exits by itself.
        read_handshake()
        import socket

        sock = socket.socket(fileno=FD)
        sock.sendall(b"\x01" + frame(b"last"))
        sock.shutdown(socket.SHUT_WR)
        linger()
    elif behaviour == "split-frame-on-cue":
        # Half a frame, then the rest once the parent sends anything.
        read_handshake()
        write(b"\x01" + HEADER.pack(6) + b"abc")
        if os.read(FD, 65536):
            write(b"def")
        wait_for_eof()
        os._exit(0)
    elif behaviour == "large-then-huge-on-cue":
        # A large frame, a pause, then a header announcing 3 GiB, 100 bytes, exit 0.
        read_handshake()
        write(b"\x01")
        os.read(FD, 65536)
        write(frame(b"L" * 70000))
        time.sleep(0.3)  # the shape: the next header arrives on its own
        write(HEADER.pack(3 << 30) + b"x" * 100)
        os._exit(0)
    elif behaviour in ("announce-huge-on-cue", "stream-huge-on-cue"):
        # At a frame boundary (after the parent's cue): a header announcing 3 GiB, then 100
        # bytes and exit, or bytes until the parent stops reading.
        read_handshake()
        write(b"\x01")
        os.read(FD, 65536)
        write(HEADER.pack(3 << 30))
        if behaviour == "announce-huge-on-cue":
            write(b"x" * 100)
            os._exit(0)
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(3 << 10):
                write(chunk)
        except OSError:
            pass
        os._exit(0)
    elif behaviour == "header-then-pause":
        # An honest stream, shaped: a large frame and the next large frame's header in one
        # write, a pause, then that payload, whose first 4 bytes look like a 2 MiB header.
        read_handshake()
        write(b"\x01" + frame(b"a" * 70000) + HEADER.pack(100000))
        time.sleep(0.3)  # lets the parent read the header alone (the shape, not a wait)
        write(HEADER.pack(2 << 20) + b"p" * (100000 - 4) + frame(b"z"))
        wait_for_eof()
        os._exit(0)
    elif behaviour == "handshake-then-wait":
        # Handshakes, then waits for the parent's end of stream; never opens another fd.
        read_handshake()
        write(b"\x01")
        wait_for_eof()
        os._exit(0)
    else:
        sys.stderr.write(f"rogue worker: unknown behaviour {behaviour!r}\n")
        os._exit(2)


if __name__ == "__main__":
    main(sys.argv[1])

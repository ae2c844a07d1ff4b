"""``python -m worker_process serve``: the remote end of a relay.

Started by ``relay`` through ssh (or any command that carries a byte stream), with the link on
its stdin and stdout. It starts the worker with a socketpair's end on fd 3, its stdin from
/dev/null, its stdout sent back over the link and its stderr on serve's own, then pumps the
channel's bytes both ways and turns the link's records into what the worker would have seen
from a local parent (spec/protocol.md, "Relays").
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from ._link import (
    DATA,
    END,
    EXIT,
    FAILED,
    GONE,
    KEEPALIVE,
    MAGIC,
    OUTPUT,
    SIGNAL,
    SINK_FULL,
    LinkError,
    OutBuffer,
    Poller,
    RecordReader,
    can_splice,
    exit_payload,
    grow_pipe,
    keepalive_options,
    set_nonblocking,
    split_argv,
    wake_on_signals,
)

__all__ = ["main"]

_CHUNK = 1 << 20
_HIGH = 1 << 22
_USAGE = ("usage: python -m worker_process serve [--command] [--keepalive S]"
          " [--keepalive-count N] [--grace S] [--env NAME=VALUE]... -- FILE [ARG...]\n")


class _Host:
    def __init__(self, argv: list[str], *, is_command: bool, keepalive: float, count: int,
                 grace: float, env: dict[str, str]) -> None:
        self.argv = argv
        self.is_command = is_command
        self.env = env
        self.keepalive = keepalive
        self.silence_limit = keepalive * count
        self.grace = grace
        self.out = OutBuffer(1)
        self.reader = RecordReader()
        self.link_open = True
        self.chan: socket.socket | None = None
        self.to_worker: OutBuffer | None = None
        self.chan_reading = True
        self.parent_ended = False
        self.signalled = False
        self.kill_at: float | None = None
        self.returncode: int | None = None
        self.scratch = bytearray(_CHUNK)
        self.scratch_in = bytearray(_CHUNK)
        self.splice_in = self.splice_out = self.sink_full = False
        self.last_write = self.last_heard = time.monotonic()

    # -- the link ---------------------------------------------------------------------------

    def send(self, kind: bytes, payload: bytes | memoryview = b"") -> None:
        if self.link_open:
            self.out.write_record(kind, payload)

    def on_record(self, kind: bytes, payload: memoryview) -> None:
        if kind == DATA:
            if self.to_worker is not None:
                self.to_worker.write(payload)
        elif kind == END:
            self.parent_ended = True
        elif kind == GONE:
            self.release_channel()
        elif kind == SIGNAL:
            self.signalled = True
            self.kill(payload[0] if len(payload) else signal.SIGTERM)
        elif kind != KEEPALIVE:
            raise LinkError(f"unexpected record {kind!r} from the relay")

    def drop_link(self) -> None:
        """The relay is gone (end of the link, a write error, no keep-alive): the worker
        sees a gone parent, and is killed if it does not exit in time (at once if the
        relay had already been asked to stop it)."""
        if not self.link_open:
            return
        self.link_open = False
        self.out.clear()
        self.release_channel()
        self.kill_at = time.monotonic() + (0.0 if self.signalled else self.grace)

    # -- the worker -------------------------------------------------------------------------

    def release_channel(self) -> None:
        if self.out.busy and self.link_open:
            self.flush_blocking(30.0)  # a record spliced from the channel ends before it closes
        if self.to_worker is not None:
            self.to_worker.flush()
            self.to_worker = None
        if self.chan is not None:
            self.chan.close()
            self.chan = None

    def kill(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            if self.returncode is None:
                signal.pidfd_send_signal(self.pidfd, signum)

    def read_channel(self) -> None:
        assert self.chan is not None
        if self.splice_out:
            while len(self.out) < _HIGH and self.out.splice_from(self.chan.fileno(), _CHUNK):
                self.last_write = time.monotonic()
            if self.out.busy:
                return  # the link is full: wait until it is writable
        try:
            n = self.chan.recv_into(self.scratch)
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if n:
            with memoryview(self.scratch) as view:
                self.send(DATA, view[:n])
            if self.link_open and self.out.flush():  # at once: one wake-up less per chunk
                self.last_write = time.monotonic()
            self.out.own(self.scratch)
        else:
            self.send(END)
            self.chan_reading = False

    def read_output(self) -> bool:
        try:
            data = os.read(self.wout, _CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if data:
            self.send(OUTPUT, data)
            return True
        return False

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        from ._errors import WorkerStartError
        from ._spawn import build_argv, spawn_worker

        set_nonblocking(0)
        set_nonblocking(1)
        self.out.write(MAGIC)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for end in (mine, theirs):  # fewer, larger hops for bulk data (best effort)
            with contextlib.suppress(OSError):
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _HIGH)
        try:
            argv = build_argv(self.argv[0], self.argv[1:], self.is_command)
            child = spawn_worker(argv, theirs, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, env={**os.environ, **self.env})
        except (WorkerStartError, OSError) as exc:
            mine.close()
            self.out.write_record(FAILED, str(exc).encode())
            self.flush_blocking(10.0)
            return 127
        finally:
            theirs.close()
        self.pid = child.pid
        self.pidfd = os.pidfd_open(child.pid)
        assert child.stdout is not None
        self.wout = child.stdout
        set_nonblocking(self.wout)
        grow_pipe(self.wout)
        mine.setblocking(False)
        self.chan = mine
        self.to_worker = OutBuffer(mine.fileno())
        self.splice_in, self.splice_out = can_splice(0), can_splice(1)
        wake_r, pending = wake_on_signals((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
        output_open = True
        chan_fd = mine.fileno()
        poller = Poller()
        poller.want(wake_r, select.POLLIN)
        while True:
            if pending:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 512)
                for signum in pending:
                    if signum == signal.SIGHUP:
                        self.drop_link()
                    else:
                        self.signalled = True
                        self.kill(signum)
                pending.clear()
            if self.returncode is not None:
                break
            if self.parent_ended and self.chan is not None and self.to_worker is not None \
                    and not self.to_worker:
                with contextlib.suppress(OSError):
                    self.chan.shutdown(socket.SHUT_WR)
                self.parent_ended = False
            now = time.monotonic()
            link_reading = self.link_open and not self.sink_full and (
                self.to_worker is None or len(self.to_worker) < _HIGH)
            if not link_reading:
                self.last_heard = now
            elif now - self.last_heard > self.silence_limit:
                self.drop_link()
                continue
            if self.link_open and not self.out and now - self.last_write >= self.keepalive:
                self.out.write_record(KEEPALIVE)
            IN, OUT = select.POLLIN, select.POLLOUT
            poller.want(self.pidfd, IN)
            poller.want(0, IN if link_reading else None)
            poller.want(1, OUT if self.link_open and self.out else None)
            room = len(self.out) < _HIGH
            events: int | None = None
            if self.chan is not None:
                if self.chan_reading and room and not self.out.busy:
                    events = IN
                if self.to_worker or self.sink_full:
                    events = (events or 0) | OUT
            poller.want(chan_fd, events)
            poller.want(self.wout, IN if output_open and room else None)
            timeout = self.keepalive
            if self.kill_at is not None:
                timeout = min(timeout, max(0.0, self.kill_at - now))
            if self.link_open:
                timeout = min(timeout, max(0.0, self.silence_limit - (now - self.last_heard)))
            ready = poller.poll(timeout)
            for fd, ev in ready:
                if fd == 0:
                    self.pump_link_in()
                elif fd == 1:
                    if self.out.flush():
                        self.last_write = time.monotonic()
                    else:
                        self.drop_link()
                elif fd == chan_fd and self.chan is not None:
                    if ev & select.POLLOUT:
                        self.sink_full = False
                        if self.to_worker is not None and not self.to_worker.flush():
                            self.to_worker.clear()  # the worker closed its end: as locally
                    if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) \
                            and self.chan_reading:
                        self.read_channel()
                elif fd == self.wout:
                    output_open = self.read_output()
                elif fd == self.pidfd:
                    self.reap()
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                self.kill(signal.SIGKILL)
                self.kill_at = None
        return self.finish(output_open)

    def pump_link_in(self) -> None:
        scratch = self.scratch_in
        sink = self.to_worker if self.splice_in else None
        try:
            for _ in range(64):  # headers come 5 bytes at a time: read on while there is more
                n = self.reader.pump(0, scratch, self.on_record, sink)
                if n == SINK_FULL:
                    self.sink_full = True
                if n < 0:
                    break
                if n == 0:
                    self.drop_link()
                    return
                self.last_heard = time.monotonic()
                if self.to_worker is not None:
                    if self.to_worker and not self.to_worker.flush():
                        self.to_worker.clear()
                    self.to_worker.own(scratch)
                    sink = self.to_worker if self.splice_in else None
                if not self.link_open or (self.to_worker is not None
                                          and len(self.to_worker) >= _HIGH):
                    break
        except LinkError as exc:
            sys.stderr.write(f"worker-process serve: {exc}\n")
            self.drop_link()
        except OSError:
            self.drop_link()

    def reap(self) -> None:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def finish(self, output_open: bool) -> int:
        """The worker exited: send what it left (channel bytes, output), then its status."""
        assert self.returncode is not None
        while self.chan is not None and self.chan_reading:
            if self.splice_out and self.link_open:
                self.flush_blocking(30.0)  # a spliced record takes its bytes first
                if self.out.busy:
                    break  # the relay does not read: what is left cannot go anyway
                if self.out.splice_from(self.chan.fileno(), _CHUNK) or self.out.busy:
                    continue
            try:
                data = self.chan.recv(_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if data:
                self.send(DATA, data)
            else:
                self.send(END)
                break
        while output_open and self.read_output():
            try:
                if not select.select([self.wout], [], [], 0)[0]:
                    break
            except OSError:
                break
        self.release_channel()
        self.send(EXIT, exit_payload(self.returncode))
        if self.link_open:
            self.flush_blocking(30.0)
        code = self.returncode
        return code if code >= 0 else 128 - code

    def flush_blocking(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while self.out and self.out.flush() and self.out:
            left = end - time.monotonic()
            if left <= 0:
                return
            select.select([], [1], [], left)


def main(argv: Sequence[str]) -> int:
    """``serve [--command] [--keepalive S] [--keepalive-count N] [--grace S]
    [--env NAME=VALUE]... -- FILE [ARG...]``; exits with the worker's status (128+N for
    signal N)."""
    split = split_argv(list(argv))
    if split is None:
        sys.stderr.write(_USAGE)
        return 2
    options, command = split
    is_command = False
    settings = {"keepalive": 15.0, "count": 3.0}
    grace = 1.0
    env: dict[str, str] = {}
    try:
        it = iter(options)
        for word in it:
            if word == "--command":
                is_command = True
            elif keepalive_options(word, it, settings):
                pass
            elif word == "--grace":
                grace = float(next(it))
                if grace < 0:
                    raise ValueError("--grace must not be negative")
            elif word == "--env":
                name, eq, value = next(it).partition("=")
                if not name or not eq:
                    raise ValueError("--env takes NAME=VALUE")
                env[name] = value
            else:
                raise ValueError(f"unknown option {word!r}")
    except (ValueError, StopIteration) as exc:
        sys.stderr.write(f"worker-process serve: {exc or 'an option needs a value'}\n{_USAGE}")
        return 2
    if os.isatty(0) or os.isatty(1):
        sys.stderr.write("worker-process serve: stdin and stdout carry the relay link; start it"
                         " with `python -m worker_process relay`, not from a terminal\n")
        return 2
    status = _Host(command, is_command=is_command, keepalive=settings["keepalive"],
                   count=int(settings["count"]), grace=grace, env=env).run()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(status)

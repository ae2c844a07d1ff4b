"""``python -m worker_process relay [--command] TARGET -- FILE [ARG...]``: a worker that runs
another worker elsewhere.

Its parent starts it as an ordinary worker (the channel on fd 3). It runs ``python3 -m
worker_process serve`` on TARGET (through ssh, or through an argv prefix such as ``docker exec
-i box``), passes the channel's bytes through unchanged (handshake included) as link records,
turns its parent's half-close or departure and the signals it receives into records, and ends
as the remote worker ended: with its exit code, or killed by the same signal
(spec/protocol.md, "Relays").
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

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
    grow_pipe,
    keepalive_options,
    parse_exit,
    set_nonblocking,
    split_argv,
    wake_on_signals,
)
from ._remote import REMOTE_PYTHON_ENV, Target, parse_target, remote_command

__all__ = ["main"]

_CHUNK = 1 << 20
_HIGH = 1 << 22
#: Signals passed on to the remote worker instead of ending the relay.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)
#: Exit status when the link failed (as ssh's own); 127 when a piece is missing remotely.
LINK_FAILED = 255
MISSING = 127
_USAGE = """\
usage: python -m worker_process relay [--command] [--remote-python PY] [--keepalive S]
           [--keepalive-count N] [--env NAME]... TARGET -- FILE [ARG...]
TARGET: ssh://[user@]host[:port], or a JSON array: an argv prefix that runs a command
        elsewhere, e.g. '["docker", "exec", "-i", "box"]' or '["ssh", "-F", "cfg", "host"]'
"""


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"worker-process relay: {message}\n".encode(errors="replace"))


class _Relay:
    def __init__(self, target: Target, python: list[str], keepalive: float, count: int,
                 serve_args: list[str]) -> None:
        self.target = target
        self.python = python
        self.serve_args = serve_args
        self.keepalive = keepalive
        self.silence_limit = keepalive * count
        self.reader = RecordReader(MAGIC)
        self.chan_reading = True
        self.chan_open = True
        self.write_shut = False
        self.end_pending = False
        self.status: int | None = None
        self.failed: str | None = None
        self.link_eof = False
        self.err_tail = bytearray()
        self.err_open = True
        self.scratch = bytearray(_CHUNK)
        self.scratch_in = bytearray(_CHUNK)
        self.splice_in = self.splice_out = self.sink_full = False
        self.last_write = self.last_heard = time.monotonic()

    # -- records ----------------------------------------------------------------------------

    def on_record(self, kind: bytes, payload: memoryview) -> None:
        if kind == DATA:
            if self.chan_open:
                self.to_chan.write(payload)
        elif kind == END:
            self.end_pending = True
        elif kind == OUTPUT:
            self.to_stdout.write(payload)
        elif kind == EXIT:
            self.status = parse_exit(bytes(payload))
        elif kind == FAILED:
            self.failed = bytes(payload).decode(errors="replace")
        elif kind != KEEPALIVE:
            raise LinkError(f"unexpected record {kind!r} from serve")

    def parent_left(self, gone: bool) -> None:
        """The parent's stream ended: ``gone`` when it released its end (not a half-close)."""
        self.chan_reading = False
        self.link.write_record(GONE if gone else END)
        if gone:
            self.chan_open = False
            self.to_chan.clear()

    def read_channel(self) -> None:
        if self.splice_out:
            while len(self.link) < _HIGH and self.link.splice_from(self.chan.fileno(), _CHUNK):
                self.last_write = time.monotonic()
            if self.link.busy:
                return  # the link is full: wait until it is writable
        while len(self.link) < _HIGH:  # until the socket is empty: fewer polls per megabyte
            try:
                n = self.chan.recv_into(self.scratch)
            except BlockingIOError:
                return
            except OSError:
                self.parent_left(gone=True)
                return
            if not n:
                # End of stream: a half-close leaves the socket half open (no POLLHUP); a
                # released socket reports POLLHUP. Once this side finished too, any end is
                # clean.
                hup = any(ev & select.POLLHUP for _, ev in _poll_now(self.chan.fileno()))
                self.parent_left(gone=hup and not self.write_shut)
                return
            with memoryview(self.scratch) as view:
                self.link.write_record(DATA, view[:n])
            if self.link.flush():  # at once: one wake-up less per chunk
                self.last_write = time.monotonic()
            self.link.own(self.scratch)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        from ._channel_fd import open_channel_raw

        raw = open_channel_raw()  # checks fd 3; makes it close-on-exec
        self.chan = socket.socket(fileno=raw.detach())
        self.chan.setblocking(False)
        with contextlib.suppress(OSError):  # fewer, larger hops for bulk data (best effort)
            self.chan.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _HIGH)
        words = [*self.python, "-m", "worker_process", "serve", *self.serve_args]
        argv = remote_command(self.target, words)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                close_fds=True, bufsize=0,
            )
        except OSError as exc:
            _say(f"cannot run {argv[0]!r}: {exc.strerror or exc}")
            return MISSING
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.link = OutBuffer(self.proc.stdin.fileno())
        self.link_in = self.proc.stdout.fileno()
        self.err = self.proc.stderr.fileno()
        for fd in (self.link.fd, self.link_in, self.err):
            set_nonblocking(fd)
            grow_pipe(fd)
        self.to_chan = OutBuffer(self.chan.fileno())
        self.splice_in, self.splice_out = can_splice(self.link_in), can_splice(self.link.fd)
        self.to_stdout = OutBuffer(1, chunk=4096, one_write=True)  # fd 1 may be blocking
        wake_r, pending = wake_on_signals(FORWARDED)
        outcome = self.loop(wake_r, pending)
        return self.end(outcome)

    def loop(self, wake_r: int, pending: list[int]) -> str:
        """Pump until the remote worker's exit status arrives, the worker could not start,
        or the link ended without either; says which."""
        chan_fd = self.chan.fileno()
        poller = Poller()
        poller.want(wake_r, select.POLLIN)
        while True:
            if pending:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 512)
                for signum in pending:
                    self.link.write_record(SIGNAL, bytes([signum]))
                pending.clear()
            if self.status is not None or self.failed is not None:
                return "done"
            if self.link_eof:
                return "lost"
            if self.end_pending and not self.to_chan and self.chan_open:
                with contextlib.suppress(OSError):
                    self.chan.shutdown(socket.SHUT_WR)
                self.write_shut = True
                self.end_pending = False
            now = time.monotonic()
            link_reading = (len(self.to_chan) < _HIGH and len(self.to_stdout) < _HIGH
                            and not self.sink_full)
            if not link_reading or not self.reader.started:
                self.last_heard = now
            elif now - self.last_heard > self.silence_limit:
                return "silent"
            if self.reader.started and not self.link \
                    and now - self.last_write >= self.keepalive:
                self.link.write_record(KEEPALIVE)
            IN, OUT = select.POLLIN, select.POLLOUT
            poller.want(self.link_in, IN if link_reading else None)
            poller.want(self.link.fd, OUT if self.link else None)
            poller.want(self.err, IN if self.err_open else None)
            poller.want(1, OUT if self.to_stdout else None)
            events: int | None = None
            if self.chan_open:
                if self.chan_reading and len(self.link) < _HIGH and not self.link.busy:
                    events = IN
                if self.to_chan or self.sink_full:
                    events = (events or 0) | OUT
                if events is None and self.chan_reading and not self.write_shut:
                    # With no events, still woken by POLLHUP: a parent that goes away while
                    # reading is paused.
                    events = 0
            poller.want(chan_fd, events)
            timeout = self.keepalive
            if link_reading and self.reader.started:
                timeout = min(timeout, max(0.0, self.silence_limit - (now - self.last_heard)))
            for fd, ev in poller.poll(timeout):
                if fd == self.link_in:
                    self.pump_link_in()
                elif fd == self.link.fd:
                    if self.link.flush():
                        self.last_write = time.monotonic()
                elif fd == chan_fd:
                    if ev & select.POLLOUT:
                        self.sink_full = False
                        if not self.to_chan.flush():
                            self.parent_left(gone=True)
                    elif ev & (select.POLLIN | select.POLLERR):
                        self.read_channel()
                    elif ev & select.POLLHUP and self.chan_reading and not self.write_shut:
                        self.parent_left(gone=True)
                elif fd == self.err:
                    self.pump_stderr()
                elif fd == 1 and not self.to_stdout.flush():
                    self.to_stdout.clear()

    def pump_link_in(self) -> None:
        scratch = self.scratch_in
        for _ in range(64):  # headers come 5 bytes at a time: read on while there is more
            sink = self.to_chan if self.splice_in and self.chan_open else None
            try:
                n = self.reader.pump(self.link_in, scratch, self.on_record, sink)
            except OSError:
                n = 0
            if n == SINK_FULL:
                self.sink_full = True
            if n < 0:
                return
            if n == 0:
                self.link_eof = True
                return
            self.last_heard = time.monotonic()
            if self.to_chan and self.chan_open and not self.to_chan.flush():
                self.parent_left(gone=True)
            if self.to_chan.error is not None and self.chan_open:
                self.parent_left(gone=True)
            self.to_chan.own(scratch)
            self.to_stdout.own(scratch)
            if self.status is not None or self.failed is not None \
                    or len(self.to_chan) >= _HIGH or len(self.to_stdout) >= _HIGH:
                return

    def pump_stderr(self) -> None:
        try:
            data = os.read(self.err, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.err_open = False
            return
        with contextlib.suppress(OSError):
            os.write(2, data)
        self.err_tail += data
        del self.err_tail[:-8192]

    # -- the end ----------------------------------------------------------------------------

    def flush_all(self, timeout: float | None) -> None:
        """Hand the parent what the worker sent (and its output), then its end of stream."""
        end = None if timeout is None else time.monotonic() + timeout
        while (self.chan_open and self.to_chan) or self.to_stdout:
            wait_w = []
            if self.chan_open and self.to_chan:
                if not self.to_chan.flush():
                    self.chan_open = False
                elif self.to_chan:
                    wait_w.append(self.chan.fileno())
            if self.to_stdout:
                if not self.to_stdout.flush():
                    self.to_stdout.clear()
                elif self.to_stdout:
                    wait_w.append(1)
            if not wait_w:
                continue
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return
            select.select([], wait_w, [], left)
        if self.end_pending and self.chan_open:
            with contextlib.suppress(OSError):
                self.chan.shutdown(socket.SHUT_WR)

    def wait_ssh(self, timeout: float) -> int | None:
        """Let the remote command end (draining its stderr); its exit status, or None (then
        it was killed)."""
        with contextlib.suppress(OSError):
            os.close(self.link.fd)
        end = time.monotonic() + timeout
        while self.err_open:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.err], [], [], left)[0]:
                break
            self.pump_stderr()
        try:
            return self.proc.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def end(self, outcome: str) -> int:
        if outcome == "done":
            self.flush_all(None)
            self.wait_ssh(10.0)
            if self.failed is not None:
                _say(f"on {self.target.name}: {self.failed}")
                return MISSING
            assert self.status is not None
            return self.status
        if outcome == "silent":
            self.proc.kill()
            self.wait_ssh(5.0)
            _say(f"the link to {self.target.name} is lost: nothing heard for"
                 f" {self.silence_limit:g} s (keep-alive)")
            return LINK_FAILED
        code = self.wait_ssh(10.0)
        status, message = self.diagnose(code)
        self.flush_all(5.0)
        _say(message)
        return status

    def diagnose(self, code: int | None) -> tuple[int, str]:
        """Why the link ended without the worker's exit status."""
        name = self.target.name
        shown = "was killed" if code is None else f"exited {code}"
        if self.reader.started:
            return LINK_FAILED, (f"the link to {name} was lost before the worker's exit status"
                                 f" arrived (the remote command {shown})")
        text = self.err_tail.decode(errors="replace")
        python = " ".join(self.python)
        if "No module named worker_process" in text or "No module named 'worker_process'" in text:
            return MISSING, (f"{python!r} on {name} cannot import worker_process: install the"
                             " worker-process package there (Python 3.10+)")
        if code == 127 or f"{self.python[0]}: not found" in text \
                or "command not found" in text or "No such file or directory" in text:
            return MISSING, (f"{name} has no {python!r} (the remote command {shown}): install"
                             " Python 3.10+ there, or name it with --remote-python")
        if code == LINK_FAILED and self.target.is_ssh:
            return LINK_FAILED, (f"ssh could not connect to {name} or run a command there (ssh"
                                 " exited 255; its message is above)")
        if self.reader.seen:
            return LINK_FAILED, (f"the remote command wrote {self.reader.head()!r} instead of"
                                 f" starting serve (it {shown})")
        return LINK_FAILED, f"the remote command {shown} before serve started"


def exit_like(status: int) -> NoReturn:
    """End this process as the remote worker ended: exit with its code, or kill this process
    with its signal (without a core dump); exit 128+N if that signal does not end a process.

    Exits at once (``os._exit``): the channel must not close before the process ends, or the
    parent would see an end of stream from a process that is still running."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    if status >= 0:
        os._exit(status)
    signum = -status
    with contextlib.suppress(Exception):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        os.kill(os.getpid(), signum)
    os._exit(128 + signum)


def main(argv: Sequence[str]) -> int:
    """Run the relay; returns its exit status (or ends by the remote worker's signal)."""
    split = split_argv(list(argv))
    if split is None:
        sys.stderr.write(_USAGE)
        return 2
    options, command = split
    is_command = False
    python = os.environ.get(REMOTE_PYTHON_ENV) or "python3"
    settings = {"keepalive": 15.0, "count": 3.0}
    positional: list[str] = []
    passed_env: list[str] = []
    try:
        it = iter(options)
        for word in it:
            if word == "--command":
                is_command = True
            elif word == "--remote-python":
                python = next(it)
            elif keepalive_options(word, it, settings):
                pass
            elif word == "--env":
                name = next(it)
                if name in os.environ:
                    passed_env += ["--env", f"{name}={os.environ[name]}"]
            elif word.startswith("--"):
                raise ValueError(f"unknown option {word!r}")
            else:
                positional.append(word)
        if len(positional) != 1:
            raise ValueError("give exactly one TARGET before --")
        keepalive, count = settings["keepalive"], int(settings["count"])
        target = parse_target(positional[0], keepalive=keepalive, keepalive_count=count)
        python_words = shlex.split(python)
        if not python_words:
            raise ValueError("--remote-python is empty")
    except (ValueError, StopIteration) as exc:
        sys.stderr.write(f"worker-process relay: {exc or 'an option needs a value'}\n{_USAGE}")
        return 2
    from ._errors import ChannelUnavailableError

    serve_args = [*(["--command"] if is_command else []), "--keepalive", f"{keepalive:g}",
                  "--keepalive-count", str(count), *passed_env, "--", *command]
    relay = _Relay(target, python_words, keepalive, count, serve_args)
    try:
        status = relay.run()
    except ChannelUnavailableError as exc:
        _say(str(exc))
        return 2
    except LinkError as exc:
        _say(f"{exc} (on {target.name})")
        with contextlib.suppress(Exception):
            relay.proc.kill()
            relay.proc.wait()
        status = LINK_FAILED
    return exit_like(status)


def _poll_now(fd: int) -> list[tuple[int, int]]:
    poller = select.poll()
    poller.register(fd, 0)
    return poller.poll(0)

"""Scenarios for a candidate *parent*: it starts the probe worker (:mod:`.probe`), which hands
its channel to the runner; the runner then plays the worker, byte by byte.

The candidate follows the parent contract of ``spec/conformance.md``: start the command line
in ``$WORKER_PROCESS_PROBE`` as a worker, send the greeting, echo every message (obeying the
control messages), and print one JSON outcome line once the worker has ended.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import contract, probe
from ._procs import (
    Candidate,
    CandidateContext,
    describe_status,
    has_live_children,
    process_state,
    rss_bytes,
)
from ._raw import Deadline, Fail, RawPeer, frame, pattern
from .scenarios import Level, ScenarioSet

__all__ = ["SCENARIOS", "ParentContext", "Probe"]

PARENT_HS = b"\x00"
WORKER_HS = b"\x01"
_QUIET_WINDOW = 0.3
_LIMIT = 1024


class Probe:
    """The probe worker as the runner sees it: its hello, its channel, its control socket."""

    def __init__(self, hello: dict[str, Any], ctl: socket.socket, peer: RawPeer | None,
                 deadline: Deadline) -> None:
        self.hello = hello
        self.pid: int = hello["pid"]
        self.ctl = ctl
        self._peer = peer
        self.deadline = deadline
        self._buf = b""
        self.events: list[dict[str, Any]] = []

    @property
    def peer(self) -> RawPeer:
        """The channel, driven by the runner.

        Raises:
            Fail: the probe had no channel on fd 3 to pass.
        """
        if self._peer is None:
            raise Fail(f"the worker's fd 3 is not a socket: {self.hello['channel']}")
        return self._peer

    def command(self, cmd: str, **args: Any) -> None:
        """Send a command; wait for its acknowledgement (not for ``exit``).

        Raises:
            Fail: the probe did not acknowledge in time.
        """
        self.ctl.sendall((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        if cmd != "exit":
            self.wait_event("ok", f"the probe's acknowledgement of {cmd}")

    def wait_event(self, name: str, what: str, end: float | None = None) -> dict[str, Any]:
        """The next control event called ``name``.

        Raises:
            Fail: it did not come before ``end`` (default: the deadline).
        """
        stop = self.deadline.at if end is None else end
        while True:
            for i, event in enumerate(self.events):
                if event["event"] == name:
                    return self.events.pop(i)
            left = stop - time.monotonic()
            if left <= 0:
                raise Fail(f"no {what} in time")
            ready, _, _ = select.select([self.ctl], [], [], left)
            if not ready:
                continue
            data = self.ctl.recv(4096)
            if not data:
                raise Fail(f"no {what}: the probe process ended")
            self._buf += data
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                self.events.append(json.loads(line))

    def exit(self, code: int) -> None:
        """Make the probe exit with ``code`` (its copy of the channel closes with it)."""
        with contextlib.suppress(OSError):
            self.command("exit", code=code)

    def gone(self) -> bool:
        return process_state(self.pid) in (None, "Z", "X")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _is_probe(self.pid):
                os.kill(self.pid, signal.SIGKILL)


def _is_probe(pid: int) -> bool:
    try:
        return probe.__file__.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class ParentContext(CandidateContext):
    """What a parent scenario works with: starts the candidate parent, and accepts the probe
    it starts."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], deadline: Deadline) -> None:
        super().__init__(argv, env, deadline,
                         keep_env=("WORKER_PROCESS_NODE", "WORKER_PROCESS_PYTHON"))
        self.tmp = tempfile.mkdtemp(prefix="wp-conformance-")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control_path = os.path.join(self.tmp, "control.sock")
        self.listener.bind(self.control_path)
        self.listener.listen(4)
        self.probes: list[Probe] = []
        self.sockets: list[socket.socket] = [self.listener]

    # -- starting ---------------------------------------------------------------------------

    def start(self, *, limit: int | None = None, close_timeout: float | None = None,
              extra_fds: Sequence[int] = ()) -> None:
        """Start the candidate parent (with inheritable descriptors ``extra_fds`` open)."""
        env = dict(self.base_env)
        env[contract.PROBE_ENV] = json.dumps(
            [sys.executable, "-I", "-S", probe.__file__, self.control_path])
        if limit is not None:
            env[contract.LIMIT_ENV] = str(limit)
        if close_timeout is not None:
            env[contract.CLOSE_TIMEOUT_ENV] = str(close_timeout)
        self.proc = Candidate(self.argv, env, extra_fds=extra_fds)

    def accept_probe(self) -> Probe:
        """Wait for the probe the candidate started; take its channel.

        Raises:
            Fail: no probe connected in time.
        """
        while not select.select([self.listener], [], [], 0)[0]:
            # Wait for the probe, or for the candidate to end: once it has, and nothing it
            # started is left (orphans are re-parented to the runner), no probe can come.
            gone = self.candidate.returncode is not None
            watch: list[socket.socket | int] = [self.listener]
            if not gone:
                watch.append(self.candidate.pidfd)
            left = self.deadline.left()
            if left <= 0:
                raise Fail(f"the parent did not start the probe worker{self.status_note()}")
            select.select(watch, [], [], min(left, 0.05) if gone else left)
            if self.candidate.wait(self.deadline, 0) is not None and not has_live_children() \
                    and not select.select([self.listener], [], [], 0)[0]:
                raise Fail(f"the parent ended without starting the probe worker"
                           f"{self.status_note()}")
        ctl, _ = self.listener.accept()
        self.sockets.append(ctl)
        ctl.settimeout(self.deadline.left())
        try:
            data, ancdata, _, _ = ctl.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
        except OSError as exc:
            raise Fail(f"the probe did not report: {exc}") from None
        fds = array.array("i")
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        ctl.setblocking(True)
        line = data.split(b"\n", 1)[0]
        hello = json.loads(line)
        peer = None
        if fds:
            for extra in fds[1:]:
                os.close(extra)
            sock = socket.socket(fileno=fds[0])
            if hello["channel"].get("socket"):
                peer = RawPeer(sock, self.deadline)
            else:
                sock.detach()
                os.close(fds[0])
        found = Probe(hello, ctl, peer, self.deadline)
        self.probes.append(found)
        return found

    def connect(self, *, limit: int | None = None, close_timeout: float | None = None) -> Probe:
        """Start the candidate, accept its probe, complete the handshake and read the
        greeting.

        Raises:
            Fail: any of it went wrong.
        """
        self.start(limit=limit, close_timeout=close_timeout)
        found = self.accept_probe()
        peer = found.peer
        peer.expect(PARENT_HS, "the parent's handshake byte")
        peer.send(WORKER_HS, "the handshake byte")
        peer.expect_frame(contract.GREETING, "the greeting")
        return found

    # -- observing --------------------------------------------------------------------------

    def outcome(self) -> dict[str, Any]:
        """The candidate's outcome line, once it has exited.

        Raises:
            Fail: it did not exit, exited non-zero, or printed no valid outcome line.
        """
        code = self.candidate.expect_exit(self.deadline, "the parent")
        lines = [line for line in self.candidate.output().splitlines() if line.strip()]
        if code != 0:
            tail = self.candidate.stderr_tail()
            raise Fail(f"the parent ended with {describe_status(code)}, not exit 0"
                       f"{'; stderr: ' + tail if tail else ''}")
        if not lines:
            raise Fail("the parent printed no outcome line")
        try:
            result = json.loads(lines[-1])
        except ValueError:
            raise Fail(f"the parent's last line is not JSON: {lines[-1][:80]!r}") from None
        if not isinstance(result, dict) or result.get("outcome") not in contract.OUTCOMES:
            raise Fail(f"the parent's outcome line is not valid: {lines[-1][:80]!r}")
        return result

    def expect_outcome(self, expected: str, **fields: Any) -> dict[str, Any]:
        """The outcome must be ``expected`` with these field values.

        Raises:
            Fail: it is not.
        """
        result = self.outcome()
        if result["outcome"] != expected:
            detail = result.get("error") or describe_status(result.get("returncode"))
            raise Fail(f"expected outcome {expected!r}, the parent reported {result['outcome']!r}"
                       f" ({detail})")
        for key, value in fields.items():
            if result.get(key) != value:
                raise Fail(f"expected {key} = {value!r} in the outcome, got {result.get(key)!r}")
        return result

    def cleanup(self) -> None:
        for found in self.probes:
            if found._peer is not None:
                found._peer.close()
            found.kill()
        for sock in self.sockets:
            sock.close()
        if self.proc is not None:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


SCENARIOS: ScenarioSet[ParentContext] = ScenarioSet("parent")
scenario = SCENARIOS.add
MUST, SHOULD = Level.MUST, Level.SHOULD


def _end_worker(found: Probe, code: int) -> None:
    """The worker finishes its stream and exits with ``code``."""
    found.peer.shutdown_write()
    found.peer.close()
    found.exit(code)


def _exit_while_parent_stopped(ctx: ParentContext, found: Probe, code: int,
                               data: bytes = b"") -> None:
    """Write ``data``, end the worker's stream and make it exit with ``code``, all while the
    parent process is stopped (SIGSTOP): it then finds the exit, the bytes and the end of
    stream at once, whatever order it looks at them in. ``data`` must fit in the socket's
    buffer."""
    parent_pid: int = found.hello["ppid"]
    found.command("close_channel")  # the runner's copy is now the worker's only one
    os.kill(parent_pid, signal.SIGSTOP)
    try:
        if data:
            found.peer.send(data, "frames, while the parent is stopped")
        found.peer.shutdown_write()
        found.peer.close()
        found.exit(code)
        end = ctx.deadline.within(5.0)
        while process_state(found.pid) not in ("Z", "X", None):
            if time.monotonic() >= end:
                raise Fail("the probe worker did not exit")
            time.sleep(0.005)
    finally:
        os.kill(parent_pid, signal.SIGCONT)


def _expect_probe_gone(ctx: ParentContext, found: Probe, why: str) -> None:
    end = ctx.deadline.within(2.0)
    while not found.gone():
        if time.monotonic() >= end:
            raise Fail(f"the worker process is still running after {why}")
        time.sleep(0.01)


def _echo_all(peer: RawPeer, payloads: Sequence[bytes], what: str) -> None:
    for i, payload in enumerate(payloads):
        peer.expect_frame(payload, f"the echo of {what} #{i} ({len(payload)} bytes)")


# --- Pre-flight -----------------------------------------------------------------------------


@scenario("starts", MUST, "Handshake",
          "pre-flight: the parent starts the worker, hands over the channel and sends its "
          "greeting (when this fails, no other scenario runs)")
def _starts(ctx: ParentContext) -> None:
    ctx.preflight(ctx.connect)


# --- Transport --------------------------------------------------------------------------------


@scenario("channel-fd", MUST, "Transport",
          "the worker's fd 3 is an AF_UNIX stream socket")
def _channel_fd(ctx: ParentContext) -> None:
    ctx.start()
    found = ctx.accept_probe()
    channel = found.hello["channel"]
    if not channel.get("open"):
        raise Fail("fd 3 is not open in the worker")
    if not channel.get("socket"):
        raise Fail(f"fd 3 in the worker is not a socket ({channel.get('error')})")
    if (channel["family"], channel["type"]) != (int(socket.AF_UNIX), int(socket.SOCK_STREAM)):
        raise Fail(f"fd 3 is a socket of family {channel['family']}, type {channel['type']};"
                   " expected AF_UNIX, SOCK_STREAM")


#: Inheritable descriptors the candidate parent is started with (low and high numbers).
_EXTRA_FDS = (7, 100)


@scenario("exact-fds", SHOULD, "Transport",
          "the worker gets descriptors 0-3 only, not the parent's own inheritable ones")
def _exact_fds(ctx: ParentContext) -> None:
    ctx.start(extra_fds=_EXTRA_FDS)
    found = ctx.accept_probe()
    fds = found.hello["fds"]
    if fds != [0, 1, 2, 3]:
        extra = [fd for fd in fds if fd > 3]
        missing = [fd for fd in range(4) if fd not in fds]
        raise Fail(f"the worker has descriptors {fds} (the parent had inheritable fds"
                   f" {list(_EXTRA_FDS)} open)"
                   f"{'; extra: ' + str(extra) if extra else ''}"
                   f"{'; missing: ' + str(missing) if missing else ''}")


# --- Handshake --------------------------------------------------------------------------------


@scenario("handshake-first", MUST, "Handshake",
          "the parent writes 0x00 at once, without waiting for the worker")
def _handshake_first(ctx: ParentContext) -> None:
    ctx.start()
    peer = ctx.accept_probe().peer
    peer.expect(PARENT_HS, "the parent's handshake byte")


@scenario("no-write-before-handshake", MUST, "Handshake",
          "nothing but 0x00 before the worker's 0x01 (the greeting waits for it)")
def _no_write_before_handshake(ctx: ParentContext) -> None:
    ctx.start()
    peer = ctx.accept_probe().peer
    peer.expect(PARENT_HS, "the parent's handshake byte")
    early = peer.collect(_QUIET_WINDOW)
    if early:
        raise Fail(f"the parent wrote {early[:16].hex(' ')} before the worker's handshake byte")
    peer.send(WORKER_HS, "the handshake byte")
    peer.expect_frame(contract.GREETING, "the greeting")


@scenario("handshake-once", MUST, "Handshake",
          "after 0x01 the parent writes frames only (no second 0x00)")
def _handshake_once(ctx: ParentContext) -> None:
    peer = ctx.connect().peer
    peer.send(frame(b"ping"), "a frame")
    peer.expect_frame(b"ping", "the echo")


@scenario("handshake-coalesced-frame", MUST, "Handshake",
          "a frame in the same write as the 0x01 is not lost")
def _handshake_coalesced(ctx: ParentContext) -> None:
    ctx.start()
    peer = ctx.accept_probe().peer
    peer.expect(PARENT_HS, "the parent's handshake byte")
    peer.send(WORKER_HS + frame(b"early"), "0x01 and a frame in one write")
    peer.expect_frame(contract.GREETING, "the greeting")
    peer.expect_frame(b"early", "the echo of the frame sent with the handshake byte")


@scenario("bad-handshake-byte", MUST, "Handshake",
          "a first byte other than 0x01 fails the start at once and kills the worker")
def _bad_handshake(ctx: ParentContext) -> None:
    ctx.start()
    found = ctx.accept_probe()
    peer = found.peer
    peer.expect(PARENT_HS, "the parent's handshake byte")
    peer.send(b"\x07", "a wrong handshake byte (0x07)")
    ctx.expect_outcome("start_failed")
    peer.drain_until_eof(ctx.deadline.within(1.0))
    if peer.inbox:
        raise Fail(f"the parent wrote {peer.inbox[:16].hex(' ')} after a bad handshake byte")
    _expect_probe_gone(ctx, found, "a failed start")


@scenario("eof-before-handshake", MUST, "Handshake",
          "a worker that exits before answering fails the start")
def _eof_before_handshake(ctx: ParentContext) -> None:
    ctx.start()
    found = ctx.accept_probe()
    found.peer.expect(PARENT_HS, "the parent's handshake byte")
    found.peer.close()
    found.exit(0)
    ctx.expect_outcome("start_failed")


# --- Frames -----------------------------------------------------------------------------------

_SIZES = (1, 2, 3, 4, 5, 255, 256, 4095, 4096, 65535, 65536, 65537, 1 << 20)


@scenario("echo-sizes", MUST, "Frames",
          "payloads of 1 B to 1 MiB (around 64 KiB) come back intact")
def _echo_sizes(ctx: ParentContext) -> None:
    peer = ctx.connect().peer
    for i, size in enumerate(_SIZES):
        payload = pattern(size, i)
        peer.send(frame(payload), f"a {size}-byte frame")
        peer.expect_frame(payload, f"the echo of the {size}-byte frame")


@scenario("echo-empty", MUST, "Frames",
          "zero-length frames among others come back, in order")
def _echo_empty(ctx: ParentContext) -> None:
    peer = ctx.connect().peer
    payloads = [b"", b"a", b"", b"", b"bc", b""]
    peer.send(b"".join(map(frame, payloads)), "frames")
    _echo_all(peer, payloads, "frame")


@scenario("zero-length-alone", MUST, "Frames",
          "a lone zero-length frame is echoed without further bytes arriving")
def _zero_length_alone(ctx: ParentContext) -> None:
    peer = ctx.connect().peer
    peer.send(frame(b""), "a zero-length frame")
    peer.expect_frame(b"", "the echo of a lone zero-length frame")


@scenario("byte-at-a-time", MUST, "Frames",
          "frames written one byte per write are reassembled")
def _byte_at_a_time(ctx: ParentContext) -> None:
    ctx.start()
    peer = ctx.accept_probe().peer
    peer.expect(PARENT_HS, "the parent's handshake byte")
    payloads = [b"", b"abc", pattern(40, 7)]
    peer.send_slowly(WORKER_HS + b"".join(map(frame, payloads)), "frames, byte by byte")
    peer.expect_frame(contract.GREETING, "the greeting")
    _echo_all(peer, payloads, "frame")


@scenario("coalesced-frames", MUST, "Frames",
          "1000 frames in one write come back in order")
def _coalesced(ctx: ParentContext) -> None:
    peer = ctx.connect().peer
    payloads = [pattern(i % 97, i) for i in range(1000)]
    peer.send(b"".join(map(frame, payloads)), "1000 frames in one write")
    _echo_all(peer, payloads, "frame")


@scenario("echo-16mib", MUST, "Frames", "a 16 MiB message comes back intact", timeout=40.0)
def _echo_16mib(ctx: ParentContext) -> None:
    peer = ctx.connect().peer
    payload = pattern(16 << 20, 16)
    peer.send(frame(payload), "a 16 MiB frame")
    peer.expect_frame(payload, "the echo of the 16 MiB frame")


# --- Limits -----------------------------------------------------------------------------------


@scenario("at-limit", MUST, "Limits",
          f"a payload of exactly max_message_size ({_LIMIT}) is accepted")
def _at_limit(ctx: ParentContext) -> None:
    peer = ctx.connect(limit=_LIMIT).peer
    payload = pattern(_LIMIT, 1)
    peer.send(frame(payload), "a frame at the limit")
    peer.expect_frame(payload, "the echo of the frame at the limit")


def _expect_protocol_error(ctx: ParentContext, found: Probe, what: str) -> None:
    ctx.expect_outcome("protocol_error")
    _expect_probe_gone(ctx, found, what)


@scenario("over-limit", MUST, "Limits",
          "a header over max_message_size: protocol error, the worker is killed")
def _over_limit(ctx: ParentContext) -> None:
    found = ctx.connect(limit=_LIMIT)
    found.peer.send((_LIMIT + 1).to_bytes(4, "big"), "a header over the limit")
    _expect_protocol_error(ctx, found, "a header over the limit")


@scenario("max-length-header", MUST, "Limits",
          "the largest header (2**32-1) over a 1024-byte limit: protocol error")
def _max_length_header(ctx: ParentContext) -> None:
    found = ctx.connect(limit=_LIMIT)
    found.peer.send(b"\xff\xff\xff\xff", "the header 0xffffffff")
    _expect_protocol_error(ctx, found, "the header 0xffffffff")


@scenario("no-preallocation", MUST, "Limits",
          "a 4 GiB header with 1 KiB behind it does not make the parent take 4 GiB")
def _no_preallocation(ctx: ParentContext) -> None:
    found = ctx.connect()
    peer = found.peer
    pid = ctx.candidate.pid
    before_rss, before_vm = rss_bytes(pid) or 0, _vm_size(pid)
    peer.send(b"\xff\xff\xff\xff" + bytes(1024), "a 0xffffffff header and 1 KiB")
    worst_rss, worst_vm = before_rss, before_vm
    end = ctx.deadline.within(0.5)
    while time.monotonic() < end:
        worst_rss = max(worst_rss, rss_bytes(pid) or 0)
        worst_vm = max(worst_vm, _vm_size(pid))
        peer.collect(0.02)
    grew = max(worst_rss - before_rss, worst_vm - before_vm)
    if grew > 1 << 30:
        raise Fail(f"the parent's memory grew by {grew >> 20} MiB for an announced 4 GiB"
                   f" payload (resident +{(worst_rss - before_rss) >> 20} MiB, virtual"
                   f" +{(worst_vm - before_vm) >> 20} MiB)")
    peer.shutdown_write()
    _expect_protocol_error(ctx, found, "a truncated 4 GiB frame")


def _vm_size(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


# --- End of stream ----------------------------------------------------------------------------


@scenario("truncated-header", MUST, "End of stream",
          "the worker's stream ends inside a header: protocol error")
def _truncated_header(ctx: ParentContext) -> None:
    found = ctx.connect()
    found.peer.send(b"\x00\x00", "2 header bytes")
    found.peer.shutdown_write()
    _expect_protocol_error(ctx, found, "a truncated header")


@scenario("truncated-payload", MUST, "End of stream",
          "the worker's stream ends inside a payload: protocol error")
def _truncated_payload(ctx: ParentContext) -> None:
    found = ctx.connect()
    found.peer.send((10).to_bytes(4, "big") + b"abc", "3 bytes of a 10-byte frame")
    found.peer.shutdown_write()
    _expect_protocol_error(ctx, found, "a truncated payload")


@scenario("truncated-then-exit-zero", SHOULD, "End of stream",
          "a truncated frame from a worker that then exits 0 is still a protocol error")
def _truncated_then_exit_zero(ctx: ParentContext) -> None:
    found = ctx.connect()
    _exit_while_parent_stopped(ctx, found, 0, (10).to_bytes(4, "big") + b"abc")
    ctx.expect_outcome("protocol_error")


# --- Parent lifecycle -------------------------------------------------------------------------


@scenario("worker-exit-zero", MUST, "Parent lifecycle",
          "a worker that finishes and exits 0: outcome ok")
def _worker_exit_zero(ctx: ParentContext) -> None:
    found = ctx.connect()
    _end_worker(found, 0)
    ctx.expect_outcome("ok", messages=0)


@scenario("worker-exit-nonzero", MUST, "Parent lifecycle",
          "a worker that exits 3: the lifetime fails with exit code 3")
def _worker_exit_nonzero(ctx: ParentContext) -> None:
    found = ctx.connect()
    _end_worker(found, 3)
    ctx.expect_outcome("exited", returncode=3)


@scenario("worker-killed", MUST, "Parent lifecycle",
          "a worker killed by SIGKILL: the lifetime fails with the signal")
def _worker_killed(ctx: ParentContext) -> None:
    found = ctx.connect()
    found.peer.close()
    os.kill(found.pid, signal.SIGKILL)
    ctx.expect_outcome("killed", signal=int(signal.SIGKILL))


@scenario("finish-then-exit", MUST, "Worker lifecycle",
          "500 messages, finish, exit 0 before the parent reads: it reads them all")
def _finish_then_exit(ctx: ParentContext) -> None:
    found = ctx.connect()
    found.peer.send(frame(contract.QUIET), "the quiet request")
    payloads = [pattern(50 + i % 50, i) for i in range(500)]
    _exit_while_parent_stopped(ctx, found, 0, b"".join(map(frame, payloads)))
    ctx.expect_outcome("ok", messages=500, bytes=sum(map(len, payloads)))


@scenario("exit-zero-while-parent-writes", SHOULD, "Parent lifecycle",
          "a worker that exits 0 before the parent's echo to it (EPIPE): outcome ok")
def _exit_zero_while_parent_writes(ctx: ParentContext) -> None:
    found = ctx.connect()
    _exit_while_parent_stopped(ctx, found, 0, frame(pattern(1024, 1)))
    ctx.expect_outcome("ok", messages=1)


@scenario("close-half-closes", MUST, "Parent lifecycle",
          "close() ends the parent's stream but keeps reading from the worker")
def _close_half_closes(ctx: ParentContext) -> None:
    found = ctx.connect()
    peer = found.peer
    peer.send(frame(contract.CLOSE), "the close request")
    peer.expect_eof("the parent's end of stream after close()")
    if peer.peer_released():
        raise Fail("close() released the socket instead of shutting down its write side")
    peer.send(frame(b"after-close"), "a frame after the parent's end of stream")
    _end_worker(found, 0)
    ctx.expect_outcome("ok", messages=1)


@scenario("close-escalates", MUST, "Parent lifecycle",
          "a worker ignoring close() gets SIGTERM after the timeout, then SIGKILL",
          timeout=15.0)
def _close_escalates(ctx: ParentContext) -> None:
    found = ctx.connect(close_timeout=0.5)
    found.command("ignore_sigterm")
    peer = found.peer
    peer.send(frame(contract.CLOSE), "the close request")
    peer.expect_eof("the parent's end of stream after close()")
    ended = time.monotonic()
    peer.close()  # the worker stays, holding its copy of the channel, and ignores the end
    found.wait_event("sigterm", "SIGTERM from the parent after the close timeout")
    waited = time.monotonic() - ended
    if waited < 0.3:
        raise Fail(f"SIGTERM came {waited:.2f} s after the end of stream; the close timeout"
                   " is 0.5 s")
    ctx.expect_outcome("killed", signal=int(signal.SIGKILL))

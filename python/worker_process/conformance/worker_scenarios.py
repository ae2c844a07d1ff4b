"""Scenarios for a candidate *worker*: the runner is its parent and drives the raw channel.

The candidate follows the worker contract of ``spec/conformance.md``: echo every message,
answer a burst request with the burst then finish and exit 0, exit 0 at a clean end of the
parent's stream, and let the library handle a broken channel (a line on stderr, exit 1).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import contract
from ._procs import Candidate, CandidateContext, describe_status, rss_bytes
from ._raw import Deadline, Fail, RawPeer, frame, pattern
from .scenarios import Level, ScenarioSet

__all__ = ["SCENARIOS", "WorkerContext"]

PARENT_HS = b"\x00"
WORKER_HS = b"\x01"
_O_CLOEXEC = 0o2000000
#: How long a worker whose channel broke may take to exit ("at once").
_PROMPT = 5.0
#: How long the probe watches for bytes that must not come.
_QUIET_WINDOW = 0.3


class WorkerContext(CandidateContext):
    """What a worker scenario works with: starts the candidate as a worker of the runner."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], deadline: Deadline) -> None:
        super().__init__(argv, env, deadline)
        self.procs: list[Candidate] = []
        self.peers: list[RawPeer] = []
        self.channel_inode = 0

    # -- starting ---------------------------------------------------------------------------

    def env_for(self, limit: int | None) -> dict[str, str]:
        env = dict(self.base_env)
        if limit is not None:
            env[contract.LIMIT_ENV] = str(limit)
        return env

    def spawn(self, *, limit: int | None = None) -> RawPeer:
        """Start the candidate with the channel on fd 3; return the runner's end."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.channel_inode = os.fstat(theirs.fileno()).st_ino
        try:
            proc = Candidate(self.argv, self.env_for(limit), theirs)
        finally:
            theirs.close()
        self.procs.append(proc)
        self.proc = proc
        peer = RawPeer(mine, self.deadline)
        self.peers.append(peer)
        return peer

    def connect(self, *, limit: int | None = None) -> RawPeer:
        """Start the candidate and complete the handshake.

        Raises:
            Fail: the candidate did not answer 0x01.
        """
        peer = self.spawn(limit=limit)
        peer.send(PARENT_HS, "the handshake byte")
        self.expect_handshake(peer)
        return peer

    def expect_handshake(self, peer: RawPeer) -> None:
        """The candidate's first byte must be 0x01.

        Raises:
            Fail: it is not, or it did not come.
        """
        if not peer.wait_for(1):
            raise Fail(f"no handshake byte from the worker"
                       f"{self.status_note(within=1.0 if peer.eof else 0.0)}")
        got = peer.read_exact(1, "the handshake byte")
        if got != WORKER_HS:
            raise Fail(f"the worker's first byte is 0x{got.hex()}, not 0x01")

    # -- observing --------------------------------------------------------------------------

    def expect_exit(self, codes: str, *, within: float | None = None) -> int:
        """Wait for the exit; ``codes`` is ``"0"``, ``"1"`` or ``"nonzero"``.

        Raises:
            Fail: it did not exit in time, or with another status.
        """
        proc = self.candidate
        code = proc.wait(self.deadline, within)
        if code is None:
            limit = within if within is not None else self.deadline.seconds
            raise Fail(f"the worker did not exit within {limit:g} s")
        ok = code != 0 if codes == "nonzero" else code == int(codes)
        if not ok:
            tail = proc.stderr_tail()
            raise Fail(f"expected exit {'non-zero' if codes == 'nonzero' else codes}, got "
                       f"{describe_status(code)}{'; stderr: ' + tail if tail else ''}")
        return code

    def holder_pid(self) -> int:
        """The process holding the candidate's end of the channel on its fd 3 (the candidate,
        or the program a wrapper started).

        Raises:
            Fail: no process in the candidate's session has it on fd 3.
        """
        want = f"socket:[{self.channel_inode}]"
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{name}/fd/3") == want and os.getsid(int(name)) == \
                        self.candidate.pid:
                    return int(name)
            except OSError:
                continue
        raise Fail("no process of the candidate holds the channel on fd 3")

    def cleanup(self) -> None:
        for peer in self.peers:
            peer.close()
        for proc in self.procs:
            proc.kill()


SCENARIOS: ScenarioSet[WorkerContext] = ScenarioSet("worker")
scenario = SCENARIOS.add
MUST, SHOULD = Level.MUST, Level.SHOULD


def _echo_all(peer: RawPeer, payloads: Sequence[bytes], what: str) -> None:
    for i, payload in enumerate(payloads):
        peer.expect_frame(payload, f"the echo of {what} #{i} ({len(payload)} bytes)")


# --- Pre-flight -----------------------------------------------------------------------------


@scenario("starts", MUST, "Handshake",
          "pre-flight: the worker starts and answers the handshake (when this fails, no "
          "other scenario runs)")
def _starts(ctx: WorkerContext) -> None:
    ctx.preflight(ctx.connect)


# --- Transport ------------------------------------------------------------------------------


@scenario("channel-cloexec", MUST, "Transport",
          "once connected, the worker's fd 3 is close-on-exec")
def _channel_cloexec(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(frame(b"x"), "a frame")
    peer.expect_frame(b"x", "the echo")
    holder = ctx.holder_pid()
    try:
        info = Path(f"/proc/{holder}/fdinfo/3").read_text()
    except OSError as exc:
        raise Fail(f"cannot read the worker's fd 3 flags: {exc}") from None
    flags = next(int(line.split()[1], 8) for line in info.splitlines()
                 if line.startswith("flags:"))
    if not flags & _O_CLOEXEC:
        raise Fail(f"fd 3 is inheritable (flags 0{flags:o}): the worker's children would hold"
                   " the channel open")


# --- Handshake --------------------------------------------------------------------------------


@scenario("handshake-answer", MUST, "Handshake",
          "after the parent's 0x00 the worker writes 0x01, once, then frames")
def _handshake_answer(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(frame(b"ping"), "a frame")
    peer.expect_frame(b"ping", "the echo right after the handshake byte")


@scenario("no-write-before-handshake", MUST, "Handshake",
          "the worker writes nothing before it has read the parent's 0x00")
def _no_write_before_handshake(ctx: WorkerContext) -> None:
    peer = ctx.spawn()
    early = peer.collect(_QUIET_WINDOW)
    if early:
        raise Fail(f"the worker wrote {early[:16].hex(' ')} before the parent's handshake byte")
    peer.send(PARENT_HS, "the handshake byte")
    ctx.expect_handshake(peer)


@scenario("handshake-coalesced-frame", MUST, "Handshake",
          "a frame in the same write as the 0x00 is not lost")
def _handshake_coalesced(ctx: WorkerContext) -> None:
    peer = ctx.spawn()
    peer.send(PARENT_HS + frame(b"early"), "0x00 and a frame in one write")
    ctx.expect_handshake(peer)
    peer.expect_frame(b"early", "the echo of the frame sent with the handshake byte")


@scenario("bad-handshake-byte", MUST, "Handshake",
          "a first byte other than 0x00: exit non-zero, writing nothing")
def _bad_handshake(ctx: WorkerContext) -> None:
    peer = ctx.spawn()
    peer.send(b"\x01", "a wrong handshake byte (0x01)", allow_failure=True)
    peer.drain_until_eof(ctx.deadline.within(_PROMPT))
    ctx.expect_exit("nonzero", within=_PROMPT)
    if peer.received_total:
        raise Fail(f"the worker wrote {peer.received_total} byte(s) after a bad handshake byte"
                   f" (first: 0x{bytes(peer.inbox[:1]).hex() or '??'})")


@scenario("eof-before-handshake", MUST, "Handshake",
          "the parent ends its stream before 0x00: exit non-zero, writing nothing")
def _eof_before_handshake(ctx: WorkerContext) -> None:
    peer = ctx.spawn()
    peer.shutdown_write()
    peer.drain_until_eof(ctx.deadline.within(_PROMPT))
    ctx.expect_exit("nonzero", within=_PROMPT)
    if peer.received_total:
        raise Fail(f"the worker wrote {peer.received_total} byte(s) without a handshake")


# --- Frames -----------------------------------------------------------------------------------

_SIZES = (1, 2, 3, 4, 5, 255, 256, 4095, 4096, 65535, 65536, 65537, 1 << 20)


@scenario("echo-sizes", MUST, "Frames",
          "payloads of 1 B to 1 MiB (around 64 KiB) come back intact")
def _echo_sizes(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    for i, size in enumerate(_SIZES):
        payload = pattern(size, i)
        peer.send(frame(payload), f"a {size}-byte frame")
        peer.expect_frame(payload, f"the echo of the {size}-byte frame")


@scenario("echo-empty", MUST, "Frames",
          "zero-length frames among others come back, in order")
def _echo_empty(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    payloads = [b"", b"a", b"", b"", b"bc", b""]
    peer.send(b"".join(map(frame, payloads)), "frames")
    _echo_all(peer, payloads, "frame")


@scenario("zero-length-alone", MUST, "Frames",
          "a lone zero-length frame is echoed without further bytes arriving")
def _zero_length_alone(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(frame(b""), "a zero-length frame")
    peer.expect_frame(b"", "the echo of a lone zero-length frame")


@scenario("byte-at-a-time", MUST, "Frames",
          "frames written one byte per write are reassembled")
def _byte_at_a_time(ctx: WorkerContext) -> None:
    peer = ctx.spawn()
    payloads = [b"", b"abc", pattern(40, 7)]
    peer.send_slowly(PARENT_HS + b"".join(map(frame, payloads)), "frames, byte by byte")
    ctx.expect_handshake(peer)
    _echo_all(peer, payloads, "frame")


@scenario("coalesced-frames", MUST, "Frames",
          "1000 frames in one write come back in order")
def _coalesced(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    payloads = [pattern(i % 97, i) for i in range(1000)]
    peer.send(b"".join(map(frame, payloads)), "1000 frames in one write")
    _echo_all(peer, payloads, "frame")


@scenario("echo-64mib", MUST, "Frames", "a 64 MiB message comes back intact", timeout=90.0)
def _echo_64mib(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    payload = pattern(64 << 20, 64)
    peer.send(frame(payload), "a 64 MiB frame")
    peer.expect_frame(payload, "the echo of the 64 MiB frame")


# --- Limits -----------------------------------------------------------------------------------

_LIMIT = 1024


@scenario("at-limit", MUST, "Limits",
          f"a payload of exactly max_message_size ({_LIMIT}) is accepted")
def _at_limit(ctx: WorkerContext) -> None:
    peer = ctx.connect(limit=_LIMIT)
    payload = pattern(_LIMIT, 1)
    peer.send(frame(payload), "a frame at the limit")
    peer.expect_frame(payload, "the echo of the frame at the limit")


def _expect_broken(ctx: WorkerContext, peer: RawPeer, what: str) -> None:
    """The worker must exit 1 promptly, having echoed nothing more and said why on stderr."""
    peer.drain_until_eof(ctx.deadline.within(_PROMPT))
    ctx.expect_exit("1", within=_PROMPT)
    if peer.inbox:
        raise Fail(f"after {what} the worker wrote {len(peer.inbox)} more byte(s)")
    if not ctx.candidate.errors().strip():
        raise Fail(f"after {what} the worker exited 1 without a line on stderr")


@scenario("over-limit", MUST, "Limits",
          "a header over max_message_size: exit 1 without waiting for the payload")
def _over_limit(ctx: WorkerContext) -> None:
    peer = ctx.connect(limit=_LIMIT)
    peer.send(struct_header(_LIMIT + 1), "a header over the limit")
    _expect_broken(ctx, peer, "a header over the limit")


@scenario("max-length-header", MUST, "Limits",
          "the largest header (2**32-1) over a 1024-byte limit: exit 1")
def _max_length_header(ctx: WorkerContext) -> None:
    peer = ctx.connect(limit=_LIMIT)
    peer.send(b"\xff\xff\xff\xff", "the header 0xffffffff")
    _expect_broken(ctx, peer, "the header 0xffffffff")


@scenario("no-preallocation", MUST, "Limits",
          "a 4 GiB header with 1 KiB behind it does not make the worker take 4 GiB")
def _no_preallocation(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(frame(b"warm-up"), "a frame")
    peer.expect_frame(b"warm-up", "the echo")
    holder = ctx.holder_pid()
    before_rss, before_vm = rss_bytes(holder) or 0, _vm_size(holder)
    peer.send(b"\xff\xff\xff\xff" + bytes(1024), "a 0xffffffff header and 1 KiB")
    worst_rss, worst_vm = before_rss, before_vm
    end = ctx.deadline.within(0.5)
    while time.monotonic() < end:
        worst_rss = max(worst_rss, rss_bytes(holder) or 0)
        worst_vm = max(worst_vm, _vm_size(holder))
        peer.collect(0.02)
    peer.shutdown_write()
    grew = max(worst_rss - before_rss, worst_vm - before_vm)
    if grew > 1 << 30:
        raise Fail(f"the worker's memory grew by {grew >> 20} MiB for an announced 4 GiB"
                   f" payload (resident +{(worst_rss - before_rss) >> 20} MiB, virtual"
                   f" +{(worst_vm - before_vm) >> 20} MiB)")
    _expect_broken(ctx, peer, "a truncated 4 GiB frame")


def _vm_size(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def struct_header(length: int) -> bytes:
    return length.to_bytes(4, "big")


# --- End of stream ----------------------------------------------------------------------------


@scenario("parent-half-close", MUST, "End of stream",
          "after the parent's clean end: every echo, then the worker's end, exit 0")
def _parent_half_close(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    payloads = [pattern(100 * i, i) for i in range(10)]
    peer.send(b"".join(map(frame, payloads)), "10 frames")
    peer.shutdown_write()
    _echo_all(peer, payloads, "frame")
    peer.expect_eof("the worker's end of stream after the parent's")
    ctx.expect_exit("0")


@scenario("parent-half-close-idle", MUST, "End of stream",
          "a clean end right after the handshake: the worker ends its stream, exit 0")
def _parent_half_close_idle(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.shutdown_write()
    peer.expect_eof("the worker's end of stream after the parent's")
    ctx.expect_exit("0")


@scenario("truncated-header", MUST, "End of stream",
          "the parent's stream ends inside a header: exit 1")
def _truncated_header(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(b"\x00\x00", "2 header bytes")
    peer.shutdown_write()
    _expect_broken(ctx, peer, "a truncated header")


@scenario("truncated-payload", MUST, "End of stream",
          "the parent's stream ends inside a payload: exit 1, nothing delivered")
def _truncated_payload(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(struct_header(10) + b"abc", "3 bytes of a 10-byte frame")
    peer.shutdown_write()
    _expect_broken(ctx, peer, "a truncated payload")


@scenario("parent-full-close", SHOULD, "End of stream",
          "the parent releases its socket without finishing (alive): exit 1")
def _parent_full_close(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(frame(b"x"), "a frame")
    peer.expect_frame(b"x", "the echo")
    peer.close()
    ctx.expect_exit("1", within=_PROMPT)


# --- Worker lifecycle -------------------------------------------------------------------------


def _burst(ctx: WorkerContext, count: int, size: int) -> None:
    peer = ctx.connect()
    peer.send(frame(contract.burst_message(count, size)), "a burst request")
    for i in range(count):
        peer.expect_frame(contract.burst_payload(i, size), f"burst message #{i}")
    peer.expect_eof("the worker's end of stream after the burst")
    ctx.expect_exit("0")


@scenario("finish-then-exit", MUST, "Worker lifecycle",
          "1000 messages, finish, immediate exit 0: the parent gets all of them")
def _finish_then_exit(ctx: WorkerContext) -> None:
    _burst(ctx, 1000, 1000)


@scenario("finish-then-exit-large", MUST, "Worker lifecycle",
          "3 x 8 MiB, finish, immediate exit 0: nothing lost", timeout=40.0)
def _finish_then_exit_large(ctx: WorkerContext) -> None:
    _burst(ctx, 3, 8 << 20)


@scenario("parent-death", MUST, "Worker lifecycle",
          "the parent process is SIGKILLed: the idle worker exits 1 at once")
def _parent_death(ctx: WorkerContext) -> None:
    # A middle process is the worker's real parent; the runner holds the other end of the
    # channel, as the middle's own descriptor would be. Killing the middle, then releasing
    # that end, is what the worker sees when its parent dies.
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    middle_argv = ["/bin/sh", "-c", '"$@" >&2 & echo $!; exec sleep 3600 >&- 3<&-', "sh",
                   *ctx.argv]
    try:
        middle = Candidate(middle_argv, ctx.env_for(None), theirs, stdout_pipe=True)
    finally:
        theirs.close()
    ctx.procs.append(middle)
    ctx.proc = middle
    peer = RawPeer(mine, ctx.deadline)
    ctx.peers.append(peer)
    assert middle.stdout_pipe is not None
    worker_pid = _read_pid(middle.stdout_pipe, ctx.deadline)
    pidfd = os.pidfd_open(worker_pid)
    try:
        peer.send(PARENT_HS, "the handshake byte")
        ctx.expect_handshake(peer)
        peer.send(frame(b"x"), "a frame")
        peer.expect_frame(b"x", "the echo")
        os.kill(middle.pid, signal.SIGKILL)
        middle.expect_exit(ctx.deadline, "the middle process")
        peer.close()
        killed_at = time.monotonic()
        code = _wait_orphan(worker_pid, pidfd, ctx.deadline.within(_PROMPT))
    finally:
        os.close(pidfd)
    if code is None:
        raise Fail(f"the worker did not exit within {_PROMPT:g} s of its parent's death")
    if code != 1:
        raise Fail(f"expected exit 1 when the parent died, got {describe_status(code)}")
    took = time.monotonic() - killed_at
    if took > _PROMPT:
        raise Fail(f"the worker took {took:.1f} s to exit after its parent died")


def _read_pid(fd: int, deadline: Deadline) -> int:
    data = b""
    while b"\n" not in data:
        ready, _, _ = select.select([fd], [], [], deadline.left())
        if not ready:
            raise Fail("the middle process did not report the worker's pid")
        chunk = os.read(fd, 64)
        if not chunk:
            raise Fail("the middle process exited before starting the worker")
        data += chunk
    return int(data.split(b"\n", 1)[0])


def _wait_orphan(pid: int, pidfd: int, end: float) -> int | None:
    """The exit status of ``pid``, re-parented to this (subreaper) process."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            raise Fail("cannot observe the orphaned worker's exit status (the runner is not"
                       " a child subreaper)") from None
        if got:
            return os.waitstatus_to_exitcode(status)
        left = end - time.monotonic()
        if left <= 0:
            return None
        poller.poll(max(1, int(left * 1000)))


@scenario("broken-report-line", SHOULD, "Worker lifecycle",
          "a broken channel is reported as one stderr line 'worker-process: channel to the"
          " parent broke: ...'")
def _broken_report_line(ctx: WorkerContext) -> None:
    peer = ctx.connect()
    peer.send(struct_header(10) + b"abc", "3 bytes of a 10-byte frame")
    peer.shutdown_write()
    _expect_broken(ctx, peer, "a truncated payload")
    lines = [line for line in ctx.candidate.errors().splitlines() if line.strip()]
    prefix = "worker-process: channel to the parent broke: "
    if not any(line.startswith(prefix) for line in lines):
        shown = repr(lines[-1][:80]) if lines else "nothing"
        raise Fail(f"no stderr line starts with {prefix.strip()!r} (last line: {shown})")

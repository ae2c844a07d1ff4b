"""Requests, serve() and pools over real processes, asyncio and blocking (spec/requests.md)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import worker_process
from worker_process import (
    ClosedResourceError,
    HandshakeTimeoutError,
    NoReplyError,
    Pool,
    PoolError,
    RemoteError,
    ReplyFormatError,
    RequestConflictError,
    RequestTimeoutError,
    WorkerExitError,
    WorkerStartError,
    create_worker,
    decode_reply,
    sync,
)

WORKERS = Path(__file__).parent / "workers"
AIO = str(WORKERS / "pool_serve_aio.py")
SYNC = str(WORKERS / "pool_serve_sync.py")
ECHO = str(WORKERS / "aio_echo.py")
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def gone(pid: int) -> bool:
    """The process no longer exists (reaped), or is a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def children() -> set[int]:
    me = os.getpid()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.add(int(name))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


@pytest.fixture(autouse=True)
def _no_leaked_children() -> Iterator[None]:
    before = children()
    yield
    left = children() - before
    assert not left, f"worker processes left behind: {left}"


# --- request / serve ----------------------------------------------------------------------------


@pytest.mark.parametrize("worker", [AIO, SYNC], ids=["aio-serve", "sync-serve"])
def test_request_pipelined_in_order(worker: str) -> None:
    async def main() -> None:
        async with await create_worker(worker) as w:
            replies = await asyncio.gather(*(w.request(b"echo:%d" % i) for i in range(200)))
            assert [decode_reply(r) for r in replies] == [b"%d" % i for i in range(200)]
            with pytest.raises(RemoteError) as info:
                decode_reply(await w.request(b"raise:bad input"))
            assert info.value.type == "ValueError"
            assert info.value.message == "bad input"
            assert "pool_handler.py" in info.value.traceback
            assert decode_reply(await w.request(b"echo:still serving")) == b"still serving"
        assert w.returncode == 0

    run(main())


def test_request_works_with_any_one_for_one_worker() -> None:
    async def main() -> None:
        async with await create_worker(ECHO) as w:
            assert await w.request(b"\x05raw") == b"\x05raw"
            with pytest.raises(ReplyFormatError):
                decode_reply(await w.request(b"\x05raw"))
            # Once every reply is in, recv() is free again.
            await w.send(b"plain")
            assert await w.recv() == b"plain"

    run(main())


def test_request_conflicts_and_timeout() -> None:
    async def main() -> None:
        async with await create_worker(AIO) as w:
            slow = asyncio.ensure_future(w.request(b"sleep:0.5:slow"))
            await asyncio.sleep(0)
            with pytest.raises(RequestConflictError):
                await w.recv()
            with pytest.raises(RequestConflictError):
                w.onmessage = lambda message: None
            assert decode_reply(await slow) == b"slow"
            with pytest.raises(RequestTimeoutError) as info:
                await w.request(b"sleep:1:late", timeout=0.05)
            assert info.value.pid == w.pid
            # The late reply is dropped: the next request gets its own.
            assert decode_reply(await w.request(b"echo:mine")) == b"mine"
            w.onmessage = lambda message: None
            with pytest.raises(RequestConflictError):
                await w.request(b"echo:x")
            w.onmessage = None
            with pytest.raises(TypeError):
                await w.request("not bytes")  # type: ignore[arg-type]
            assert decode_reply(await w.request(b"echo:in step")) == b"in step"

    run(main())


def test_request_after_death_explains_it() -> None:
    async def main() -> None:
        async with await create_worker(AIO) as w:
            with pytest.raises(NoReplyError) as info:
                await w.request(b"exit:7")
            assert info.value.returncode == 7
            assert isinstance(info.value.__cause__, WorkerExitError)
            assert "exited with code 7 before replying" in str(info.value)
            with pytest.raises(NoReplyError):  # at once, the same way
                await w.request(b"echo:x")
            killed = await create_worker(AIO)
            try:
                with pytest.raises(NoReplyError) as info:
                    await killed.request(b"die")
                assert info.value.signal == signal.SIGKILL
            finally:
                await killed.close()

    run(main())


def test_request_on_a_closed_worker_fails_at_once() -> None:
    async def main() -> None:
        worker = await create_worker(AIO)
        await worker.close()
        for _ in range(2):
            results = await asyncio.gather(
                *(worker.request(b"echo:x") for _ in range(3)), return_exceptions=True
            )
            assert all(isinstance(r, ClosedResourceError | NoReplyError) for r in results)

    run(main(), timeout=30)


def test_sync_request_from_threads() -> None:
    with sync.create_worker(SYNC) as w:
        results: dict[int, bytes] = {}

        def call(i: int) -> None:
            results[i] = decode_reply(w.request(b"echo:%d" % i, timeout=30))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {i: b"%d" % i for i in range(16)}
        with pytest.raises(RequestTimeoutError):
            w.request(b"sleep:1:late", timeout=0.05)
        with pytest.raises(RequestConflictError):
            w.recv(timeout=1)
        assert decode_reply(w.request(b"echo:mine")) == b"mine"
        with pytest.raises(TypeError):
            w.request("not bytes")  # type: ignore[arg-type]
        assert decode_reply(w.request(b"echo:in step")) == b"in step"
        with pytest.raises(NoReplyError) as info:
            w.request(b"exit:3")
        assert info.value.returncode == 3


# --- pools --------------------------------------------------------------------------------------


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=30))
def test_map_keeps_input_order_under_random_latency(delays: list[int]) -> None:
    inputs = [b"sleep:%f:%d" % (d / 1000, i) for i, d in enumerate(delays)]
    expected = [b"%d" % i for i in range(len(delays))]

    async def main() -> list[bytes]:
        async with Pool(AIO, size=3) as pool:
            ordered = [r async for r in pool.map(inputs, window=4)]
            unordered = [r async for r in pool.imap_unordered(inputs)]
            assert sorted(unordered) == sorted(expected)
            return ordered

    assert run(main()) == expected
    with sync.Pool(SYNC, size=3, timeout=60) as pool:
        assert list(pool.map(inputs, window=4)) == expected


def test_map_streams_with_bounded_in_flight_work() -> None:
    taken = 0

    def endless() -> Iterator[bytes]:
        nonlocal taken
        while True:
            taken += 1
            yield b"echo:%d" % taken

    async def main() -> None:
        async with Pool(SYNC, size=2) as pool:
            got = 0
            async for _ in pool.map(endless(), window=8):
                got += 1
                if got == 500:
                    break
            assert taken <= 500 + 8

    run(main())
    taken = 0
    with sync.Pool(SYNC, size=2, timeout=60) as pool:
        for got, _ in enumerate(pool.map(endless(), window=8), 1):
            if got == 500:
                break
        assert taken <= 500 + 8


@pytest.mark.parametrize("api", ["aio", "sync"])
def test_crash_is_retried_then_fails_with_the_death(api: str, tmp_path: Path) -> None:
    marker = str(tmp_path / "died").encode()
    if api == "aio":

        async def main() -> None:
            async with Pool(AIO, size=2) as pool:
                assert await pool.submit(b"die-once:" + marker) == b"survived"
                with pytest.raises(NoReplyError) as info:
                    await pool.submit(b"die")
                assert info.value.signal == signal.SIGKILL
                assert "was killed by SIGKILL before replying" in str(info.value)
                assert [r async for r in pool.map([b"echo:a", b"echo:b"])] == [b"a", b"b"]
            no_retry = Pool(AIO, size=1, max_retries=0)
            async with no_retry:
                with pytest.raises(NoReplyError):
                    await no_retry.submit(b"die-once:" + marker + b"2")

        run(main())
    else:
        with sync.Pool(SYNC, size=2, timeout=60) as pool:
            assert pool.submit(b"die-once:" + marker).result(timeout=60) == b"survived"
            with pytest.raises(NoReplyError) as info:
                pool.submit(b"exit:9").result(timeout=60)
            assert info.value.returncode == 9
            assert list(pool.map([b"echo:a", b"echo:b"])) == [b"a", b"b"]


@pytest.mark.parametrize("api", ["aio", "sync"])
def test_timeout_kills_and_replaces(api: str) -> None:
    if api == "aio":

        async def main() -> tuple[int, list[int]]:
            async with Pool(AIO, size=1) as pool:
                assert pool.queued == 0
                with pytest.raises(RequestTimeoutError) as info:
                    await pool.submit(b"sleep:60:late", timeout=0.3)
                assert await pool.submit(b"echo:next") == b"next"
                return info.value.pid, pool.pids

        pid, pids = run(main())
    else:
        with sync.Pool(SYNC, size=1, timeout=0.3) as pool:
            assert pool.queued == 0 and len(pool.pids) == 1
            with pytest.raises(RequestTimeoutError) as info:
                pool.submit(b"sleep:60:late").result(timeout=60)
            assert pool.submit(b"echo:next", timeout=None).result(timeout=60) == b"next"
            pid, pids = info.value.pid, pool.pids
    assert pid not in pids
    assert gone(pid)


def test_max_requests_per_worker_recycles() -> None:
    async def main() -> set[int]:
        async with Pool(AIO, size=1, max_requests_per_worker=2, concurrency=1) as pool:
            return {int(await pool.submit(b"pid")) for _ in range(6)}

    pids = run(main())
    assert len(pids) == 3
    assert all(gone(pid) for pid in pids)
    with sync.Pool(SYNC, size=1, max_requests_per_worker=3, timeout=60) as pool:
        assert len({int(r) for r in pool.map([b"pid"] * 9)}) == 3


def test_startup_failures_fail_fast(tmp_path: Path) -> None:
    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(WorkerStartError):
            async with Pool(str(tmp_path / "missing.py"), size=3):
                pass
        with pytest.raises(HandshakeTimeoutError):
            async with Pool(str(WORKERS / "silent.py"), size=2, handshake_timeout=0.5):
                pass
        assert time.monotonic() - start < 30
        # A replacement that cannot start breaks the pool instead of restarting in a loop.
        script = tmp_path / "worker.py"
        script.write_text(Path(AIO).read_text().replace("from pool_handler", "from handler"))
        (tmp_path / "handler.py").write_text((WORKERS / "pool_handler.py").read_text())
        async with Pool(str(script), size=1, max_retries=0) as pool:
            (tmp_path / "handler.py").unlink()
            dying = pool.submit(b"die")
            queued = [pool.submit(b"echo:%d" % i) for i in range(3)]
            with pytest.raises(NoReplyError):
                await dying
            for future in queued:
                with pytest.raises(PoolError):
                    await future
            with pytest.raises(PoolError) as info:
                await pool.submit(b"echo:later")
            assert info.value.reason == "broken"
            assert isinstance(info.value.__cause__, WorkerStartError)

    run(main())
    before = open_fds()
    with pytest.raises(WorkerStartError), sync.Pool(str(tmp_path / "missing.py"), size=2):
        pass
    assert open_fds() == before
    assert not [t for t in threading.enumerate() if t.name == "worker-process-pool"]


@pytest.mark.parametrize("api", ["aio", "sync"])
@pytest.mark.parametrize("how", ["close", "terminate"])
def test_close_and_terminate_leave_no_process_or_fd(api: str, how: str) -> None:
    if api == "aio":

        async def main() -> None:
            before = open_fds()
            pool = await Pool(AIO, size=3).start()
            pids = pool.pids
            busy = pool.submit(b"sleep:60:x") if how == "terminate" else None
            assert [r async for r in pool.map([b"echo:1", b"echo:2"])] == [b"1", b"2"]
            await getattr(pool, how)()
            if busy is not None:
                with pytest.raises(PoolError):
                    await busy
            assert len(pids) == 3 and all(gone(pid) for pid in pids)
            assert open_fds() == before
            with pytest.raises(PoolError) as refused:
                pool.submit(b"echo:late")
            assert refused.value.reason == REFUSAL[how]

        run(main())
    else:
        before = open_fds()
        pool = sync.Pool(SYNC, size=3, timeout=60).start()
        pids = pool.pids
        assert list(pool.map([b"echo:1", b"echo:2"])) == [b"1", b"2"]
        getattr(pool, how)()
        assert len(pids) == 3 and all(gone(pid) for pid in pids)
        assert open_fds() == before
        with pytest.raises(PoolError) as refused:
            pool.submit(b"echo:late")
        assert refused.value.reason == REFUSAL[how]


#: The reason a pool gives for refusing a request after ``close()``/``terminate()``.
REFUSAL = {"close": "closed", "terminate": "terminated"}


DRIVER = [sys.executable, str(WORKERS / "pool_driver.py")]
REAPER = Path(__file__).parent / "faults" / "programs" / "reaper.py"


@pytest.mark.parametrize("api", ["aio", "sync"])
def test_sigint_reaps_every_worker(api: str) -> None:
    driver = subprocess.Popen(
        [*DRIVER, api], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()
        assert line, f"the driver printed no pids: {driver.communicate(timeout=30)[1]}"
        pids = json.loads(line)["pids"]
        assert len(pids) == 2
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=30)
    finally:
        driver.kill()
        driver.wait()
    assert driver.returncode != 0 and "KeyboardInterrupt" in err, err
    # The driver reaped its workers before exiting.
    assert all(gone(pid) for pid in pids)


@pytest.mark.parametrize("api", ["aio", "sync"])
def test_parent_death_makes_every_worker_exit_1(api: str) -> None:
    # The reaper (a subreaper) SIGKILLs the driver once it printed its workers' pids, then
    # reaps the orphaned workers and reports their exit codes.
    report = json.loads(
        subprocess.run(
            [sys.executable, str(REAPER), "--kill-on", "pids", "--", *DRIVER, api],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    assert report["killed"] and not report["timed_out"], report
    pids = next(e["pids"] for e in report["events"] if isinstance(e, dict))
    assert len(pids) == 2
    assert {pid: report["reaped"][str(pid)]["code"] for pid in pids} == {pid: 1 for pid in pids}


def test_a_cancelled_blocking_future_cancels_its_request(tmp_path: Path) -> None:
    # Were the request to run anyway, its worker would create the marker and kill itself.
    marker = tmp_path / "ran"
    with sync.Pool(SYNC, size=1, concurrency=1, timeout=60) as pool:
        busy = pool.submit(b"sleep:0.5:busy")
        waiting = pool.submit(b"die-once:" + bytes(marker))
        deadline = time.monotonic() + 10
        while pool.queued != 1:  # handed to the pool, waiting for the busy worker
            assert time.monotonic() < deadline, "the second request never reached the pool"
            time.sleep(0.001)
        pids = pool.pids
        assert waiting.cancel()
        assert busy.result(timeout=30) == b"busy"
        assert pool.submit(b"echo:after").result(timeout=30) == b"after"
        assert waiting.cancelled() and not marker.exists() and pool.pids == pids


def test_a_bad_request_is_refused_before_it_reaches_a_worker() -> None:
    async def main() -> None:
        async with Pool(AIO, size=1) as pool:
            pids = pool.pids
            with pytest.raises(TypeError):
                pool.submit("text")  # type: ignore[arg-type]
            assert await pool.submit(memoryview(b"echo:ok")) == b"ok"
            assert pool.pids == pids  # no worker was lost over it

    run(main())
    with sync.Pool(SYNC, size=1, timeout=60) as pool, pytest.raises(TypeError):
        pool.submit(42)  # type: ignore[arg-type]


def test_bad_options() -> None:
    for options in (
        {"size": 0},
        {"max_retries": -1},
        {"timeout": 0},
        {"concurrency": 0},
        # create_worker's options are checked when the pool is made, not at its first start
        {"handshake_timeout": -1},
        {"max_message_size": -1},
        {"stderr_tail": 0},
        {"stderr_tail": 5, "stderr": subprocess.DEVNULL},
    ):
        with pytest.raises(ValueError):
            Pool(AIO, **options)
        with pytest.raises(ValueError):
            sync.Pool(AIO, **options)


@pytest.mark.parametrize("make", [Pool, sync.Pool], ids=["aio", "sync"])
def test_a_misspelt_option_is_named_at_once(make: Any) -> None:
    with pytest.raises(TypeError, match=r"^Pool\(\) got an unexpected keyword argument 'sizee'$"):
        make(AIO, sizee=2)


def test_public_names() -> None:
    names: dict[str, Any] = {name: getattr(worker_process, name) for name in worker_process.__all__}
    assert names["Pool"] is Pool and callable(names["serve"])
    assert sync.Pool.__name__ == "Pool" and callable(sync.serve)


def test_one_pool_spans_hosts_with_remotes() -> None:
    # remote=["env"] runs the relay pair on this host: the worker's parent is `serve`.
    env = {**os.environ, "WORKER_PROCESS_REMOTE_PYTHON": sys.executable}
    with sync.Pool(SYNC, size=2, concurrency=1, remotes=[None, ["env"]], env=env) as pool:
        parents = {pool.submit(b"parent:").result() for _ in range(2)} | set(
            pool.map(b"parent:" for _ in range(20))
        )
        relays = [pid for pid in pool.pids if b" relay " in _cmdline(pid)]
        assert len(pool.pids) == 2 and len(relays) == 1, [_cmdline(p) for p in pool.pids]
    assert any(b"worker_process serve" in p for p in parents), parents
    assert any(b"worker_process serve" not in p for p in parents), parents


def test_remotes_is_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        sync.Pool(SYNC, size=1, remotes=[None], remote=["env"])
    with pytest.raises(ValueError, match="non-empty"):
        sync.Pool(SYNC, size=1, remotes=[])


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ")


@pytest.mark.parametrize("bad", [math.nan, -1, 0, True, "1"])
def test_request_timeout_is_checked_before_anything_is_sent(bad: object) -> None:
    async def main() -> None:
        async with await create_worker(AIO) as w:
            with pytest.raises(ValueError, match="timeout"):
                await w.request(b"echo:refused", timeout=bad)  # type: ignore[arg-type]
            # Nothing was sent: the next reply is the next request's.
            assert decode_reply(await w.request(b"echo:next", timeout=math.inf)) == b"next"

    run(main())
    with sync.create_worker(SYNC) as w:
        with pytest.raises(ValueError, match="timeout"):
            w.request(b"echo:refused", timeout=bad)  # type: ignore[arg-type]
        assert decode_reply(w.request(b"echo:next", timeout=math.inf)) == b"next"
    for pool_timeout in (bad, math.nan):
        with pytest.raises(ValueError, match="timeout"):
            Pool(AIO, size=1, timeout=pool_timeout)  # type: ignore[arg-type]

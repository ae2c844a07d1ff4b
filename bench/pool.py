#!/usr/bin/env python3
"""Pool throughput: N jobs of ``sha256(zlib.compress(chunk))`` on 128 KiB chunks, with
worker-process's pools (asyncio and blocking) beside ``multiprocessing.Pool`` and
``concurrent.futures.ProcessPoolExecutor``, in one run, with ratios.

    .venv/bin/python bench/pool.py                  # 2,000 jobs x 128 KiB, 3 runs each
    .venv/bin/python bench/pool.py --smoke          # 100 jobs, 1 run
    .venv/bin/python bench/pool.py --light          # sha256 alone: the pools' own cost

Every pool has ``--workers`` processes (default: the CPU count) and is warmed up (one job per
worker) before the clock starts; the clock stops when the last digest is in the parent, in
input order. Inputs come from a generator, as a user would write it; every peer gets the same
chunks and the digests are checked. Peers run in rotating order; the table shows medians.

Beside the wall time, the CPU time of the parent and its workers (reaped: ``RUSAGE_CHILDREN``)
per job, over the whole run of a peer (start-up included): on a machine shared with other
work, the wall times move with the load, the CPU times much less.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "workers"))

import pool_job  # noqa: E402

import worker_process  # noqa: E402
from worker_process import sync  # noqa: E402

JOB_WORKER = str(HERE / "workers" / "pool_job.py")


def chunks(count: int, size: int) -> Iterator[bytes]:
    """Distinct pseudo-random chunks (the same for every peer)."""
    for n in range(count):
        yield random.Random(n).randbytes(size)


class Job:
    """The job and the worker's arguments (``--light`` changes them)."""

    function: Callable[[bytes], bytes] = pool_job.job
    args: list[str] = []  # noqa: RUF012


def run_wp_aio(workers: int, count: int, size: int) -> tuple[float, list[bytes]]:
    async def main() -> tuple[float, list[bytes]]:
        async with worker_process.Pool(JOB_WORKER, Job.args, size=workers) as pool:
            await asyncio.gather(*(pool.submit(b"warm-up") for _ in range(workers)))
            start = time.perf_counter()
            digests = [d async for d in pool.map(chunks(count, size))]
            return time.perf_counter() - start, digests

    return asyncio.run(main())


def run_wp_sync(workers: int, count: int, size: int) -> tuple[float, list[bytes]]:
    with sync.Pool(JOB_WORKER, Job.args, size=workers) as pool:
        for future in [pool.submit(b"warm-up") for _ in range(workers)]:
            future.result()
        start = time.perf_counter()
        digests = list(pool.map(chunks(count, size)))
        return time.perf_counter() - start, digests


def run_mp(workers: int, count: int, size: int) -> tuple[float, list[bytes]]:
    job = Job.function
    with multiprocessing.Pool(workers) as pool:
        pool.map(job, [b"warm-up"] * workers, chunksize=1)
        start = time.perf_counter()
        digests = list(pool.imap(job, chunks(count, size)))
        return time.perf_counter() - start, digests


def run_ppe(workers: int, count: int, size: int) -> tuple[float, list[bytes]]:
    job = Job.function
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        list(pool.map(job, [b"warm-up"] * workers))
        start = time.perf_counter()
        digests = list(pool.map(job, chunks(count, size)))
        return time.perf_counter() - start, digests


PEERS: dict[str, tuple[str, Callable[[int, int, int], tuple[float, list[bytes]]]]] = {
    "wp-aio": ("worker_process.Pool (asyncio)", run_wp_aio),
    "wp-sync": ("worker_process.sync.Pool", run_wp_sync),
    "mp": ("multiprocessing.Pool.imap", run_mp),
    "ppe": ("ProcessPoolExecutor.map", run_ppe),
}


def _cpu() -> float:
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128 * 1024)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="100 jobs, 1 run")
    parser.add_argument("--light", action="store_true", help="sha256 alone, no zlib")
    args = parser.parse_args()
    if args.light:
        Job.function, Job.args = pool_job.light_job, ["light"]
    job = Job.function
    if args.smoke:
        args.jobs, args.runs = 100, 1
    expected = [job(chunk) for chunk in chunks(args.jobs, args.size)]
    times: dict[str, list[float]] = {key: [] for key in PEERS}
    cpu: dict[str, list[float]] = {key: [] for key in PEERS}
    order = list(PEERS)
    for run in range(args.runs):
        for key in order[run % len(order) :] + order[: run % len(order)]:
            before = _cpu()
            seconds, digests = PEERS[key][1](args.workers, args.jobs, args.size)
            cpu[key].append((_cpu() - before) / args.jobs)
            if digests != expected:
                print(f"{key}: wrong digests", file=sys.stderr)
                return 1
            times[key].append(seconds)
    print(
        f"{args.jobs} jobs x {args.size // 1024} KiB"
        f" ({'sha256' if args.light else 'zlib + sha256'}), {args.workers} workers,"
        f" median of {args.runs} run(s), on {os.cpu_count()} CPUs"
    )
    ppe = statistics.median(times["ppe"])
    ppe_cpu = statistics.median(cpu["ppe"])
    header = ("peer", "seconds", "jobs/s", "vs PPE", "CPU ms/job", "vs PPE")
    print("{:32} {:>8} {:>8} {:>7} {:>11} {:>7}".format(*header))
    for key, (label, _) in PEERS.items():
        median = statistics.median(times[key])
        per_job = statistics.median(cpu[key])
        print(
            f"{label:32} {median:8.3f} {args.jobs / median:8.0f} {ppe / median:6.2f}x"
            f" {per_job * 1000:11.3f} {ppe_cpu / per_job:6.2f}x"
        )
    best = max(ppe / statistics.median(times[k]) for k in ("wp-aio", "wp-sync"))
    print(f"target: worker-process >= 1.5x ProcessPoolExecutor: {best:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

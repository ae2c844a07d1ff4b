#!/usr/bin/env python3
"""Pool throughput: N jobs on 128 KiB chunks with worker-process's pools (asyncio and
blocking) beside ``multiprocessing.Pool`` and ``concurrent.futures.ProcessPoolExecutor``, in
one run, with ratios. Two jobs: *light* (``sha256(chunk)``: what each pool itself costs per
job shows) and *heavy* (``sha256(zlib.compress(chunk))``: CPU-bound, every pool near the CPU
floor, the jobs' own CPU time spread over the CPUs).

    .venv/bin/python bench/pool.py                  # both jobs, 2,000 x 128 KiB, 3 runs each
    .venv/bin/python bench/pool.py --job light      # one job
    .venv/bin/python bench/pool.py --smoke          # 100 jobs, 1 run

Every pool has ``--workers`` processes (default: the CPU count) and is warmed up (one job per
worker) before the clock starts; the clock stops when the last digest is in the parent, in
input order. Inputs come from a generator, as a user would write it (slices of one random
block); every peer gets the same chunks and the digests are checked. Peers run in rotating
order; the table shows medians.

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
    """Distinct chunks, the same for every peer: slices of one pseudo-random block (a slice
    costs microseconds; generating 128 KiB of random bytes per job would cost more than the
    pools themselves and be timed with them)."""
    step = 61
    block = _block(size + count * step)
    for n in range(count):
        yield block[n * step : n * step + size]


def _block(size: int, cache: dict[int, bytes] = {}) -> bytes:  # noqa: B006 - a cache
    if size not in cache:
        cache.clear()
        cache[size] = random.Random(size).randbytes(size)
    return cache[size]


class Job:
    """The job being measured, and the worker's arguments (set per job by ``main``)."""

    function: Callable[[bytes], bytes] = pool_job.job
    args: list[str] = []  # noqa: RUF012


#: name -> (what it does, function, worker arguments)
JOBS: dict[str, tuple[str, Callable[[bytes], bytes], list[str]]] = {
    "light": ("sha256: the pools' own cost shows", pool_job.light_job, ["light"]),
    "heavy": ("zlib + sha256: CPU-bound", pool_job.job, []),
}


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


def measure(job_name: str, args: argparse.Namespace) -> None:
    """Run every peer on one job and print its table and target line."""
    what, function, worker_args = JOBS[job_name]
    Job.function, Job.args = function, worker_args
    started = time.process_time()
    expected = [function(chunk) for chunk in chunks(args.jobs, args.size)]
    job_cpu = (time.process_time() - started) / args.jobs
    # No pool can finish sooner than the jobs' own CPU time spread over every CPU.
    floor = job_cpu * args.jobs / min(args.workers, os.cpu_count() or 1)
    times: dict[str, list[float]] = {key: [] for key in PEERS}
    cpu: dict[str, list[float]] = {key: [] for key in PEERS}
    order = list(PEERS)
    for run in range(args.runs):
        for key in order[run % len(order) :] + order[: run % len(order)]:
            before = _cpu()
            seconds, digests = PEERS[key][1](args.workers, args.jobs, args.size)
            cpu[key].append((_cpu() - before) / args.jobs)
            if digests != expected:
                raise SystemExit(f"{key}: wrong digests")
            times[key].append(seconds)
    print(
        f"\n{job_name} job ({what}): {args.jobs} jobs x {args.size // 1024} KiB,"
        f" {args.workers} workers, median of {args.runs} run(s), on {os.cpu_count()} CPUs;"
        f" the job alone costs {job_cpu * 1000:.3f} ms of CPU, so no pool can take less"
        f" than {floor:.3f} s (the CPU floor)"
    )
    ppe = statistics.median(times["ppe"])
    ppe_cpu = statistics.median(cpu["ppe"])
    header = ("peer", "seconds", "jobs/s", "vs PPE", "vs floor", "CPU ms/job", "vs PPE")
    print("{:32} {:>8} {:>8} {:>7} {:>8} {:>11} {:>7}".format(*header))
    for key, (label, _) in PEERS.items():
        median = statistics.median(times[key])
        per_job = statistics.median(cpu[key])
        print(
            f"{label:32} {median:8.3f} {args.jobs / median:8.0f} {ppe / median:6.2f}x"
            f" {median / floor:7.2f}x {per_job * 1000:11.3f} {ppe_cpu / per_job:6.2f}x"
        )
    for key in ("wp-aio", "wp-sync"):
        got = ppe / statistics.median(times[key])
        verdict = "met" if got >= 1.5 else "MISSED"
        if got < 1.5 and ppe / floor < 1.5:
            verdict += (
                f": out of reach, ProcessPoolExecutor itself is only {ppe / floor:.2f}x"
                " the CPU floor"
            )
        print(f"target: {PEERS[key][0]} >= 1.5x ProcessPoolExecutor: {got:.2f}x -> {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128 * 1024)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job", choices=[*JOBS, "both"], default="both")
    parser.add_argument("--smoke", action="store_true", help="100 jobs, 1 run")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.runs = 100, 1
    print(f"load average {os.getloadavg()[0]:.2f} before")
    for name in JOBS if args.job == "both" else [args.job]:
        measure(name, args)
    print(f"load average {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A pool's worker processes: starting them (``remotes`` taken in turn), killing one,
closing one cleanly, and reaping them all. What a pool does with its workers' requests is in
:mod:`._pool`; this module only keeps the processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
from collections.abc import Callable, Sequence
from typing import Any

from ._parent import Worker, create_worker
from ._pool_tasks import Slot, Task, retrieve

__all__ = ["PoolWorkers"]

Remote = str | Sequence[str] | None


class PoolWorkers:
    """The workers of one pool, each in a :class:`~._pool_tasks.Slot`. ``on_started(slot)``
    is called when a worker is up, ``on_failed(exc)`` when one could not start, and
    ``on_idle_exit(slot)`` when a started worker exits.

    Raises (constructor):
        ValueError: ``remotes`` is empty or a string, or given with ``remote=``.
    """

    def __init__(
        self,
        file: str | os.PathLike[str],
        args: Sequence[str],
        options: dict[str, Any],
        remotes: Sequence[Remote] | None,
        *,
        on_started: Callable[[Slot], None],
        on_failed: Callable[[BaseException], None],
        on_exit: Callable[[Slot], None],
    ) -> None:
        if remotes is not None:
            if isinstance(remotes, str) or not remotes:
                raise ValueError("remotes must be a non-empty sequence of remote= targets")
            if "remote" in options:
                raise ValueError("give remote= (every worker) or remotes= (in turn), not both")
        self._file = file
        self._args = list(args)
        self._options = options
        self._remotes = None if remotes is None else list(remotes)
        self._on_started = on_started
        self._on_failed = on_failed
        self._on_exit = on_exit
        self._started = 0
        #: The slots of the workers that are starting or running.
        self.slots: set[Slot] = set()
        self._closing: set[asyncio.Task[Any]] = set()

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [s.worker.pid for s in self.slots if s.worker is not None and not s.dead]

    def new_slot(self) -> Slot:
        """Start one more worker; its slot is in :attr:`slots` at once."""
        slot = Slot()
        self.slots.add(slot)
        slot.starting = asyncio.get_running_loop().create_task(self._start(slot))
        slot.starting.add_done_callback(retrieve)
        return slot

    async def _start(self, slot: Slot) -> None:
        try:
            options = self._options
            if self._remotes is not None:
                remote = self._remotes[self._started % len(self._remotes)]
                options = {**options, "remote": remote}
            self._started += 1
            worker = await create_worker(self._file, self._args, **options)
        except BaseException as exc:
            slot.starting = None
            self.slots.discard(slot)
            self._on_failed(exc)
            raise
        slot.starting = None
        slot.worker = worker
        # Reaped once its exit status is in; closing releases the rest.
        self._keep(asyncio.get_running_loop().create_task(worker.wait()))
        worker.lifetime.add_done_callback(lambda _: self._on_exit(slot))
        self._on_started(slot)

    def kill(self, slot: Slot) -> list[Task]:
        """Kill a slot's worker (SIGKILL) and forget the slot; return the requests it held."""
        tasks = slot.take_all()
        self.slots.discard(slot)
        if slot.worker is not None:
            slot.worker.kill(_signal.SIGKILL)
            self.close_worker(slot.worker)
        return tasks

    def retire(self, slot: Slot) -> None:
        """Close a slot's worker cleanly (it holds no request) and forget the slot."""
        slot.dead = True
        self.slots.discard(slot)
        assert slot.worker is not None
        self.close_worker(slot.worker)

    def close_worker(self, worker: Worker) -> None:
        """End ``worker`` (``close()``: finish, wait, then signals) in the background."""
        task = asyncio.get_running_loop().create_task(worker.close())
        task.add_done_callback(retrieve)
        self._keep(task)

    async def close_all(self) -> None:
        """Close every worker cleanly (waiting for those still starting) and reap them."""
        for slot in list(self.slots):
            if slot.starting is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(slot.starting)
            if slot.worker is None or slot.dead:
                continue
            self.retire(slot)
        await self.reap_all()

    async def reap_all(self, starting: Sequence[asyncio.Task[None]] = ()) -> None:
        """Wait for the workers in ``starting`` to be up (the pool kills them then), and
        until every worker ever started has been closed and reaped."""
        for start in starting:
            with contextlib.suppress(BaseException):
                await asyncio.shield(start)
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

"""A long-running loop owned by a service's lifespan: started once, cancelled on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

log = logging.getLogger("yiwang.tasks")


class BackgroundLoop(ABC):
    """Subclasses implement ``run()``; the app's lifespan calls ``start()`` and ``stop()``."""

    task_name = "background"
    _task: asyncio.Task | None = None

    @abstractmethod
    async def run(self) -> None:
        """The loop itself; it runs until cancelled."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        await cancel_task(self._task)


async def cancel_task(task: asyncio.Task | None, *, attempts: int = 20, wait: float = 0.5) -> None:
    """Cancel a task and wait for it, swallowing its cancellation or last error.

    A library call inside the task may swallow one cancellation (and the loop then goes on), so
    the task is cancelled again until it ends — bounded, so a shutdown never hangs on it.
    """
    if task is None:
        return
    for _ in range(attempts):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=wait)
    if task.done():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
    else:
        log.error("task %s did not stop after %d cancellations; leaving it", task.get_name(), attempts)

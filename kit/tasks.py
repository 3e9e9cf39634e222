"""A long-running loop owned by a service's lifespan: started once, cancelled on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod


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


async def cancel_task(task: asyncio.Task | None) -> None:
    """Cancel a task and wait for it, swallowing its cancellation or last error."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

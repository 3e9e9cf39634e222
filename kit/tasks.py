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


class BatchLoop(BackgroundLoop):
    """A loop that works in batches: ``batch()`` returns how many items it handled; a full batch
    goes again at once, a partial one waits ``linger`` (so under load the next batch gathers), an
    empty one waits for ``wake()`` or ``poll_interval``; an error retries with doubling backoff.
    The outbox relay and the notification dispatcher are such loops."""

    batch_size = 100
    poll_interval = 1.0
    linger = 0.0
    max_backoff = 5.0
    _wake: asyncio.Event | None = None

    @abstractmethod
    async def batch(self) -> int:
        """Handle one batch; how many items it handled. Raises while a dependency is away."""

    def wake(self) -> None:
        """Start the next batch now instead of after ``poll_interval``."""
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()

    async def run(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        backoff = 0.1
        while True:
            self._wake.clear()  # before reading: a wake during the batch starts the next one
            try:
                handled = await self.batch()
                backoff = 0.1
                if handled >= self.batch_size:
                    continue  # more waiting: go again at once
                if handled and self.linger:
                    await asyncio.sleep(self.linger)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dependency away: nothing is lost, the rows wait
                log.warning("%s: %s; retrying in %.2fs", self.task_name, type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                pass

"""Work the gateway starts without awaiting it (cache writes of big batches, shadow calls,
coalesced batches), held until done and awaited at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Waits for the work running now (errors are the work's own business)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

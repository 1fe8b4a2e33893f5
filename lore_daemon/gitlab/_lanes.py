"""Request lanes: interactive requests go ahead of background ones in the shared concurrency limit.

A request's lane is set by its caller through the :data:`request_lane` context variable (child
tasks inherit it): ``"interactive"`` (the default: surgical runs, preflight, reads) or
``"background"`` (the standard sync). :class:`PrioritySlots` is the client's concurrency limit: a
freed slot goes to the longest-waiting interactive request, and to a background one only when no
interactive request waits. The lane also decides how a request meets a rate limit (``_gate``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

Lane = Literal["interactive", "background"]

request_lane: ContextVar[Lane] = ContextVar("lore_gitlab_request_lane", default="interactive")
"""The lane of the GitLab requests made in this task (and the tasks it starts)."""


@contextmanager
def lane(value: Lane) -> Iterator[None]:
    """Run a block's requests in ``value``'s lane."""
    token = request_lane.set(value)
    try:
        yield
    finally:
        request_lane.reset(token)


class PrioritySlots:
    """A semaphore of ``size`` slots that serves interactive waiters before background ones.

    Within a lane waiters are served first come, first served. A slot freed while someone waits
    is handed to that waiter directly, so a newcomer cannot overtake the queue.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._free = size
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {
            "interactive": deque(),
            "background": deque(),
        }

    @property
    def in_use(self) -> int:
        return self.size - self._free

    def waiting(self, which: Lane) -> int:
        return sum(1 for fut in self._waiting[which] if not fut.done())

    async def acquire(self, which: Lane) -> None:
        ahead = self._waiting["interactive"] if which == "background" else ()
        if self._free > 0 and not self._waiting[which] and not ahead:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[which].append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a slot just as it was cancelled
                self.release()
            else:
                self._waiting[which].remove(fut)
            raise

    def release(self) -> None:
        for which in ("interactive", "background"):
            queue = self._waiting[which]
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self._free += 1

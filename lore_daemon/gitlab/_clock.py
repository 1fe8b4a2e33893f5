"""GitLab's clock as its answers tell it: the ``Date`` header of every response.

Some decisions must be made on GitLab's clock, not ours: whether a dependents fetch was made long
enough after its parent's ``updated_at`` to be final (SPEC §7, the settle window) compares two of
GitLab's times. A block of work learns the times of the answers its requests (and those of the
tasks it starts) received with::

    with watch_server_time() as seen:
        await client.list_discussions(...)
    seen.earliest_ms   # GitLab's "now" of the first answer, epoch ms (None: no answer)

The ``Date`` header has whole seconds and is written when the answer is, after GitLab read the
data, so it is at most a second early or a few milliseconds late; the settle window's margin
over GitLab's one-minute touch interval covers both. A response without ``Date`` counts with our
own clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

server_time_observer: ContextVar[Callable[[int], None] | None] = ContextVar(
    "lore_gitlab_server_time_observer", default=None
)
"""Called with GitLab's time (epoch ms) of every answer received, in the requesting task's context."""


class ServerTimes:
    """The GitLab times of the answers received inside one ``watch_server_time`` block."""

    __slots__ = ("earliest_ms", "latest_ms")

    def __init__(self) -> None:
        self.earliest_ms: int | None = None
        self.latest_ms: int | None = None

    def saw(self, at_ms: int) -> None:
        self.earliest_ms = at_ms if self.earliest_ms is None else min(self.earliest_ms, at_ms)
        self.latest_ms = at_ms if self.latest_ms is None else max(self.latest_ms, at_ms)


@contextmanager
def watch_server_time() -> Iterator[ServerTimes]:
    """Record the GitLab time of every answer received in this context (and in tasks started in
    it) until the block ends. Blocks nest: an outer block sees the inner block's answers too."""
    seen = ServerTimes()
    outer = server_time_observer.get()

    def observe(at_ms: int) -> None:
        seen.saw(at_ms)
        if outer is not None:
            outer(at_ms)

    token = server_time_observer.set(observe)
    try:
        yield seen
    finally:
        server_time_observer.reset(token)

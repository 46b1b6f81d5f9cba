"""Tracking requests answered inline, in the thread where granian hands a request to Python.

granian's RSGI worker hands each request to a scheduler: by default it makes a coroutine,
wakes the event loop from granian's thread (`call_soon_threadsafe`), and the loop wraps the
coroutine in an asyncio Task and runs it. A pixel or a redirect needs none of that: it is
answered synchronously (verify the token, append to the spool, answer) and never awaits. The
scheduler installed here answers /o/ and /c/ right where granian calls it, with the GIL it
already holds, and schedules everything else (API, dashboard) as before. On an app that only
answers, that takes granian's CPU per request from 19.5 to 12.1 µs (bench/http_floor.py; the
figures are in docs/benchmarks.md, with what it gives pixeltrail's own requests).

It plugs into granian's internals (`granian._futures`, the embedded server's scheduler
factory), which the lock file pins. If they are not as expected, `install` says so in the log
and the server runs as it would without it: the same answers, through the event loop.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

log = logging.getLogger("pixeltrail.http")

# Answers a request given granian's RSGI scope and protocol; False when it is not its own.
InlineHandler = Callable[[Any, Any], bool]


def _scheduler_factory(answer: InlineHandler) -> Callable[..., Any] | None:
    """A replacement for the embedded server's `_new_cbscheduler`, or None if granian's
    internals are not the ones this was written against."""
    try:
        futures: Any = importlib.import_module("granian._futures")
        aio_schedule = futures._cbsched_aioschedule
        task_enter, task_leave = futures._aio_taskenter, futures._aio_taskleave
    except (ImportError, AttributeError):
        return None

    class InlineScheduler(futures._BaseCBScheduler):  # type: ignore[misc]
        def __init__(self, loop: Any, callback: Any, *_: Any) -> None:
            super().__init__()
            schedule = aio_schedule(loop, self._ctx, callback)

            def schedule_or_answer(watcher: Any) -> None:
                try:
                    answered = answer(watcher.scope, watcher.proto)
                except BaseException as exc:  # as granian's own wrapper does: it answers 500
                    watcher.err(exc)
                    return
                if answered:
                    watcher.done()
                else:
                    schedule(watcher)

            self._schedule_fn = schedule_or_answer

    def new_scheduler(loop: Any, callback: Any, impl_asyncio: bool = False) -> Any:
        del impl_asyncio  # the default, asyncio tasks, for what is scheduled
        return InlineScheduler(
            loop, callback, None, partial(task_enter, loop), partial(task_leave, loop)
        )

    return new_scheduler


@contextlib.contextmanager
def install(answer: InlineHandler) -> Iterator[bool]:
    """While inside, embedded granian servers answer what `answer` takes inline; yields
    whether that could be set up."""
    import granian  # noqa: PLC0415
    from granian.server import embed  # noqa: PLC0415

    factory = _scheduler_factory(answer)
    original = getattr(embed, "_new_cbscheduler", None)
    if factory is None or original is None:
        log.warning(
            "granian %s: tracking requests go through the event loop (slower); "
            "its internals are not the ones pixeltrail plugs into",
            granian.__version__,
        )
        yield False
        return
    embed._new_cbscheduler = factory  # type: ignore[attr-defined]
    try:
        yield True
    finally:
        embed._new_cbscheduler = original  # type: ignore[attr-defined]

"""Run a coroutine to completion from synchronous code, inside a running event loop or not.

In a Jupyter kernel an event loop is already running in the calling thread, so the
coroutine runs on a worker thread with its own loop (no nest_asyncio). A KeyboardInterrupt
(the kernel's interrupt button, Ctrl-C) cancels the coroutine and waits for it to record
what it was doing, so the caller gets its exception with the partial result.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(make_coroutine)
    return _run_on_worker_thread(make_coroutine)


def _run_here(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    # The value stays out of the task's result: on its way out, asyncio.run checks the SIGINT handler
    # it set, and signal.getsignal formats that handler's repr, which holds the task and its result,
    # so a result frame of a million rows cost a DataFrame repr (0.2 s and 60 MB) on every call.
    box: list[T] = []

    async def boxed() -> None:
        box.append(await make_coroutine())

    asyncio.run(boxed())
    return box[0]


def _run_on_worker_thread(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = asyncio.new_event_loop()
    task_box: list[asyncio.Task[T]] = []
    outcome: dict[str, Any] = {}
    started = threading.Event()
    # Waited on instead of Thread.join: on Python <= 3.12 a KeyboardInterrupt inside join() can
    # mark a still-running thread as stopped, so a second join() would return at once.
    finished = threading.Event()

    def work() -> None:
        asyncio.set_event_loop(loop)
        try:
            task = loop.create_task(make_coroutine())
            task_box.append(task)
            started.set()
            outcome["value"] = loop.run_until_complete(task)
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                finished.set()

    threading.Thread(target=work, name="leadlex-nb-run", daemon=True).start()
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        started.wait()
        if task_box:
            # RuntimeError: the loop closed meanwhile, so the run already finished.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task_box[0].cancel)
        wait_through_interrupts(finished)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def wait_through_interrupts(finished: threading.Event) -> None:
    """The run is recording what it was doing; further interrupts must not abandon it."""
    while True:
        try:
            if finished.wait(0.1):
                return
        except KeyboardInterrupt:
            continue

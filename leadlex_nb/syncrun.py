"""Run a coroutine to completion from synchronous code, inside a running event loop or not.

In a Jupyter kernel an event loop is already running in the calling thread, so the
coroutine runs on a worker thread with its own loop (no nest_asyncio). A KeyboardInterrupt
(the kernel's interrupt button, Ctrl-C) cancels the coroutine and waits for it to record
what it was doing, so the caller gets its exception with the partial result.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Coroutine, TypeVar

T = TypeVar("T")


def run_sync(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    return _run_on_worker_thread(make_coroutine)


def _run_on_worker_thread(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = asyncio.new_event_loop()
    task_box: list[asyncio.Task[T]] = []
    outcome: dict[str, Any] = {}
    started = threading.Event()

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

    worker = threading.Thread(target=work, name="leadlex-nb-run", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        started.wait()
        if task_box and not loop.is_closed():
            loop.call_soon_threadsafe(task_box[0].cancel)
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]

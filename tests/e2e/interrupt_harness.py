"""Run one interrupt point against a sandbox, resume the run, and check both results.

``run_point`` interrupts a run in the way and at the moment its :class:`Point` says, checks the
partial result (one status per row, audited against the sandbox's ground truth), resumes the run
from its journal with ``confirm=False`` (in a quarter of the points with the clock 25 hours on,
past the idempotency window) and checks the final result (see ``interrupt_checks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from interrupt_checks import check_final, check_partial, settle_server
from interrupt_points import PAST_THE_KEY_WINDOW, Point, Setup, clock_moved, frame_values, request_class, setup_for

import leadlex_nb
from leadlex_nb import LeadLexError, RunInterrupted, notebook
from leadlex_nb.sandbox import Faults, Sandbox


@dataclass
class Outcome:
    """What one point did: whether the interrupt landed, and what it hit."""

    point: Point
    interrupted: bool = False
    hit: str | None = None  # the class of the last request the server saw before the interrupt
    aged: bool = False
    resume_interrupted: bool = False
    rechecks: int = 0
    notes: list[str] = field(default_factory=list)


BARE_CANCEL = "the call ended with a bare CancelledError"


class Trigger:
    """Fires ``action`` once, ``delay`` s after the ``count``-th request matching ``fires_on`` arrives.

    It hooks the sandbox's execution log (the moment a request's fault decision is logged, i.e. on
    arrival, before any latency), so it counts requests as the server sees them.
    """

    def __init__(self, sandbox: Sandbox, setup: Setup, action: Callable[[], None]) -> None:
        self._log = sandbox._state.log  # the ground truth's own hook point; no public one exists
        self._original = self._log.update
        self._setup, self._action = setup, action
        self._seen = 0
        self._lock = threading.Lock()
        self._closed = False
        self.fired = False
        self.last_class: str | None = None
        self._log.update = self._update  # type: ignore[method-assign]

    def _update(self, entry: dict[str, Any], **fields: Any) -> None:
        self._original(entry, **fields)
        if "fault" not in fields:
            return
        with self._lock:
            if self._closed:
                return
            self.last_class = request_class(entry)
            fires_on = self._setup.fires_on
            if self.fired or fires_on is None or not fires_on(entry):
                return
            self._seen += 1
            if self._seen == self._setup.count:
                self.fire(self._setup.delay)

    def fire(self, delay: float, label: str | None = None) -> None:
        self.fired = True
        self.last_class = label or self.last_class
        timer = threading.Timer(delay, self._fire_now)
        timer.daemon = True
        timer.start()

    def _fire_now(self) -> None:
        with self._lock:
            if not self._closed:
                self._action()

    def close(self) -> None:
        """No action after this returns; the log is unhooked."""
        with self._lock:
            self._closed = True
            self._log.update = self._original  # type: ignore[method-assign]


def run_point(sandbox: Sandbox, point: Point, workdir: Path) -> Outcome:
    rng = random.Random(point.seed ^ 0x5EED)
    setup = setup_for(point)
    targets = sandbox.seed(setup.existing)
    values = pd.Series(frame_values(rng, targets, setup.unknown), name="contact_id")
    before = sandbox.existing_ids()
    start_seq = len(sandbox.execution_log())
    journal = workdir / f"{point.kind}-{point.phase}-{point.seed}.sqlite3"
    key = sandbox.create_key(["write:contacts"]) if setup.write_only else sandbox.api_key
    options = {"api_key": key, "base_url": sandbox.base_url, "journal": journal,
               "progress": False, "verbose": False, **setup.run_options()}
    outcome = Outcome(point)
    sandbox.set_faults(setup.faults)
    driver = {"keyboard": _keyboard, "cancel": _cancel, "kill": _kill, "panel_stop": _panel_stop}[point.kind]
    partial, run_id = driver(sandbox, setup, values, options, outcome, rng)
    settle_server(sandbox, start_seq)
    truth = {"existed_before": before, "start_seq": start_seq, "targets": targets}
    if partial is not None:
        check_partial(partial, sandbox, truth, run_id, len(values))
    sandbox.set_faults(None)
    resume_options = {k: v for k, v in options.items() if k not in ("batch_size", "plan")}
    if rng.random() < 0.2:  # the resume is interrupted too, then resumed again
        resumed = _cancelled_resume(sandbox, run_id, resume_options, outcome, rng)
        if resumed is not None:
            settle_server(sandbox, start_seq)
            check_partial(resumed, sandbox, truth, run_id, len(values))
            partial = resumed
    outcome.aged = rng.random() < 0.25
    resume_seq = len(sandbox.execution_log())
    with clock_moved(PAST_THE_KEY_WINDOW) if outcome.aged else contextlib.nullcontext():
        final = leadlex_nb.resume(run_id, confirm=False, **resume_options)
    outcome.rechecks = check_final(final, sandbox, truth, run_id, len(values), partial=partial,
                                   resume_seq=resume_seq, aged=outcome.aged)
    return outcome


# -- the four ways to interrupt ------------------------------------------------------------------

Driven = tuple["pd.DataFrame | None", str]


def _confirm_hook(trigger: Callable[[], Trigger], setup: Setup) -> Callable[[Any], Any]:
    async def confirm(plan: Any) -> bool:
        trigger().fire(0.0, "confirm")
        await asyncio.sleep(setup.confirm_delay)
        return True

    return confirm


def _keyboard(sandbox: Sandbox, setup: Setup, values: pd.Series, options: dict[str, Any], outcome: Outcome,
              rng: random.Random) -> Driven:
    """KeyboardInterrupt in the main thread, as a kernel's stop button or Ctrl-C delivers it.

    Half the points call from inside a running loop (a kernel: the run goes on a worker thread),
    half from plain sync code (a script: asyncio.run in the calling thread).
    """
    in_kernel = rng.random() < 0.5
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main, "SIGINT is handled in the main thread"
    # A real SIGINT to the main thread, as a kernel's stop button sends: it also breaks a blocking wait.
    trigger = Trigger(sandbox, setup, lambda: signal.pthread_kill(main, signal.SIGINT))
    if setup.fires_on is None:
        options = {**options, "confirm": _confirm_hook(lambda: trigger, setup)}
    else:
        options = {**options, "confirm": False}

    def call() -> pd.DataFrame:
        return pd.DataFrame({"c": values}).leadlex.bulk_delete("c", **options)

    async def in_a_running_loop() -> pd.DataFrame:
        return call()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    result: pd.DataFrame | None = None
    try:
        try:
            result = _in_a_kernels_loop(in_a_running_loop()) if in_kernel else call()
        except RunInterrupted as stop:
            outcome.interrupted = True
            result = stop.result
        except asyncio.CancelledError:
            _bare_cancel(outcome)
        finally:
            trigger.close()
            time.sleep(0.01)  # an interrupt already sent lands here, not in the next point
    except KeyboardInterrupt as late:
        # It arrived as the call ended, after the run had finished: the journal knows the run.
        where = traceback.extract_tb(late.__traceback__)[-1]
        outcome.notes.append(f"interrupt arrived as the call ended ({Path(where.filename).name}:{where.lineno})")
    finally:
        signal.signal(signal.SIGINT, previous)
    outcome.hit = trigger.last_class if outcome.interrupted else None
    return _with_run_id(result, options)


def _bare_cancel(outcome: Outcome) -> None:
    """A call must end with its result or a RunInterrupted carrying it, never a bare CancelledError."""
    raise AssertionError(f"{BARE_CANCEL} (notes: {outcome.notes})")


def _in_a_kernels_loop(work: Coroutine[Any, Any, pd.DataFrame]) -> pd.DataFrame:
    """A running loop in this thread, without asyncio.run's SIGINT handler: a kernel's SIGINT raises
    KeyboardInterrupt wherever the cell is (here, in the synchronous call)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        # A SIGINT sent as the call returns waits until the loop is closed, not left half closed.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            loop.close()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _cancel(sandbox: Sandbox, setup: Setup, values: pd.Series, options: dict[str, Any], outcome: Outcome,
            rng: random.Random) -> Driven:
    async def drive() -> pd.DataFrame | None:
        loop = asyncio.get_running_loop()
        fired = asyncio.Event()
        trigger = Trigger(sandbox, setup, lambda: loop.call_soon_threadsafe(fired.set))
        opts = {**options, "confirm": _confirm_hook(lambda: trigger, setup) if setup.fires_on is None else False}
        task = asyncio.ensure_future(pd.Series(values).leadlex.abulk_delete(**opts))
        waiter = asyncio.ensure_future(fired.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        trigger.close()
        if not task.done():
            task.cancel()
        try:
            return await task  # type: ignore[no-any-return]
        except RunInterrupted as stop:
            outcome.interrupted = True
            outcome.hit = trigger.last_class
            return stop.result
        except asyncio.CancelledError:
            _bare_cancel(outcome)
            return None

    result = asyncio.run(drive())
    return _with_run_id(result, options)


def _cancelled_resume(sandbox: Sandbox, run_id: str, options: dict[str, Any], outcome: Outcome,
                      rng: random.Random) -> pd.DataFrame | None:
    """Cancel a resume at its n-th request; its partial result, when the cancel landed."""
    setup = Setup(0, 0, 0, 0, Faults(), lambda entry: True, rng.randint(1, 3), rng.uniform(0, 0.01))
    sandbox.set_faults(Faults(latency=0.01, paths=("/v1/*",)))

    async def drive() -> pd.DataFrame | None:
        loop = asyncio.get_running_loop()
        fired = asyncio.Event()
        trigger = Trigger(sandbox, setup, lambda: loop.call_soon_threadsafe(fired.set))
        task = asyncio.ensure_future(leadlex_nb.aresume(run_id, confirm=False, **options))
        waiter = asyncio.ensure_future(fired.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        trigger.close()
        if not task.done():
            task.cancel()
        try:
            await task
        except RunInterrupted as stop:
            outcome.resume_interrupted = True
            return stop.result
        except asyncio.CancelledError:
            _bare_cancel(outcome)
        return None

    try:
        return asyncio.run(drive())
    finally:
        sandbox.set_faults(None)


CHILD = """
import asyncio, json, os, signal, sys, time
import pandas as pd
import leadlex_nb
spec = json.loads(sys.argv[1])
values = pd.Series(json.load(open(spec["values"])))
async def confirm(plan):
    await asyncio.sleep(spec["confirm_delay"])
    os.kill(os.getpid(), signal.SIGKILL)  # like a kernel that dies while the plan is shown
retry = leadlex_nb.RetryPolicy(**spec["retry"])
plan = leadlex_nb.RateLimit(spec["rate"], 1.0) if spec["rate"] else None
values.leadlex.bulk_delete(confirm=confirm if spec["kill_in_confirm"] else False, journal=spec["journal"],
    batch_size=spec["batch_size"], concurrency=spec["concurrency"], timeout=5.0, rate_window=1.0, retry=retry,
    plan=plan, progress=False, verbose=False)
"""


def _kill(sandbox: Sandbox, setup: Setup, values: pd.Series, options: dict[str, Any], outcome: Outcome,
          rng: random.Random) -> Driven:
    """SIGKILL of a child process running the run: no chance to record anything more."""
    journal = Path(options["journal"])
    values_file = journal.with_suffix(".json")
    values_file.write_text(json.dumps(values.tolist()))
    retry = options["retry"]
    spec = {"values": str(values_file), "journal": str(journal), "batch_size": setup.batch_size,
            "concurrency": setup.concurrency, "rate": setup.rate, "kill_in_confirm": setup.fires_on is None,
            "confirm_delay": setup.confirm_delay,
            "retry": {"max_attempts": retry.max_attempts, "base_delay": retry.base_delay,
                      "max_delay": retry.max_delay, "budget": retry.budget}}
    env = {**os.environ, "LEADLEX_API_KEY": options["api_key"], "LEADLEX_BASE_URL": sandbox.base_url}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    trigger = Trigger(sandbox, setup, child.kill)
    try:
        _, err = child.communicate(timeout=90)
    finally:
        trigger.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    outcome.interrupted = child.returncode == -signal.SIGKILL
    assert outcome.interrupted or child.returncode == 0, err.decode(errors="replace")[-2000:]
    outcome.hit = (trigger.last_class if setup.fires_on else "confirm") if outcome.interrupted else None
    runs = leadlex_nb.journaled_runs(journal)
    assert len(runs) == 1, f"the killed run is in its journal: {runs}"
    return None, str(runs["run_id"].iloc[0])


def _panel_stop(sandbox: Sandbox, setup: Setup, values: pd.Series, options: dict[str, Any], outcome: Outcome,
                rng: random.Random) -> Driven:
    """The notebook panel's Stop button, clicked while the deletion runs."""
    run = notebook.bulk_delete(values, options, widgets=True)
    assert isinstance(run, notebook.DeletionRun), "every point's frame has contacts to delete"
    panel = run._panel
    assert panel is not None
    trigger = Trigger(sandbox, setup, panel.stop_button.click)
    try:
        panel.delete_button.click()
        partial = run.wait(120)
    finally:
        trigger.close()
    if run.status == "stopped":
        assert isinstance(run.error, RunInterrupted), run.error
        outcome.interrupted, outcome.hit = True, trigger.last_class
    else:
        assert run.status == "finished", run.status
    return partial, run.run_id


def _with_run_id(result: pd.DataFrame | None, options: dict[str, Any]) -> Driven:
    if result is not None:
        return result, str(result.attrs["leadlex"]["run_id"])
    runs = leadlex_nb.journaled_runs(options["journal"])
    if len(runs) != 1:
        raise LeadLexError(f"expected one run in the journal, found {len(runs)}")
    return None, str(runs["run_id"].iloc[0])

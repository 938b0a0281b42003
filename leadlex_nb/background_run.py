"""What runs the engine for a notebook handle: a thread and loop of its own, paused at the plan.

A running cell cannot receive widget clicks (ipykernel 7; see the testing guide), so the handle
(:class:`leadlex_nb.notebook.DeletionRun`) does not wait in the cell for its decision: a
:class:`BackgroundRun` runs ``api.abulk_delete`` on its own thread and event loop, with a confirm hook
that is an :class:`asyncio.Future` of that loop, which :meth:`BackgroundRun.decide` resolves from any
thread.

Safety: one decision per run, taken under its lock, first wins; and one deletion per plan fingerprint
per kernel (:func:`_claim`), so two handles of the same plan (a re-run cell) never both delete.
Nothing here shows anything: the handle says where the deletion's progress goes and what to show
when a decided run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from leadlex_nb import api
from leadlex_nb.errors import ConfirmationDeclined, LeadLexError
from leadlex_nb.hooks import PlanSummary, Progress, StopSignal, no_progress
from leadlex_nb.progress import progress_sink
from leadlex_nb.syncrun import wait_through_interrupts

# States of a run.
DRY_RUN = "dry_run"
AWAITING = "awaiting_decision"
DELETING = "deleting"
CANCELLING = "cancelling"
FINISHED = "finished"
CANCELLED = "cancelled"
STOPPED = "stopped"
FAILED = "failed"
FINAL = (FINISHED, CANCELLED, STOPPED, FAILED)

# Why BackgroundRun.decide() took no decision.
REPEATED = "repeated"  # this same decision was already taken (a double click)
NO_PLAN = "no_plan"  # the dry run has not produced a plan yet
DECIDED_OTHERWISE = "decided_otherwise"  # the other decision was taken, or the run ended without one

# Plan fingerprint -> (the run confirmed to delete it in this kernel, when, in time.monotonic()). A plan
# whose dry run is older than another run's confirmation of the same plan is a stale copy (a re-run
# cell shown before the click) and is refused; a fresh dry run of the same IDs is a new plan.
_confirmed_plans: dict[str, tuple[str, float]] = {}
_confirmed_lock = threading.Lock()


class BackgroundRun:
    """One bulk delete on its own thread. The handle reads ``state``, ``plan``, ``decision``, ``frame``,
    ``error`` and ``refusal`` (under ``lock`` where they must agree); only this class writes them."""

    def __init__(self, values: pd.Series, options: dict[str, Any], *,
                 deletion_progress: Callable[[int, str], Progress | None], on_end: Callable[[], None]) -> None:
        """``deletion_progress(total, stage)``: where the progress of the snapshot and the deletion shows
        (None: it is only counted);
        ``on_end()``: called on the run's thread once a decided run has ended."""
        options = dict(options)
        options.pop("confirm", None)
        options.pop("dry_run", None)
        self._show_dry_run_progress = bool(options.pop("progress", True))
        options.pop("verbose", None)  # routine notes go to the panel and to logging, not stderr
        given_stop = options.pop("stop", None)
        self.stop_signal: StopSignal = given_stop if isinstance(given_stop, StopSignal) else StopSignal()
        self._values = values
        self._options = options
        self._deletion_progress = deletion_progress
        self._on_end = on_end
        self.lock = threading.RLock()
        self.state = DRY_RUN
        self.plan: PlanSummary | None = None
        self.decision: bool | None = None
        self.frame: pd.DataFrame | None = None
        self.error: BaseException | None = None
        self.refusal: str | None = None  # why a stale copy of an already confirmed plan sent nothing
        self.progress: Progress | None = None
        self._future: asyncio.Future[bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[pd.DataFrame] | None = None
        self._planned_at: float | None = None
        self._decided_at: float | None = None
        self._finished_at: float | None = None
        self._started = threading.Event()     # the run's task exists
        self._returnable = threading.Event()  # a plan to decide on, or the end
        self.finished = threading.Event()

    # -- the thread ------------------------------------------------------------------------------

    def launch(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        def work() -> None:
            asyncio.set_event_loop(loop)
            try:
                with progress_sink(self._progress_for):
                    self._task = loop.create_task(api.abulk_delete(
                        self._values, confirm=self._confirm_hook, stop=self.stop_signal, progress=True,
                        verbose=False, **self._options))
                self._started.set()
                frame = loop.run_until_complete(self._task)
            except BaseException as exc:  # handed to whoever waits: the caller, the panel, run.result
                self._end(None, exc)
            else:
                self._end(frame, None)
            finally:
                self._started.set()
                try:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()
                    self.finished.set()
                    self._returnable.set()

        threading.Thread(target=work, name="leadlex-nb-deletion", daemon=True).start()

    def wait_for_plan(self) -> None:
        """Block until there is a plan to decide on, or the run has ended."""
        try:
            while not self._returnable.wait(0.1):
                pass
        except KeyboardInterrupt:
            # The kernel's stop button during the dry run: cancel it; it records what it was doing.
            self._cancel_task()
            self.wait_recorded()

    async def await_plan(self) -> None:
        """:meth:`wait_for_plan` for async code, without blocking the caller's loop."""
        try:
            while not self._returnable.is_set():
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            # Cancelled during the dry run: cancel the run too, wait until it has recorded what it was
            # doing (further cancels must not abandon it); the caller then raises its RunInterrupted.
            self._cancel_task()
            while not self.finished.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0.05)

    def wait_recorded(self) -> None:
        """Wait for the end after an interrupt: the run is recording what it was doing, and further
        interrupts must not abandon it."""
        wait_through_interrupts(self.finished)

    def _cancel_task(self) -> None:
        self._started.wait()
        if self._task is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the run already ended
                self._loop.call_soon_threadsafe(self._task.cancel)

    # -- the engine's hooks, on the run's loop -----------------------------------------------------

    def _confirm_hook(self, plan: PlanSummary) -> Awaitable[bool]:
        """The engine's confirm hook: a future that a decision resolves."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        with self.lock:
            self.plan, self._future, self.state = plan, future, AWAITING
            self._planned_at = time.monotonic()
        self._returnable.set()
        return future

    def _progress_for(self, total: int, desc: str) -> Progress | None:
        """The run's progress bars: the dry run's in the cell (if asked for), the deletion's where the
        handle says."""
        with self.lock:
            deleting = self.plan is not None
        if not deleting:
            return None if self._show_dry_run_progress else no_progress(total, desc)
        shown = self._deletion_progress(total, desc)
        if desc == "snapshot":  # before the deletion: not what "contacts done" counts
            return shown if shown is not None else no_progress(total, desc)
        self.progress = shown if shown is not None else _CountingProgress(total)
        return self.progress

    # -- the decision and the end ----------------------------------------------------------------

    def decide(self, confirmed: bool) -> str | None:
        """Take the one decision, first wins: None once this call took it, else why not (REPEATED,
        NO_PLAN, DECIDED_OTHERWISE). A confirmation of a stale copy of a plan is taken as a cancel."""
        with self.lock:
            if self.state != AWAITING:
                if self.decision == confirmed:
                    return REPEATED
                return NO_PLAN if self.state == DRY_RUN else DECIDED_OTHERWISE
            plan, future, loop = self.plan, self._future, self._loop
            assert plan is not None and future is not None and loop is not None
            if confirmed:
                owner = _claim(plan, self._planned_at or 0.0)
                if owner is not None:
                    confirmed = False
                    self.refusal = (f"this plan (fingerprint {plan.fingerprint[:16]}) was already confirmed in run "
                                    f"{owner}, after this dry run, and a plan is not deleted twice; this run sent "
                                    "nothing. Run bulk_delete again for a fresh plan")
            self.decision = confirmed
            self.state = DELETING if confirmed else CANCELLING  # _end() settles the final state
            self._decided_at = time.monotonic()
        with contextlib.suppress(RuntimeError):  # a closed loop: the run already ended
            loop.call_soon_threadsafe(_resolve, future, confirmed)
        return None

    def _end(self, frame: pd.DataFrame | None, error: BaseException | None) -> None:
        """The engine returned or raised: keep the result and settle the state."""
        with self.lock:
            if isinstance(error, LeadLexError) and error.result is not None:
                frame = error.result
            self.frame, self.error = frame, error
            if error is None:
                self.state = FINISHED
            elif isinstance(error, ConfirmationDeclined) and self.decision is False:
                self.state = CANCELLED
            else:
                self.state = STOPPED if frame is not None else FAILED
            self._finished_at = time.monotonic()
            decided = self.decision is not None
        if decided:  # else it ended before the decision: the caller raises or returns it; there is no panel
            self._on_end()

    # -- for messages ----------------------------------------------------------------------------

    def stopped_by(self) -> BaseException | None:
        """What stopped the run, once it has ended early (None after a normal end or a Cancel)."""
        return self.error if self.state in (STOPPED, FAILED) else None

    def done_text(self) -> str:
        done = getattr(self.progress, "done", None)
        total = self.plan.to_delete if self.plan is not None else None
        if done is None or total is None:
            return "starting"
        return f"{done:,} of {total:,} contacts done"

    def deletion_seconds(self) -> float | None:
        if self._decided_at is None or self._finished_at is None or not self.decision:
            return None
        return self._finished_at - self._decided_at


class _CountingProgress:
    """The deletion's progress where nothing shows it: counted, for ``run.result``'s message."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def update(self, n: int = 1) -> None:
        self.done += n

    def close(self) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass


def _claim(plan: PlanSummary, planned_at: float) -> str | None:
    """Record that ``plan`` is being deleted; or, when another run confirmed the same plan after this
    plan's dry run, return that run's id (this copy is stale, and is refused)."""
    with _confirmed_lock:
        owner = _confirmed_plans.get(plan.fingerprint)
        if owner is not None and owner[0] != plan.run_id and owner[1] >= planned_at:
            return owner[0]
        _confirmed_plans[plan.fingerprint] = (plan.run_id, time.monotonic())
        return None


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)

"""The deletion handle: in a notebook kernel, a click decides.

A running cell cannot receive widget clicks (ipykernel 7; see the testing guide), so in a kernel
``df.leadlex.bulk_delete("contact_id")`` with ``confirm`` omitted does not wait for one. It runs the
engine on its own thread and event loop, returns once the dry run has produced a plan, and shows the
confirm panel. The run's confirm hook is an :class:`asyncio.Future` of the run's loop; the panel's
buttons and :meth:`DeletionRun.confirm` / :meth:`DeletionRun.cancel` resolve it from any thread.

Safety: one decision per handle, taken under a lock, first wins (a double click, or clicks in two
views of the panel, start one deletion); and one deletion per plan fingerprint per kernel, so two
handles of the same plan (a re-run cell) never both delete. Cancel sends nothing. Errors before the
plan (no key, a 401 in the dry run, nothing to delete) raise at once, as with ``confirm=False``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Awaitable
from typing import Any

import pandas as pd

from leadlex_nb import api
from leadlex_nb.errors import ConfirmationDeclined, LeadLexError
from leadlex_nb.hooks import PlanSummary, Progress, StopSignal, no_progress
from leadlex_nb.progress import in_kernel, progress_sink, show, update

# States of a handle.
DRY_RUN = "dry_run"
AWAITING = "awaiting_decision"
DELETING = "deleting"
CANCELLING = "cancelling"
FINISHED = "finished"
CANCELLED = "cancelled"
STOPPED = "stopped"
FAILED = "failed"
FINAL = (FINISHED, CANCELLED, STOPPED, FAILED)

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# Plan fingerprint -> (the run confirmed to delete it in this kernel, when, in time.monotonic()). A plan
# whose dry run is older than another run's confirmation of the same plan is a stale copy (a re-run
# cell shown before the click) and is refused; a fresh dry run of the same IDs is a new plan.
_confirmed_plans: dict[str, tuple[str, float]] = {}
_confirmed_lock = threading.Lock()
_handles = itertools.count(1)


class ResultPending(LeadLexError):
    """``run.result`` or ``run.wait()`` while the plan awaits a decision or the deletion runs."""


class WaitTimeout(ResultPending, TimeoutError):
    """``run.wait(timeout)`` ran out of time; the deletion goes on."""


def wants_handle(options: dict[str, Any]) -> bool:
    """In a kernel, with ``confirm`` omitted and ``dry_run`` false: the click decides."""
    return options.get("confirm", api.ASK) is api.ASK and not options.get("dry_run", False) and in_kernel()


def bulk_delete(
    values: pd.Series, options: dict[str, Any], *, widgets: bool | None = None
) -> DeletionRun | pd.DataFrame:
    """Dry-run ``values``; return a :class:`DeletionRun` once there is a plan to decide on.

    A run that ends before it has a plan (nothing deletable) returns its frame; one that fails before
    (no key, 401, quota, no valid ID) raises, as ``api.bulk_delete`` does. ``widgets``: build the
    panel (default: in a kernel); it is shown in a kernel only.
    """
    return DeletionRun(values, options, widgets=in_kernel() if widgets is None else widgets)._start()


async def abulk_delete(
    values: pd.Series, options: dict[str, Any], *, widgets: bool | None = None
) -> DeletionRun | pd.DataFrame:
    """:func:`bulk_delete` for ``await`` in a cell: the same handle, without blocking the kernel's loop."""
    return await DeletionRun(values, options, widgets=in_kernel() if widgets is None else widgets)._astart()


class DeletionRun:
    """What ``bulk_delete`` returns in a notebook: the plan, the decision, and later the result.

    ``run.result``, ``run.wait()``, ``run.confirm()``, ``run.cancel()``, ``run.stop()``, ``run.plan``,
    ``run.dry_run_result``, ``run.run_id``; displaying it shows the confirm panel (or, once the run
    has ended, its summary).
    """

    def __init__(self, values: pd.Series, options: dict[str, Any], *, widgets: bool = True) -> None:
        self._widgets = widgets
        options = dict(options)
        options.pop("confirm", None)
        options.pop("dry_run", None)
        self._show_dry_run_progress = bool(options.pop("progress", True))
        options.pop("verbose", None)  # routine notes go to the panel and to logging, not stderr
        given_stop = options.pop("stop", None)
        self._stop_signal: StopSignal = given_stop if isinstance(given_stop, StopSignal) else StopSignal()
        self._values = values
        self._options = options
        self._lock = threading.RLock()
        self._state = DRY_RUN
        self._plan: PlanSummary | None = None
        self._decision: bool | None = None
        self._future: asyncio.Future[bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[pd.DataFrame] | None = None
        self._frame: pd.DataFrame | None = None
        self._error: BaseException | None = None
        self._refusal: str | None = None
        self._planned_at: float | None = None
        self._decided_at: float | None = None
        self._finished_at: float | None = None
        self._progress: Progress | None = None
        self._panel: Any = None            # a panel.ConfirmPanel, where widgets work
        self._shown_in: int | None = None  # the execution count of the cell that showed the panel
        self._display_id = f"leadlex-run-{next(_handles)}-{id(self):x}"
        self._started = threading.Event()     # the run's task exists
        self._returnable = threading.Event()  # a plan to decide on, or the end
        self._finished = threading.Event()

    # -- the public surface ---------------------------------------------------------------------

    @property
    def plan(self) -> PlanSummary:
        if self._plan is None:
            raise ResultPending("the dry run has not produced a plan")
        return self._plan

    @property
    def dry_run_result(self) -> pd.DataFrame | None:
        """The dry run's per-row frame (``would_delete``, ``not_found``, ...)."""
        return self.plan.dry_run_result

    @property
    def run_id(self) -> str:
        return self.plan.run_id

    @property
    def status(self) -> str:
        """``awaiting_decision``, ``deleting``, ``finished``, ``cancelled``, ``stopped`` or ``failed``."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """What stopped the run, once it has ended early (None after a normal end or a Cancel)."""
        return self._error if self._state in (STOPPED, FAILED) else None

    @property
    def result(self) -> pd.DataFrame:
        """The final result frame, once the deletion finished, stopped or was cancelled."""
        with self._lock:
            state, frame, error = self._state, self._frame, self._error
        if state in (FINISHED, CANCELLED, STOPPED) and frame is not None:
            return frame
        if state in (STOPPED, FAILED):
            raise LeadLexError(f"the run failed and left no result: {error}", run_id=self._run_id()) from error
        if state == AWAITING:
            raise ResultPending(
                f"nothing has been deleted: the plan awaits a decision. Click '{self._delete_label()}' or "
                "'Cancel' in the panel, or call run.confirm() / run.cancel(); run.wait() then returns the result",
                run_id=self._run_id())
        raise ResultPending(
            f"the deletion is running ({self._done_text()}); run.wait() blocks until it ends and returns the "
            "result, run.stop() stops it", run_id=self._run_id())

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the result is final and return it.

        Raises at once while the plan awaits a decision: nobody could click while this blocks. An
        interrupt (the kernel's stop button) stops the deletion like the panel's Stop, waits for the
        requests in flight to be recorded, and raises the stop's error with the partial result.
        """
        if self._state == AWAITING:
            raise ResultPending(
                "the plan awaits a decision, and while wait() blocks nobody can click: call run.confirm() "
                "(or click Delete) first, or run.cancel()", run_id=self._run_id())
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._finished.wait(0.1):
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(f"the deletion is still running after {timeout} s ({self._done_text()})",
                                      run_id=self._run_id())
        except KeyboardInterrupt:
            self.stop("interrupted")
            _wait_through_interrupts(self._finished)
            if self._error is not None:
                raise self._error.with_traceback(None) from None
            raise
        return self.result

    def confirm(self) -> DeletionRun:
        """Delete the plan, as the panel's Delete button does. Returns the handle (``run.confirm().wait()``)."""
        self._decide(True, strict=True)
        return self

    def cancel(self) -> DeletionRun:
        """Drop the plan without sending anything; planned rows end ``not_sent``."""
        self._decide(False, strict=True)
        return self

    def stop(self, reason: str = "run.stop() was called") -> DeletionRun:
        """Stop the deletion: no new request; those in flight finish and are recorded. Before the
        decision it is a Cancel; after the end it does nothing."""
        with self._lock:
            state = self._state
        if state == AWAITING:
            self._decide(False, strict=False)
        elif state == DELETING:
            self._stop_signal.set(reason)
            if self._panel is not None:
                self._panel.stopping()
        return self

    def __repr__(self) -> str:
        if self._plan is None:
            return f"<DeletionRun {self._state}>"
        return (f"<DeletionRun {self._plan.run_id} {self._state}: {self._plan.to_delete:,} contacts planned, "
                f"fingerprint {self._plan.fingerprint[:16]}>")

    # -- display --------------------------------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self._bundle()

    def _ipython_display_(self) -> None:
        shell = _shell()
        count = getattr(shell, "execution_count", None)
        if self._shown_in is not None and count == self._shown_in:
            return  # the call already showed the panel in this very cell
        self._show()

    def _show(self) -> None:
        shell = _shell()
        self._shown_in = getattr(shell, "execution_count", None)
        show(self._bundle(), self._display_id)

    def _bundle(self) -> dict[str, Any]:
        from leadlex_nb import panel

        with self._lock:
            state = self._state
        if state in FINAL:
            return {"text/plain": self._summary_text(), "text/html": self._summary_html()}
        bundle: dict[str, Any] = {"text/plain": self._pending_text()}
        if self._plan is not None:  # for renderers without widgets (nbconvert, GitHub) and saved copies
            text = f"<pre>{panel.esc(self._pending_text())}</pre>"
            bundle["text/html"] = (panel.plan_html(self._plan) if state == AWAITING else "") + text
        if self._panel is not None:
            bundle[WIDGET_MIME] = {"model_id": self._panel.model_id, "version_major": 2, "version_minor": 0}
        return bundle

    def _pending_text(self) -> str:
        from leadlex_nb import panel

        if self._plan is None:
            return repr(self)
        if self._state in (DELETING, CANCELLING):
            what = "deletion" if self._state == DELETING else "cancel"
            return (f"LeadLex bulk delete, run {self._plan.run_id}: the {what} of plan "
                    f"{self._plan.fingerprint[:16]} has started. run.wait() returns the result when it ends. If this "
                    f"text is all that is left (the kernel stopped first), leadlex_nb.resume({self._plan.run_id!r}) "
                    "finishes the run without deleting anything twice.")
        return panel.plan_text(self._plan)

    def _summary_text(self) -> str:
        from leadlex_nb import panel

        return panel.summary_text(self._state, self._frame, plan=self._plan, error=self._shown_error(),
                                  deletion_seconds=self._deletion_seconds())

    def _summary_html(self) -> str:
        from leadlex_nb import panel

        return panel.summary_html(self._state, self._frame, plan=self._plan, error=self._shown_error(),
                                  deletion_seconds=self._deletion_seconds())

    def _shown_error(self) -> BaseException | None:
        if self._refusal is not None:
            return LeadLexError(self._refusal)
        return self.error

    # -- the run's thread -----------------------------------------------------------------------

    def _start(self) -> DeletionRun | pd.DataFrame:
        """From sync code (a cell): run the engine on its own thread until there is a plan or an end."""
        self._launch()
        try:
            while not self._returnable.wait(0.1):
                pass
        except KeyboardInterrupt:
            # The kernel's stop button during the dry run: cancel it; it records what it was doing.
            self._cancel_run()
            _wait_through_interrupts(self._finished)
        return self._handed_over()

    async def _astart(self) -> DeletionRun | pd.DataFrame:
        """From async code (``await df.leadlex.abulk_delete(...)`` in a cell): the same, without blocking
        the caller's loop."""
        self._launch()
        try:
            while not self._returnable.is_set():
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            # Cancelled during the dry run: cancel the run too, wait until it has recorded what it was
            # doing (further cancels must not abandon it), then raise its RunInterrupted, as abulk_delete does.
            self._cancel_run()
            while not self._finished.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0.05)
        return self._handed_over()

    def _launch(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        def work() -> None:
            asyncio.set_event_loop(loop)
            try:
                with progress_sink(self._progress_for):
                    self._task = loop.create_task(api.abulk_delete(
                        self._values, confirm=self._confirm_hook, stop=self._stop_signal, progress=True,
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
                    self._finished.set()
                    self._returnable.set()

        threading.Thread(target=work, name="leadlex-nb-deletion", daemon=True).start()

    def _cancel_run(self) -> None:
        self._started.wait()
        if self._task is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the run already ended
                self._loop.call_soon_threadsafe(self._task.cancel)

    def _handed_over(self) -> DeletionRun | pd.DataFrame:
        """What the call returns: the handle once there is a plan; the frame or the error of a run that
        ended before."""
        if self._finished.is_set():
            if self._error is not None:
                if isinstance(self._error, LeadLexError):
                    # The user's mistake or a stop, said in one line: no trip through threads and asyncio.
                    raise self._error.with_traceback(None)
                raise self._error
            assert self._frame is not None
            return self._frame
        self._make_panel()
        if in_kernel():
            self._show()
        return self

    def _confirm_hook(self, plan: PlanSummary) -> Awaitable[bool]:
        """The engine's confirm hook, on the run's loop: a future that a decision resolves."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._plan, self._future, self._state = plan, future, AWAITING
            self._planned_at = time.monotonic()
        self._returnable.set()
        return future

    def _progress_for(self, total: int, desc: str) -> Progress | None:
        """The run's progress bars: the dry run's in the cell (if asked for), the deletion's in the panel."""
        with self._lock:
            deleting = self._plan is not None
        if not deleting:
            return None if self._show_dry_run_progress else no_progress(total, desc)
        if self._panel is not None:
            self._progress = self._panel.progress(total)
            return self._progress
        self._progress = _CountingProgress(total)
        return self._progress

    def _decide(self, confirmed: bool, *, strict: bool) -> bool:
        """One decision, first wins. ``strict`` (from code) raises where a click is just ignored."""
        with self._lock:
            if self._state != AWAITING:
                if self._decision == confirmed or not strict:
                    return False  # the same decision again (a double click), or a late click: ignored
                if self._state == DRY_RUN:
                    raise ResultPending("the dry run has not produced a plan yet")
                if confirmed:
                    raise LeadLexError("this plan was cancelled, so it cannot be confirmed any more; run "
                                       "bulk_delete again for a fresh dry run and plan", run_id=self._run_id())
                raise LeadLexError("the deletion has already started; run.stop() stops it (no new request; those "
                                   "in flight finish and are recorded)", run_id=self._run_id())
            plan, future, loop = self._plan, self._future, self._loop
            assert plan is not None and future is not None and loop is not None
            if confirmed:
                owner = _claim(plan, self._planned_at or 0.0)
                if owner is not None:
                    confirmed = False
                    self._refusal = (f"this plan (fingerprint {plan.fingerprint[:16]}) was already confirmed in run "
                                     f"{owner}, after this dry run, and a plan is not deleted twice; this run sent "
                                     "nothing. Run bulk_delete again for a fresh plan")
            self._decision = confirmed
            self._state = DELETING if confirmed else CANCELLING  # _end() settles the final state
            self._decided_at = time.monotonic()
        with contextlib.suppress(RuntimeError):  # a closed loop: the run already ended
            loop.call_soon_threadsafe(_resolve, future, confirmed)
        if self._panel is not None:
            self._panel.decided(confirmed)
            if self._refusal is not None:
                self._panel.say(self._refusal, error=True)
        self._refresh()  # the saved text must not say "nothing has been deleted" any more
        return True

    def _refresh(self) -> None:
        """Replace every shown copy of the panel's output with the current bundle."""
        if self._shown_in is None:
            return
        with contextlib.suppress(Exception):
            update(self._bundle(), self._display_id)

    def _end(self, frame: pd.DataFrame | None, error: BaseException | None) -> None:
        """The engine returned or raised: keep the result, settle the state, leave a static summary."""
        with self._lock:
            if isinstance(error, LeadLexError) and error.result is not None:
                frame = error.result
            self._frame, self._error = frame, error
            if error is None:
                self._state = FINISHED
            elif isinstance(error, ConfirmationDeclined) and self._decision is False:
                self._state = CANCELLED
            else:
                self._state = STOPPED if frame is not None else FAILED
            self._finished_at = time.monotonic()
            decided = self._decision is not None
        if not decided:
            return  # it ended before the decision: the caller raises or returns it; there is no panel
        if self._panel is not None:
            with contextlib.suppress(Exception):
                self._panel.finished(self._summary_html())
        # Widget state is not saved with a notebook: leave static text and HTML behind.
        self._refresh()

    def _make_panel(self) -> None:
        if self._plan is None or not self._widgets:
            return
        try:
            from leadlex_nb.panel import ConfirmPanel

            self._panel = ConfirmPanel(self._plan, on_delete=lambda: self._decide(True, strict=False),
                                       on_cancel=lambda: self._decide(False, strict=False),
                                       on_stop=lambda: self.stop("the Stop button was clicked"))
        except Exception:  # no ipywidgets: the text display and run.confirm() still work
            self._panel = None

    # -- small helpers --------------------------------------------------------------------------

    def _run_id(self) -> str | None:
        return self._plan.run_id if self._plan is not None else None

    def _delete_label(self) -> str:
        from leadlex_nb.panel import delete_label

        return delete_label(self._plan) if self._plan is not None else "Delete"

    def _done_text(self) -> str:
        progress = self._progress
        done = getattr(progress, "done", None)
        total = self._plan.to_delete if self._plan is not None else None
        if done is None or total is None:
            return "starting"
        return f"{done:,} of {total:,} contacts done"

    def _deletion_seconds(self) -> float | None:
        if self._decided_at is None or self._finished_at is None or not self._decision:
            return None
        return self._finished_at - self._decided_at


class _CountingProgress:
    """The deletion's progress where there is no panel: counted, for ``run.result``'s message."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def update(self, n: int = 1) -> None:
        self.done += n

    def close(self) -> None:
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


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _wait_through_interrupts(finished: threading.Event) -> None:
    """The run is recording what it was doing; further interrupts must not abandon it."""
    while True:
        try:
            if finished.wait(0.1):
                return
        except KeyboardInterrupt:
            continue

"""The deletion handle: in a notebook kernel, a click decides.

A running cell cannot receive widget clicks (ipykernel 7; see the testing guide), so in a kernel
``df.leadlex.bulk_delete("contact_id")`` with ``confirm`` omitted does not wait for one. It returns a
:class:`DeletionRun` once the dry run has produced a plan, and shows the confirm panel; the panel's
buttons and :meth:`DeletionRun.confirm` / :meth:`DeletionRun.cancel` decide. The engine runs meanwhile
in a :class:`~leadlex_nb.background_run.BackgroundRun`, which takes the one decision (first wins, and
one deletion per plan per kernel); this module is the handle's public surface and its display.

Cancel sends nothing. Errors before the plan (no key, a 401 in the dry run, nothing to delete) raise at
once, as with ``confirm=False``.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from pathlib import Path
from typing import Any

import pandas as pd

from leadlex_nb import api
from leadlex_nb.background_run import (
    AWAITING,
    CANCELLED,
    DELETING,
    FAILED,
    FINISHED,
    NO_PLAN,
    REPEATED,
    STOPPED,
    BackgroundRun,
)
from leadlex_nb.errors import LeadLexError
from leadlex_nb.hooks import PlanSummary, Progress
from leadlex_nb.panel import ConfirmPanel
from leadlex_nb.progress import in_kernel, show, update
from leadlex_nb.render_plan import delete_label
from leadlex_nb.render_run import run_bundle, run_summary

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
    ``run.dry_run_result``, ``run.run_id``, ``run.snapshot``; displaying it shows the confirm panel (or, once the run
    has ended, its summary).
    """

    def __init__(self, values: pd.Series, options: dict[str, Any], *, widgets: bool = True) -> None:
        self._widgets = widgets
        self._run = BackgroundRun(values, options, deletion_progress=self._panel_progress, on_end=self._show_end)
        self._panel: ConfirmPanel | None = None  # where widgets work
        self._shown_in: int | None = None  # the execution count of the cell that showed the panel
        self._display_id = f"leadlex-run-{next(_handles)}-{id(self):x}"

    # -- the public surface ---------------------------------------------------------------------

    @property
    def plan(self) -> PlanSummary:
        if self._run.plan is None:
            raise ResultPending("the dry run has not produced a plan")
        return self._run.plan

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
        return self._run.state

    @property
    def error(self) -> BaseException | None:
        """What stopped the run, once it has ended early (None after a normal end or a Cancel)."""
        return self._run.stopped_by()

    @property
    def snapshot(self) -> Path | None:
        """The snapshot file of the contacts the run was to delete, once the run has ended (None: none
        was taken). ``leadlex_nb.restore(run.run_id)`` re-creates them from it."""
        with self._run.lock:
            frame = self._run.frame
        path = frame.attrs.get("leadlex", {}).get("snapshot") if frame is not None else None
        return Path(path) if path else None

    @property
    def result(self) -> pd.DataFrame:
        """The final result frame, once the deletion finished, stopped or was cancelled."""
        with self._run.lock:
            state, frame, error = self._run.state, self._run.frame, self._run.error
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
            f"the deletion is running ({self._run.done_text()}); run.wait() blocks until it ends and returns the "
            "result, run.stop() stops it", run_id=self._run_id())

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the result is final and return it.

        Raises at once while the plan awaits a decision: nobody could click while this blocks. An
        interrupt (the kernel's stop button) stops the deletion like the panel's Stop, waits for the
        requests in flight to be recorded, and raises the stop's error with the partial result.
        """
        if self._run.state == AWAITING:
            raise ResultPending(
                "the plan awaits a decision, and while wait() blocks nobody can click: call run.confirm() "
                "(or click Delete) first, or run.cancel()", run_id=self._run_id())
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._run.finished.wait(0.1):
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(f"the deletion is still running after {timeout} s ({self._run.done_text()})",
                                      run_id=self._run_id())
        except KeyboardInterrupt:
            self.stop("interrupted")
            self._run.wait_recorded()
            if self._run.error is not None:
                raise self._run.error.with_traceback(None) from None
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
        with self._run.lock:
            state = self._run.state
        if state == AWAITING:
            self._decide(False, strict=False)
        elif state == DELETING:
            self._run.stop_signal.set(reason)
            if self._panel is not None:
                self._panel.stopping()
        return self

    def __repr__(self) -> str:
        plan = self._run.plan
        if plan is None:
            return f"<DeletionRun {self._run.state}>"
        return (f"<DeletionRun {plan.run_id} {self._run.state}: {plan.to_delete:,} contacts planned, "
                f"fingerprint {plan.fingerprint[:16]}>")

    # -- display --------------------------------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self._bundle()

    def _ipython_display_(self) -> None:
        if self._shown_in is not None and _execution_count() == self._shown_in:
            return  # the call already showed the panel in this very cell
        self._show()

    def _show(self) -> None:
        self._shown_in = _execution_count()
        show(self._bundle(), self._display_id)

    def _bundle(self) -> dict[str, Any]:
        return run_bundle(self._run, self._panel, no_plan_text=repr(self))

    def _summary_text(self) -> str:
        return run_summary(self._run)

    def _refresh(self) -> None:
        """Replace every shown copy of the panel's output with the current bundle."""
        if self._shown_in is None:
            return
        with contextlib.suppress(Exception):
            update(self._bundle(), self._display_id)

    # -- the run behind the handle --------------------------------------------------------------

    def _start(self) -> DeletionRun | pd.DataFrame:
        """From sync code (a cell): start the run and block until there is a plan or an end."""
        self._run.launch()
        self._run.wait_for_plan()
        return self._handed_over()

    async def _astart(self) -> DeletionRun | pd.DataFrame:
        """From async code (``await df.leadlex.abulk_delete(...)`` in a cell): the same, without blocking
        the caller's loop."""
        self._run.launch()
        await self._run.await_plan()
        return self._handed_over()

    def _handed_over(self) -> DeletionRun | pd.DataFrame:
        """What the call returns: the handle once there is a plan; the frame or the error of a run that
        ended before."""
        if self._run.finished.is_set():
            error = self._run.error
            if error is not None:
                if isinstance(error, LeadLexError):
                    # The user's mistake or a stop, said in one line: no trip through threads and asyncio.
                    raise error.with_traceback(None)
                raise error
            assert self._run.frame is not None
            return self._run.frame
        self._make_panel()
        if in_kernel():
            self._show()
        return self

    def _make_panel(self) -> None:
        if self._run.plan is None or not self._widgets:
            return
        try:
            self._panel = ConfirmPanel(self._run.plan, on_delete=lambda: self._decide(True, strict=False),
                                       on_cancel=lambda: self._decide(False, strict=False),
                                       on_stop=lambda: self.stop("the Stop button was clicked"))
        except Exception:  # no ipywidgets: the text display and run.confirm() still work
            self._panel = None

    def _panel_progress(self, total: int, desc: str) -> Progress | None:
        """The progress bar of the snapshot and the deletion: in the panel, if there is one."""
        return self._panel.progress(total, desc) if self._panel is not None else None

    def _decide(self, confirmed: bool, *, strict: bool) -> bool:
        """One decision, first wins. ``strict`` (from code) raises where a click is just ignored."""
        refused = self._run.decide(confirmed)
        if refused is not None:
            if refused == REPEATED or not strict:
                return False  # the same decision again (a double click), or a late click: ignored
            if refused == NO_PLAN:
                raise ResultPending("the dry run has not produced a plan yet")
            if confirmed:
                raise LeadLexError("this plan was cancelled, so it cannot be confirmed any more; run "
                                   "bulk_delete again for a fresh dry run and plan", run_id=self._run_id())
            raise LeadLexError("the deletion has already started; run.stop() stops it (no new request; those "
                               "in flight finish and are recorded)", run_id=self._run_id())
        if self._panel is not None:
            self._panel.decided(bool(self._run.decision))  # a refused stale copy is cancelled
            if self._run.refusal is not None:
                self._panel.say(self._run.refusal, error=True)
        self._refresh()  # the saved text must not say "nothing has been deleted" any more
        return True

    def _show_end(self) -> None:
        """The decided run has ended (on its thread): the summary replaces the panel."""
        if self._panel is not None:
            with contextlib.suppress(Exception):
                self._panel.finished(run_summary(self._run, html=True))
        # Widget state is not saved with a notebook: leave static text and HTML behind.
        self._refresh()

    # -- small helpers --------------------------------------------------------------------------

    def _run_id(self) -> str | None:
        return self._run.plan.run_id if self._run.plan is not None else None

    def _delete_label(self) -> str:
        return delete_label(self._run.plan) if self._run.plan is not None else "Delete"


def _execution_count() -> int | None:
    """The number of the cell IPython is running, if any."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    count: int | None = getattr(get_ipython(), "execution_count", None)
    return count

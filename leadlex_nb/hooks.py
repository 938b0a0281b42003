"""What front ends see of a run: the plan summary, and the hooks they plug in.

A front end (terminal prompt, notebook panel, CLI, a caller's own function) takes part in a run
through :class:`Hooks`: it is shown a :class:`PlanSummary` and decides, it gets progress bars, it
hears what the run decides, and it may ask the run to stop. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from leadlex_nb.outcome_table import OutcomeTable
from leadlex_nb.plan import Batch, plan_fingerprint
from leadlex_nb.quota import QuotaInfo
from leadlex_nb.results import Outcome, Status, build_result_frame
from leadlex_nb.snapshot import SnapshotPlan

if TYPE_CHECKING:
    import pandas as pd
    from pandas.api.extensions import ExtensionArray

log = logging.getLogger("leadlex_nb")


# The dry-run statuses a plan summary counts, in the order it shows them.
PLAN_STATUSES: tuple[Status, ...] = ("would_delete", "unresolved", "not_found", "error", "not_sent")


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...
    def set_postfix_str(self, s: str = "") -> Any: ...  # a note beside the bar ("" clears it), as in tqdm


ProgressFactory = Callable[[int, str], Progress]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass


def no_progress(total: int, desc: str) -> Progress:
    return _NoProgress()


def reset_text(reset_at: float | None) -> str:
    """``, resets 2026-12-03 00:00 UTC`` for a quota reset time, or nothing when it is unknown."""
    if reset_at is None:
        return ""
    return ", resets " + datetime.fromtimestamp(reset_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class PlanSummary:
    """What the confirmation step shows: exactly what will be sent for deletion."""

    run_id: str
    rows: int
    unique_ids: int
    counts: dict[str, int]          # dry-run status -> unique IDs
    to_delete: int                  # IDs in the plan
    unresolved: int                 # of which existence was not pinned down
    delete_requests: int
    fingerprint: str
    quota_remaining: int | None
    quota_reset_at: float | None
    notes: tuple[str, ...] = ()
    snapshot: SnapshotPlan | None = None  # how the plan is saved before deleting, or why it is not
    # The dry run's per-row frame, for samples; None where the front end does not need it.
    dry_run_result: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, run_id: str, ids: pd.DataFrame, unique: Sequence[str], dry_outcomes: Mapping[str, Outcome],
           batches: Sequence[Batch], quota: QuotaInfo, *, notes: Sequence[str] = (), with_rows: bool = False,
           snapshot: SnapshotPlan | None = None, texts: ExtensionArray | None = None) -> PlanSummary:
        """The summary of a deletion plan; its fingerprint is taken from the very batches that will be sent."""
        if isinstance(dry_outcomes, OutcomeTable) and dry_outcomes.ids == unique:
            counts = dry_outcomes.status_counts()  # by column: no lookup per ID
        else:
            counts = Counter(dry_outcomes[cid].status if cid in dry_outcomes else "not_sent" for cid in unique)
        return cls(
            run_id=run_id, rows=len(ids), unique_ids=len(unique),
            counts={s: counts[s] for s in PLAN_STATUSES if counts[s]},
            to_delete=sum(len(b.ids) for b in batches),
            unresolved=sum(len(b.ids) for b in batches if b.group == "unresolved"),
            delete_requests=len(batches), fingerprint=plan_fingerprint(cid for b in batches for cid in b.ids),
            quota_remaining=quota.remaining, quota_reset_at=quota.reset_at, notes=tuple(notes),
            snapshot=snapshot, dry_run_result=build_result_frame(ids, dry_outcomes, texts=texts) if with_rows else None,
        )

    @property
    def snapshot_requests(self) -> int:
        return self.snapshot.requests if self.snapshot is not None and self.snapshot.promised else 0

    def describe(self) -> str:
        lines = [
            f"Run {self.run_id}: {self.rows} rows, {self.unique_ids} unique valid contact IDs.",
            "Dry run: " + ", ".join(f"{n} {s}" for s, n in self.counts.items() if n) + ".",
            f"Will permanently delete up to {self.to_delete} contacts in {self.delete_requests} request(s)"
            + (f" ({self.unresolved} of them not proven to exist)." if self.unresolved else "."),
        ]
        if self.snapshot is not None:
            lines.append(self.snapshot.describe())
        if self.quota_remaining is not None:
            lines.append(f"Daily quota: {self.quota_remaining} requests left{reset_text(self.quota_reset_at)}.")
        lines.extend(self.notes)
        lines.append(f"Plan fingerprint: {self.fingerprint[:16]}")
        return "\n".join(lines)


ConfirmResult = bool | Awaitable[bool]
Confirm = Callable[[PlanSummary], ConfirmResult]


class StopSignal:
    """A request to stop, safe to set from any thread (a Stop button, a signal handler).

    The run sends no new request after it; requests in flight finish and are recorded. A run
    attaches to it on its own event loop; a signal set before that is seen when it attaches.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._listener: tuple[asyncio.AbstractEventLoop, Callable[[str], None]] | None = None

    @property
    def reason(self) -> str | None:
        return self._reason

    def set(self, reason: str = "stopped on request") -> None:
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
            listener = self._listener
        if listener is not None:
            loop, callback = listener
            with contextlib.suppress(RuntimeError):  # the run's loop has closed: the run is over
                loop.call_soon_threadsafe(callback, reason)

    def attach(self, loop: asyncio.AbstractEventLoop, callback: Callable[[str], None]) -> None:
        """Called by the run on its loop; ``callback(reason)`` runs there once the signal is set."""
        with self._lock:
            self._listener = (loop, callback)
            reason = self._reason
        if reason is not None:
            loop.call_soon(callback, reason)

    def detach(self) -> None:
        with self._lock:
            self._listener = None


def _log_announce(message: str) -> None:
    log.info("%s", message)


@dataclass
class Hooks:
    """How a front end takes part in a run."""

    confirm: Confirm | None = None                  # None: delete the plan without asking
    progress: ProgressFactory = no_progress
    announce: Callable[[str], None] = _log_announce
    stop: StopSignal | None = None

"""Loading a journaled run to finish it: where it stopped, and which batches may be resent blindly.

An ``Idempotency-Key`` is honoured for 24 hours. A delete batch first sent less than 23 hours
ago is resent with its own key and body, so the server replays instead of executing twice; an
older one may have lost its key, so it is dry-run again first (``Run._recheck_expired``).
The key fingerprint is checked before any input is read from the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from leadlex_nb.errors import ResumeError
from leadlex_nb.journal import Journal, JournaledRun
from leadlex_nb.plan import DELETE, DRY_RUN, Batch
from leadlex_nb.results import Outcome

# An Idempotency-Key is honoured for 24 h; resume resends blindly only well inside that.
IDEMPOTENCY_WINDOW_SECONDS = 23 * 3600


@dataclass(frozen=True)
class ResumePoint:
    """What a journal holds of one run, and what is left to send."""

    record: JournaledRun
    ids: pd.DataFrame = field(repr=False)
    dry_outcomes: Mapping[str, Outcome] = field(repr=False)
    delete_outcomes: Mapping[str, Outcome] = field(repr=False)
    plan: tuple[str, ...] | None = field(repr=False)  # None: the run never reached deletion
    fresh: tuple[Batch, ...] = ()  # unanswered, key still honoured: resend as they are
    expired: tuple[Batch, ...] = ()  # unanswered, key may have expired: check first

    @property
    def reached_deletion(self) -> bool:
        return self.plan is not None


def load_resume_point(journal: Journal, run_id: str, key_fingerprint: str, *, now: float) -> ResumePoint:
    """The run ``run_id`` as its journal left it; refuses another key before reading any input."""
    record = journal.load_run(run_id)
    if record is None:
        raise ResumeError(f"no run {run_id!r} in the journal {journal.path}")
    if record.key_fingerprint != key_fingerprint:
        raise ResumeError(f"run {run_id} was made with a different API key; resume it with the same key")
    ids = journal.load_inputs(run_id)
    delete_batches = journal.load_batches(run_id, DELETE)
    if not delete_batches:
        return ResumePoint(record, ids, journal.load_outcomes(run_id, DRY_RUN), {}, None)
    delete_outcomes = journal.load_outcomes(run_id, DELETE)
    pending = [jb for jb in delete_batches if jb.state != "answered"]
    fresh = tuple(jb.batch for jb in pending
                  if jb.first_sent_at is None or now - jb.first_sent_at < IDEMPOTENCY_WINDOW_SECONDS)
    expired = tuple(jb.batch for jb in pending if jb.batch not in fresh)
    # What was recorded for unanswered batches (unknown, not_sent) is about to be decided again.
    for batch in fresh + expired:
        for cid in batch.ids:
            delete_outcomes.pop(cid, None)
    return ResumePoint(
        record, ids, journal.load_outcomes(run_id, DRY_RUN), delete_outcomes,
        plan=tuple(cid for jb in delete_batches for cid in jb.batch.ids), fresh=fresh, expired=expired,
    )

"""Loading a journaled run to finish it: where it stopped, and which batches may be resent blindly.

An ``Idempotency-Key`` is honoured for 24 hours. A delete batch first sent less than 23 hours
ago is resent with its own key and body, so the server replays instead of executing twice; an
older one may have lost its key, so it is dry-run again first (``Run._recheck_expired``).
The key fingerprint is checked before any input is read from the journal.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from leadlex_nb.errors import ResumeError
from leadlex_nb.journal import Journal, JournaledRun
from leadlex_nb.plan import DELETE, DRY_RUN, RECHECK, Batch, build_batches
from leadlex_nb.results import Outcome
from leadlex_nb.sender import Failure, Reply
from leadlex_nb.verdicts import judge_dry_run

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


@dataclass(frozen=True)
class Recheck:
    """What the dry runs of expired batches found, and what is left to resend."""

    resend: list[Batch]  # under fresh keys: the IDs that still exist
    gone: dict[str, Outcome]  # already absent: nothing to send
    failed: dict[str, Outcome]  # the check itself failed: still pending in the journal


async def recheck_expired(run_id: str, batches: Sequence[Batch],
                          send: Callable[[Batch], Awaitable[Reply | Failure]]) -> Recheck:
    """Dry-run each batch whose key may have expired, then plan a resend of what still exists."""
    found = Recheck([], {}, {})
    for batch in batches:
        probe = build_batches(run_id, RECHECK, batch.ids, size=len(batch.ids), start_index=batch.index,
                              key_round=uuid.uuid4().hex[:8])[0]
        reply = await send(probe)
        if isinstance(reply, Failure):
            found.failed.update(dict.fromkeys(batch.ids, reply.outcome(batch.index)))
            continue
        verdict = judge_dry_run(batch.ids, reply.answer, batch=batch.index, attempts=reply.attempts,
                                request_id=reply.request_id)
        gone = [cid for cid, o in verdict.outcomes.items() if o.status == "not_found"]
        found.gone.update(dict.fromkeys(gone, Outcome("gone", None, "already absent when the run was resumed",
                                                      batch.index, reply.attempts, reply.request_id)))
        still_there = [cid for cid in batch.ids if cid not in found.gone]
        if still_there:
            # A fresh key: the old one may have expired, and these IDs were just seen to exist.
            found.resend.extend(build_batches(run_id, DELETE, still_there, size=len(still_there),
                                              start_index=batch.index, group=batch.group,
                                              key_round=f"resumed-{uuid.uuid4().hex[:8]}"))
    return found

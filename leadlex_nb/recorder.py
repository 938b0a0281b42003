"""Writing one run's steps to its journal, where a failed write stops the run like any other stop.

A batch the journal could not record as sending is never sent; an answer it could not record is
still kept in memory, so the partial result stays honest, and the run stops.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from leadlex_nb.errors import JournalError
from leadlex_nb.journal import Journal, SnapshotRecord
from leadlex_nb.plan import Batch, Phase
from leadlex_nb.results import Outcome
from leadlex_nb.sender import Reply, StopState


class Recorder:
    """The journal of one run (or none), seen through the run's stop."""

    def __init__(self, journal: Journal | None, run_id: str, stop: StopState) -> None:
        self._journal = journal
        self._run_id = run_id
        self._stop = stop

    def _write(self, write: Callable[[Journal], None]) -> bool:
        if self._journal is None:
            return True
        try:
            write(self._journal)
        except JournalError as error:
            self._stop.stop(error)
            return False
        return True

    def start(self, *, base_url: str, key_fingerprint: str, dry_run: bool, meta: Mapping[str, Any],
              ids: Any) -> None:
        """The run and its input; nothing has been sent yet, so a failure here simply raises."""
        if self._journal is not None:
            self._journal.start_run(self._run_id, base_url=base_url, key_fingerprint=key_fingerprint,
                                    dry_run=dry_run, meta=meta, ids=ids)

    def state(self, state: str, *, quiet: bool = False, plan_fingerprint: str | None = None) -> None:
        """The run's state; unless ``quiet`` (the run is already ending), a failure raises the stop."""
        written = self._write(lambda j: j.set_state(self._run_id, state, plan_fingerprint=plan_fingerprint))
        if not written and not quiet:
            self._stop.raise_if_stopped()

    def planned(self, batches: list[Batch]) -> None:
        if not self._write(lambda j: j.plan_batches(self._run_id, batches)):
            self._stop.raise_if_stopped()

    def sending(self, batch: Batch) -> bool:
        """Whether the batch may go out: only once the journal holds it as sending."""
        return self._write(lambda j: j.sending(self._run_id, batch))

    def answered(self, batch: Batch, reply: Reply | None, outcomes: Mapping[str, Outcome], state: str) -> None:
        answer = None if reply is None else {
            "deleted_count": reply.answer.deleted_count, "not_found_count": reply.answer.not_found_count,
            "errors": [e.__dict__ for e in reply.answer.errors]}
        self._write(lambda j: j.answered(
            self._run_id, batch, state=state, http_status=200 if reply else None,
            request_id=reply.request_id if reply else None, answer=answer, outcomes=outcomes))

    def outcomes(self, phase: Phase, outcomes: Mapping[str, Outcome]) -> None:
        self._write(lambda j: j.record_outcomes(self._run_id, phase, outcomes))

    @property
    def journal(self) -> Journal | None:
        return self._journal

    def snapshot(self, record: SnapshotRecord) -> None:
        if not self._write(lambda j: j.record_snapshot(self._run_id, record)):
            self._stop.raise_if_stopped()

    def forget(self, phase: Phase) -> None:
        self._write(lambda j: j.forget_phase(self._run_id, phase))

"""The phases of a run: dry run → attribution → confirmation → delete, each step journaled.

Decisions live in pure modules (``verdicts``, ``attribution``, ``retry``, ``plan``, ``results``);
one request's life is :mod:`leadlex_nb.sender`; reading the workspace is
:mod:`leadlex_nb.workspace`; loading a journaled run is :mod:`leadlex_nb.resume`. This module
sequences them and keeps what the run learned, so that however it ends (finished, stopped,
interrupted) the result frame says honestly what happened to each row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.api.extensions import ExtensionArray

from leadlex_nb.attribution import Ambiguity, attribute, with_unresolved
from leadlex_nb.config import Settings
from leadlex_nb.errors import (
    ConfirmationDeclined,
    LeadLexError,
    NothingToDeleteError,
    RunInterrupted,
    SnapshotError,
)
from leadlex_nb.governors import shared_governor
from leadlex_nb.hooks import Hooks, PlanSummary, Progress
from leadlex_nb.ids import unique_valid_ids
from leadlex_nb.journal import Journal, SnapshotRecord
from leadlex_nb.outcome_table import OutcomeTable
from leadlex_nb.pacing import MAX_IN_FLIGHT, RateGovernor
from leadlex_nb.plan import ATTRIBUTION, DELETE, DRY_RUN, Batch, Phase, build_batches, deletion_batches
from leadlex_nb.recorder import Recorder
from leadlex_nb.results import Outcome
from leadlex_nb.resume import ResumePoint, recheck_expired
from leadlex_nb.sender import Failure, Reply, Sender, Stats, StopState, gather_bounded, quota_shortfall_error
from leadlex_nb.settle import settle_rows
from leadlex_nb.snapshot import (
    LACKING,
    SnapshotPlan,
    plan_snapshot,
    snapshot_format,
    snapshot_path,
    write_snapshot,
)
from leadlex_nb.snapshot_reader import SNAPSHOT, SnapshotReader, describe_missing
from leadlex_nb.transport import HttpTransport, Transport
from leadlex_nb.verdicts import Verdict, judge_delete, judge_dry_run
from leadlex_nb.workspace import WorkspaceReader

log = logging.getLogger("leadlex_nb")

# A snapshot taken from the dry run's export when it is at most this old (the confirmation may take a while).
EXPORT_REUSE_SECONDS = 600.0


class Run:
    """One bulk-delete run over one normalised input (the frame of :func:`~leadlex_nb.ids.normalise_ids`).

    ``transport`` and ``governor`` default to the real ones; tests pass fakes. ``texts``: see
    :func:`~leadlex_nb.ids.normalise_with_texts`.
    """

    def __init__(
        self,
        settings: Settings,
        ids: pd.DataFrame,
        *,
        dry_run: bool,
        hooks: Hooks,
        journal: Journal | None = None,
        run_id: str | None = None,
        transport: Transport | None = None,
        governor: RateGovernor | None = None,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        texts: ExtensionArray | None = None,
    ) -> None:
        self.settings = settings
        self.ids = ids
        self.texts = texts  # the input's own text array, when the result's contact_id can share it
        self.dry_run = dry_run
        self.hooks = hooks
        self.run_id = run_id or uuid.uuid4().hex[:16]
        self.stats = Stats()
        self.unique = unique_valid_ids(ids)
        # Per unique ID, as columns: a million IDs cost a few MB, not a dictionary each.
        self.dry_outcomes = OutcomeTable(self.unique)
        self.delete_outcomes = self.dry_outcomes.sibling()
        self.plan: list[str] | None = None
        self.notes: list[str] = []
        self.stop = StopState(hooks.announce)
        self.recorder = Recorder(journal, self.run_id, self.stop)
        self._given_transport = transport
        self._given_governor = governor
        # Until the run connects and joins its key's shared governor: what a summary reads meanwhile.
        self._governor = governor or RateGovernor(settings.rate_limit, learn_window=settings.rate_window)
        self._rand, self._sleep = rand, sleep
        self._sender: Sender | None = None
        # Delete batches that have gone out at least once and whose outcome is not recorded yet:
        # after an interrupt their rows are ``unknown``, never ``not_sent``.
        self._unsettled: dict[int, Batch] = {}
        self._unsent_reason = "not sent"
        self._dry_round: str | None = None
        self._bar: Progress | None = None  # the phase's progress bar, for pacing notes
        self._resume_point: ResumePoint | None = None
        self._reader: WorkspaceReader | None = None
        self.snapshot_path: Path | None = None

    @classmethod
    def from_journal(cls, settings: Settings, hooks: Hooks, journal: Journal, point: ResumePoint,
                     transport: Transport | None = None) -> Run:
        """A run picked up where its journal left it; :meth:`resume` finishes it."""
        run = cls(settings, point.ids, dry_run=point.record.dry_run, hooks=hooks, journal=journal,
                  run_id=point.record.run_id, transport=transport)
        run.dry_outcomes.put(point.dry_outcomes)
        run.delete_outcomes.put(point.delete_outcomes)
        run.plan = list(point.plan) if point.plan is not None else None
        run._resume_point = point
        snapshot = journal.load_snapshot(run.run_id)
        run.snapshot_path = snapshot.path if snapshot is not None else None
        if not point.record.index_restored:
            run.notes.append("the input's index could not be stored as data; the result is indexed by row position")
        return run

    # -- entry points ------------------------------------------------------------------

    async def execute(self) -> pd.DataFrame:
        unique = self._unique_ids()
        self.recorder.start(base_url=self.settings.base_url, key_fingerprint=self.settings.api_key.fingerprint,
                            dry_run=self.dry_run, meta={"batch_size": self.settings.batch_size}, ids=self.ids)
        async with self._connected():
            return await self._guarded(self._full_run(unique))

    async def resume(self) -> pd.DataFrame:
        """Finish a run built by :meth:`from_journal`, sending nothing twice."""
        point = self._resume_point
        if point is None:
            raise LeadLexError("resume() is for runs made by Run.from_journal")
        if not point.reached_deletion:
            if point.record.state == "finished":
                return self._result()  # a finished dry run: its answers are all in the journal
            # The plan was never confirmed: it may be stale, so the dry run is done again, under
            # new keys (the old ones would replay the old answers).
            self._dry_round = uuid.uuid4().hex[:8]
            self.recorder.forget(DRY_RUN)
            self.dry_outcomes = self.delete_outcomes.sibling()
            unique = self._unique_ids()
            async with self._connected():
                return await self._guarded(self._full_run(unique))

        async def finish() -> pd.DataFrame:
            checked = await recheck_expired(self.run_id, point.expired, self._send)
            self.delete_outcomes.put(checked.failed)
            self.delete_outcomes.put(checked.gone)
            self.recorder.outcomes(DELETE, checked.gone)
            await self._delete_phase(list(point.fresh) + checked.resend)
            self.recorder.state("finished")
            return self._result()

        async with self._connected():
            return await self._guarded(finish())

    async def _full_run(self, unique: list[str]) -> pd.DataFrame:
        self.recorder.state("dry_run")
        await self._dry_run_phase(unique)
        if not self.dry_run:
            batches = deletion_batches(self.run_id, unique, self.dry_outcomes, size=self.settings.batch_size)
            self.plan = [cid for b in batches for cid in b.ids]
            snapshot = await self._plan_snapshot(len(self.plan))
            await self._confirm(PlanSummary.of(self.run_id, self.ids, unique, self.dry_outcomes, batches,
                                               self._governor.quota, notes=self.notes,
                                               with_rows=self.hooks.confirm is not None, snapshot=snapshot,
                                               texts=self.texts))
            if snapshot.promised:
                saved = await self._take_snapshot(snapshot)
                batches = deletion_batches(self.run_id, [cid for cid in unique if cid in saved],
                                           self.dry_outcomes, size=self.settings.batch_size)
            await self._delete_phase(batches)
        self.recorder.state("finished")
        return self._result()

    def _unique_ids(self) -> list[str]:
        unique = self.unique
        if not unique:
            raise NothingToDeleteError(f"no valid contact ID among {len(self.ids)} row(s); nothing was sent")
        return unique

    async def _guarded(self, work: Coroutine[Any, Any, pd.DataFrame]) -> pd.DataFrame:
        """Turn a cancellation or a stop into an exception that carries the partial result."""
        try:
            return await work
        except asyncio.CancelledError:
            self.recorder.state("interrupted", quiet=True)
            raise RunInterrupted(
                f"run {self.run_id} interrupted; requests in flight are marked unknown. "
                f"Finish it with leadlex_nb.resume({self.run_id!r})",
                result=self._result(interrupted=True), run_id=self.run_id,
            ) from None
        except LeadLexError as error:
            if error.result is None:
                error.result, error.run_id = self._result(), self.run_id
            self.recorder.state("stopped", quiet=True)
            raise

    # -- plumbing ----------------------------------------------------------------------

    def _in_flight_limit(self) -> int:
        """The caller's ``concurrency``, else as many as the rate limit can use."""
        return self.settings.concurrency or self._governor.suggested_in_flight()

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[None]:
        """The key's shared governor and the sender for the length of the run, and the front end's
        Stop wired to it."""
        with contextlib.ExitStack() as governors:
            if self._given_governor is None:
                self._governor = governors.enter_context(shared_governor(
                    self.settings.base_url, self.settings.api_key.fingerprint, self.settings.rate_limit,
                    self.settings.rate_window))
            async with self._transport():
                yield

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[None]:
        settings = self.settings
        opened: HttpTransport | None = None
        transport = self._given_transport
        if transport is None:
            opened = HttpTransport(settings.base_url, settings.api_key, timeout=settings.timeout,
                                   max_connections=settings.concurrency or MAX_IN_FLIGHT)
            transport = await opened.__aenter__()
        self._sender = Sender(transport, self._governor, settings.retry, self.stop, stats=self.stats,
                              rand=self._rand, sleep=self._sleep, on_pacing=self._show_pacing)
        if self.hooks.stop is not None:
            self.hooks.stop.attach(asyncio.get_running_loop(), self._stop_requested)
        try:
            yield
        finally:
            if self.hooks.stop is not None:
                self.hooks.stop.detach()
            if opened is not None:
                await self._close(opened)

    async def _close(self, transport: HttpTransport) -> None:
        """Close the connections; a cancel landing here comes after the run's last answer, so it
        ends the call with the result (complete) rather than a bare CancelledError."""
        closing = asyncio.ensure_future(transport.close())
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            raise RunInterrupted(
                f"run {self.run_id} interrupted as it closed its connections, after its last answer; "
                f"the result is complete", result=self._result(), run_id=self.run_id,
            ) from None

    def _show_pacing(self, wait: float | None) -> None:
        """On the progress bar: that pacing holds requests back, and until when."""
        if self._bar is not None:
            until = time.strftime("%H:%M:%S", time.localtime(time.time() + wait)) if wait is not None else None
            self._bar.set_postfix_str(f"waiting for the rate limit until {until}" if until else "")

    def _stop_requested(self, reason: str) -> None:
        self.stop.stop(RunInterrupted(
            f"{reason}: no new request was sent, and those in flight finished and were recorded. "
            f"Finish the run with leadlex_nb.resume({self.run_id!r})", run_id=self.run_id,
        ))

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            raise RuntimeError("the run is not connected")
        return self._sender

    def _check_quota(self, needed: int) -> None:
        shortfall = quota_shortfall_error(needed, self._governor.quota)
        if shortfall is not None:
            self.stop.stop(shortfall)

    def _batches(self, phase: Phase, ids: Sequence[str], **options: Any) -> list[Batch]:
        return build_batches(self.run_id, phase, ids, size=options.pop("size", self.settings.batch_size), **options)

    async def _send(self, batch: Batch) -> Reply | Failure:
        """Journal the batch as sending, then send it; an unjournaled batch is never sent."""
        if not self.recorder.sending(batch):
            return Failure("not_sent", "journal_error", f"not sent: {self.stop.error}", 0, None)

        def leaving() -> None:
            if batch.phase == DELETE:
                self._unsettled[batch.index] = batch

        return await self.sender.send_bulk(batch, leaving)

    def _settle(self, batch: Batch, reply: Reply | None, outcomes: Mapping[str, Outcome], state: str) -> None:
        """Keep what one batch's answer decided, then journal it."""
        target = self.delete_outcomes if batch.phase == DELETE else self.dry_outcomes
        # A batch usually holds the unique IDs from index × size on: stored by one slice assignment.
        target.put(outcomes, start=batch.index * self.settings.batch_size)
        if batch.phase == DELETE:
            self._unsettled.pop(batch.index, None)
        self.recorder.answered(batch, reply, outcomes, state)

    # -- dry run and attribution -------------------------------------------------------

    async def _dry_run_phase(self, unique: list[str]) -> None:
        batches = self._batches(DRY_RUN, unique, key_round=self._dry_round)
        self.recorder.planned(batches)
        bar = self._bar = self.hooks.progress(len(unique), "dry run")
        ambiguities: list[Ambiguity] = []
        try:
            # The first batch goes alone: its headers tell whether the quota can cover the run.
            if await self._dry_run_batch(batches[0], ambiguities, bar) and not self.settings.ignore_quota:
                self._check_quota(needed=2 * len(batches) - 1)
            await gather_bounded((self._dry_run_batch(b, ambiguities, bar) for b in batches[1:]),
                                 self._in_flight_limit, self.stop)
        finally:
            bar.close()
        self.stop.raise_if_stopped()
        if ambiguities:
            self.recorder.outcomes(DRY_RUN, await self._attribute(ambiguities))

    async def _dry_run_batch(self, batch: Batch, ambiguities: list[Ambiguity], bar: Progress) -> bool:
        reply = await self._send(batch)
        bar.update(len(batch.ids))
        if isinstance(reply, Failure):
            # A dry run changes nothing, so a failed one is never "unknown".
            outcome = Outcome("not_sent", reply.error_code, f"dry run failed: {reply.error_message}",
                              batch.index, reply.attempts or None, reply.request_id)
            self._settle(batch, None, {cid: outcome for cid in batch.ids}, "failed")
            return False
        verdict = self._judge(judge_dry_run, batch, reply)
        if verdict.unresolved:
            ambiguities.append(Ambiguity(batch.index, verdict.unresolved, verdict.missing_among_unresolved))
        self._settle(batch, reply, verdict.outcomes, "answered")
        return True

    async def _attribute(self, ambiguities: list[Ambiguity]) -> dict[str, Outcome]:
        """Pin down what attribution can; the rest of the ambiguous batches stay unresolved."""
        clean = [a for a in ambiguities if a.missing >= 0]
        outcomes, notes = await attribute(clean, self._workspace(ATTRIBUTION),
                                          self.settings.attribution_budget, self.hooks.announce)
        self.notes.extend(notes)
        outcomes = with_unresolved(ambiguities, outcomes)
        self.dry_outcomes.put(outcomes)
        return outcomes

    @staticmethod
    def _judge(judge: Callable[..., Verdict], batch: Batch, reply: Reply) -> Verdict:
        verdict: Verdict = judge(batch.ids, reply.answer, batch=batch.index, attempts=reply.attempts,
                                 request_id=reply.request_id)
        if verdict.inconsistency is not None:
            log.warning("%s answer for batch %d does not add up (X-Request-ID %s): %s",
                        batch.phase, batch.index, reply.request_id, verdict.inconsistency)
        return verdict

    # -- snapshot ----------------------------------------------------------------------

    def _workspace(self, phase: str) -> WorkspaceReader:
        """The run's reader of the workspace (made by the first phase that needs it)."""
        if self._reader is None:
            async def probe(index: int, ids: Sequence[str]) -> Reply | Failure:
                batch = self._batches(ATTRIBUTION, ids, size=len(ids), start_index=index,
                                      key_round=uuid.uuid4().hex[:8])
                return await self._send(batch[0])

            self._reader = WorkspaceReader(self.sender, probe, phase=phase)
            if not self.dry_run and self.settings.snapshot in (True, "export") and self.recorder.journal is not None:
                self._reader.keep_export = set(self.unique)
        return self._reader

    async def _plan_snapshot(self, contacts: int) -> SnapshotPlan:
        """How the plan will be saved, for the summary; reads the workspace's size unless attribution did."""
        wanted = self.settings.snapshot
        journal = self.recorder.journal
        if wanted is not False and contacts and (journal is None or str(journal.path) == ":memory:"):
            return SnapshotPlan(None, 0, contacts, "there is no journal file to keep it beside (journal=False)")
        if wanted is False or not contacts:
            return plan_snapshot(contacts, None, wanted=wanted, readable=True)
        reader = self._workspace(SNAPSHOT)
        total = await reader.workspace_total()
        self.stop.raise_if_stopped()
        if total is None:
            return SnapshotPlan(None, 0, contacts, f"the workspace's contacts cannot be read ({reader.refusal})")
        return plan_snapshot(contacts, total, wanted=wanted, readable=True, exported=self._fresh_export() is not None)

    def _fresh_export(self) -> list[dict[str, str]] | None:
        """The dry run's export, while young enough to stand for the contacts about to be deleted."""
        export = self._reader.export if self._reader is not None else None
        if export is None or time.monotonic() - export[1] > EXPORT_REUSE_SECONDS:
            return None
        return export[0]

    async def _take_snapshot(self, plan: SnapshotPlan) -> set[str]:
        """Save the planned contacts before the first delete; the IDs saved. Those not saved are not
        deleted: their rows end ``not_sent`` with ``snapshot_missing``."""
        planned = list(self.plan or ())
        bar = self._bar = self.hooks.progress(len(planned), "snapshot")
        reuse = self._fresh_export() if plan.requests == 0 else None
        reader = SnapshotReader(self.sender, self._in_flight_limit, self.stop, bar, self._note, reuse)
        try:
            found = await reader.take(plan, planned, self._workspace(SNAPSHOT).total or 0)
        finally:
            bar.close()
        self.stop.raise_if_stopped()
        journal = self.recorder.journal
        assert journal is not None  # no journal, no snapshot plan
        fmt = snapshot_format()
        path = snapshot_path(journal.path.absolute(), self.run_id, fmt)  # restore may run from elsewhere
        try:
            write_snapshot(path, (found[cid] for cid in planned if cid in found), fmt)
        except OSError as error:
            raise SnapshotError(f"the snapshot could not be written to {path} ({error.strerror}); "
                                "nothing was deleted") from None
        absent = [cid for cid in planned if cid in reader.absent]
        missing = [cid for cid in planned if cid not in found and cid not in reader.absent]
        spent = self.stats.requests[SNAPSHOT]  # the size probe and every attempt, as the report counts them
        strategy = plan.strategy or ""
        self.recorder.snapshot(SnapshotRecord(path, strategy, len(found), len(missing), spent, time.time()))
        self.snapshot_path = path
        lacking = f", {LACKING[strategy]}" if strategy in LACKING else ""
        self._note(f"snapshot: {len(found):,} contacts saved to {path} by {strategy}{lacking}, "
                   f"in {spent:,} request(s)")
        outcomes = dict.fromkeys(absent, Outcome("not_found"))  # gone since the dry run: nothing to delete
        if missing:
            self._note(describe_missing(len(missing), len(planned)))
            outcomes.update(dict.fromkeys(missing, Outcome(
                "not_sent", "snapshot_missing", "not deleted: no snapshot of it could be read; "
                "delete it with snapshot=False to go without one")))
        if outcomes:
            self.delete_outcomes.put(outcomes)
            self.recorder.outcomes(DELETE, outcomes)
        return set(found)

    def _note(self, message: str) -> None:
        self.notes.append(message)
        self.hooks.announce(message)

    # -- confirm and delete ------------------------------------------------------------

    async def _confirm(self, summary: PlanSummary) -> None:
        self.recorder.state("confirming", plan_fingerprint=summary.fingerprint)
        if summary.to_delete == 0:
            self.hooks.announce("nothing to delete: the dry run found no deletable contact")
            return
        if not self.settings.ignore_quota:
            self._check_quota(needed=summary.delete_requests + summary.snapshot_requests)
            self.stop.raise_if_stopped()
        if self.hooks.confirm is None:
            return
        decision = self.hooks.confirm(summary)
        if not isinstance(decision, bool):
            decision = await decision
        self.stop.raise_if_stopped()
        if decision is not True:
            self._unsent_reason = "the deletion plan was not confirmed"
            raise ConfirmationDeclined("the deletion plan was not confirmed; nothing was deleted")

    async def _delete_phase(self, batches: list[Batch]) -> None:
        if not batches:
            return
        self.recorder.state("deleting")
        self.recorder.planned(batches)
        self.plan = [cid for b in batches for cid in b.ids] if self.plan is None else self.plan
        bar = self._bar = self.hooks.progress(sum(len(b.ids) for b in batches), "delete")
        try:
            await gather_bounded((self._delete_batch(b, bar) for b in batches), self._in_flight_limit, self.stop)
        finally:
            bar.close()
        self.stop.raise_if_stopped()

    async def _delete_batch(self, batch: Batch, bar: Progress) -> None:
        reply = await self._send(batch)
        if isinstance(reply, Failure):
            outcomes = dict.fromkeys(batch.ids, reply.outcome(batch.index))  # one shared, immutable
            self._settle(batch, None, outcomes, "failed" if reply.status == "not_sent" else "sending")
        else:
            outcomes = self._judge(judge_delete, batch, reply).outcomes
            # An answer that did not add up proves nothing: journaled as unanswered, resume resends it
            # under the same key, and the server replays what it did.
            doubtful = any(o.status == "unknown" for o in outcomes.values())
            self._settle(batch, reply, outcomes, "sending" if doubtful else "answered")
        bar.update(len(batch.ids))

    # -- results -----------------------------------------------------------------------

    def _result(self, *, interrupted: bool = False) -> pd.DataFrame:
        in_flight = {cid: b.index for b in self._unsettled.values() for cid in b.ids}
        stopped = str(self.stop.error) if self.stop.error is not None else None
        frame = settle_rows(self.ids, self.dry_outcomes, self.delete_outcomes, self.plan, in_flight,
                            stopped=stopped, interrupted=interrupted, unsent_reason=self._unsent_reason,
                            texts=self.texts)
        frame.attrs["leadlex"] = self.report()
        return frame

    def report(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "requests": dict(self.stats.requests),
            "rate_limited": self.stats.rate_limited,
            "wall_seconds": round(time.monotonic() - self.stats.started, 3),
            "quota_remaining": self._governor.quota.remaining,
            "notes": list(self.notes),
            "snapshot": str(self.snapshot_path) if self.snapshot_path is not None else None,
        }

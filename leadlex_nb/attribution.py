"""Pinning down which IDs of a dry-run batch are missing, within a request budget.

A dry run answers ``not_found_count``, not which IDs. Three ways to learn them, each
spending the daily quota differently:

- ``bisect``: dry-run half of the batch; the other half's count follows from the parent's.
  About k·(log2(n/k)+1) requests for k missing among n: cheap for a few, ruinous for many.
- ``list``: read the workspace's IDs with ``GET /v1/contacts``, 100 per request.
- ``export``: read them with ``GET /v1/contacts/export`` (CSV), up to 50,000 per request paged
  by creation date (:mod:`leadlex_nb.export_pages`), 10 calls an hour, needs ``read:contacts``.

Reading the workspace costs one probe (``GET /v1/contacts?per_page=1``) to learn its size.
The cheapest strategy that fits the budget is chosen; when one is refused (403, 404, 429)
the next is tried. A read is trusted for a batch only when it agrees with that batch's
dry-run count; what stays unproven remains ``unresolved``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from leadlex_nb.export_pages import export_calls
from leadlex_nb.results import Outcome, Status
from leadlex_nb.verdicts import BulkAnswer, judge_dry_run

LIST_PAGE_SIZE = 100
BISECT, LISTING, EXPORT = "bisect", "list", "export"


@dataclass(frozen=True)
class Ambiguity:
    """A dry-run batch whose counts did not say which of its IDs are missing."""

    batch: int
    ids: tuple[str, ...]
    missing: int


@dataclass(frozen=True)
class Choice:
    strategy: str
    estimated_requests: int


def bisect_cost(n: int, k: int) -> int:
    """Expected dry runs to pin k missing IDs among n by halving (one request per split)."""
    if k <= 0 or k >= n:
        return 0
    return min(n - 1, math.ceil(k * (math.log2(n / k) + 1)))


def read_costs(workspace_total: int) -> dict[str, int]:
    """Requests to read every ID of a workspace of this size (excluding the size probe)."""
    costs = {LISTING: max(1, math.ceil(workspace_total / LIST_PAGE_SIZE))}
    calls = export_calls(workspace_total)
    if calls is not None:
        costs[EXPORT] = calls
    return costs


def rank_strategies(
    ambiguities: Sequence[Ambiguity], workspace_total: int | None, budget: int
) -> list[Choice]:
    """Strategies that fit ``budget``, cheapest first; bisect last when nothing else fits."""
    bisect_total = sum(bisect_cost(len(a.ids), a.missing) for a in ambiguities)
    choices = [Choice(BISECT, bisect_total)]
    if workspace_total is not None:
        choices += [Choice(name, cost) for name, cost in read_costs(workspace_total).items()]
    fitting = sorted((c for c in choices if c.estimated_requests <= budget), key=lambda c: c.estimated_requests)
    if not any(c.strategy == BISECT for c in fitting):
        # Partial bisection still pins the cheapest batches within the budget.
        fitting.append(Choice(BISECT, min(bisect_total, budget)))
    return fitting


def worth_probing(ambiguities: Sequence[Ambiguity], budget: int) -> bool:
    """Probe the workspace size only when reading it could beat bisection."""
    bisect_total = sum(bisect_cost(len(a.ids), a.missing) for a in ambiguities)
    # A read costs the probe plus at least one request.
    return budget >= 2 and bisect_total > 2


class Source(Protocol):
    """The I/O attribution needs; the runner provides it (with pacing and retries)."""

    async def dry_run(self, batch: int, ids: Sequence[str]) -> tuple[BulkAnswer, int, str | None] | None:
        """Answer, attempts, request id; None when the request failed or the answer made no sense."""

    async def workspace_total(self) -> int | None: ...

    async def read_ids(self, strategy: str, workspace_total: int) -> tuple[set[str], str | None] | None:
        """Every ID in the workspace and the request id of the read; None when refused."""


def resolve_from_workspace(
    ambiguities: Sequence[Ambiguity], existing: set[str], request_id: str | None
) -> dict[str, Outcome]:
    """Trust the read for a batch only when it agrees with that batch's dry-run count."""
    outcomes: dict[str, Outcome] = {}
    for amb in ambiguities:
        missing = [contact_id for contact_id in amb.ids if contact_id not in existing]
        if len(missing) != amb.missing:
            continue  # the workspace changed between the dry run and the read
        missing_set = set(missing)
        for contact_id in amb.ids:
            status: Status = "not_found" if contact_id in missing_set else "would_delete"
            outcomes[contact_id] = Outcome(status, batch=amb.batch, attempts=1, request_id=request_id)
    return outcomes


class _Bisector:
    def __init__(self, source: Source, budget: int) -> None:
        self.source = source
        self.budget = budget
        self.spent = 0
        self.outcomes: dict[str, Outcome] = {}

    def _settle(self, ids: Sequence[str], status: Status, batch: int, request_id: str | None) -> None:
        for contact_id in ids:
            self.outcomes[contact_id] = Outcome(status, batch=batch, attempts=1, request_id=request_id)

    async def pin(self, batch: int, ids: Sequence[str], missing: int, request_id: str | None) -> None:
        if missing == 0:
            self._settle(ids, "would_delete", batch, request_id)
            return
        if missing == len(ids):
            self._settle(ids, "not_found", batch, request_id)
            return
        if self.spent >= self.budget:
            return  # left unresolved
        self.spent += 1
        left, right = ids[: len(ids) // 2], ids[len(ids) // 2 :]
        reply = await self.source.dry_run(batch, left)
        if reply is None:
            return
        answer, _attempts, left_request = reply
        verdict = judge_dry_run(left, answer, batch=batch, attempts=1, request_id=left_request)
        if verdict.inconsistency is not None or any(o.status == "error" for o in verdict.outcomes.values()):
            # The workspace changed since the dry run: the parent's count no longer splits cleanly.
            return
        left_missing = answer.not_found_count
        await asyncio.gather(
            self.pin(batch, left, left_missing, left_request),
            self.pin(batch, right, missing - left_missing, request_id),
        )


async def attribute(
    ambiguities: Sequence[Ambiguity],
    source: Source,
    budget: int,
    announce: Callable[[str], None] | None = None,
) -> tuple[dict[str, Outcome], list[str]]:
    """Outcomes for the IDs that could be pinned down, and a log of what was tried."""
    say = announce or (lambda _message: None)
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message)
        say(message)

    if not ambiguities or budget <= 0:
        if ambiguities:
            note("attribution skipped: the request budget is 0")
        return {}, notes
    remaining = budget
    total: int | None = None
    if worth_probing(ambiguities, budget):
        total = await source.workspace_total()
        remaining -= 1
        if total is None:
            note("cannot read the workspace's contacts (no read:contacts, or refused); bisecting instead")
    ranked = rank_strategies(ambiguities, total, remaining)
    outcomes: dict[str, Outcome] = {}
    while ranked:
        choice = ranked.pop(0)
        pending = [a for a in ambiguities if a.ids[0] not in outcomes]
        if not pending:
            break
        note(
            f"attribution: {sum(a.missing for a in pending)} missing ID(s) in {len(pending)} batch(es); "
            f"strategy {choice.strategy!r}, about {choice.estimated_requests} request(s) (budget {remaining})"
        )
        if choice.strategy == BISECT:
            bisector = _Bisector(source, remaining)
            await asyncio.gather(*(bisector.pin(a.batch, a.ids, a.missing, None) for a in pending))
            outcomes.update(bisector.outcomes)
            remaining -= bisector.spent
            break
        assert total is not None
        read = await source.read_ids(choice.strategy, total)
        remaining -= choice.estimated_requests
        if read is None:
            note(f"strategy {choice.strategy!r} was refused; trying the next")
            continue
        existing, request_id = read
        outcomes.update(resolve_from_workspace(pending, existing, request_id))
        # Batches the read could not settle (the workspace moved) are left to bisection only.
        ranked = [c for c in ranked if c.strategy == BISECT]
    left = sum(1 for a in ambiguities for i in a.ids if i not in outcomes)
    if left:
        note(f"{left} ID(s) stay unresolved")
    return outcomes, notes


def with_unresolved(ambiguities: Sequence[Ambiguity], outcomes: Mapping[str, Outcome]) -> dict[str, Outcome]:
    """``outcomes``, plus ``unresolved`` for every ambiguous ID attribution did not pin down."""
    settled = dict(outcomes)
    for amb in ambiguities:
        reason = (f"{amb.missing} of the {len(amb.ids)} IDs in this batch are missing; which ones was not pinned down"
                  if amb.missing >= 0 else "the dry-run answer did not add up")
        for contact_id in amb.ids:
            settled.setdefault(contact_id, Outcome("unresolved", None, reason, amb.batch, 1, None))
    return settled

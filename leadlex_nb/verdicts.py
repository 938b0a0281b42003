"""Pure: what a bulk-delete answer proves about each ID it carried.

The API answers with counts (``deleted_count``, ``not_found_count``) and per-row
``errors``, never with the list of IDs it did not find. A status is given only where the
answer proves it; where the counts cannot tell IDs apart, the verdict says so
(``unresolved`` for a dry run, ``gone`` after a delete) instead of guessing. An answer
whose counts do not add up is never turned into a status: its rows stay undecided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from leadlex_nb.results import Outcome, Status


@dataclass(frozen=True)
class RowError:
    contact_id: str
    code: str | None
    message: str | None


@dataclass(frozen=True)
class BulkAnswer:
    deleted_count: int
    not_found_count: int
    errors: tuple[RowError, ...] = ()


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def parse_bulk_answer(payload: Any) -> BulkAnswer | None:
    """The documented ``{"data": {...}}`` shape, or None when the body is anything else."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
        return None
    data = payload["data"]
    deleted, not_found = _count(data.get("deleted_count")), _count(data.get("not_found_count"))
    raw_errors = data.get("errors", [])
    if deleted is None or not_found is None or not isinstance(raw_errors, list):
        return None
    errors = []
    for item in raw_errors:
        if not isinstance(item, Mapping) or not isinstance(item.get("contact_id"), str):
            return None
        code, message = item.get("code"), item.get("message")
        errors.append(
            RowError(
                contact_id=item["contact_id"].strip().lower(),
                code=code if isinstance(code, str) else None,
                message=message if isinstance(message, str) else None,
            )
        )
    return BulkAnswer(deleted, not_found, tuple(errors))


@dataclass(frozen=True)
class Verdict:
    """What one answer decided for one batch."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # Dry run only: IDs the counts could not tell apart, and how many of them are missing.
    unresolved: tuple[str, ...] = ()
    missing_among_unresolved: int = 0
    # Set when the answer does not add up; its undecided rows carry this as their reason.
    inconsistency: str | None = None


class _Stamp(TypedDict):
    """Which answer decided: the fields every outcome of one batch shares."""

    batch: int
    attempts: int
    request_id: str | None


def _split_errors(
    ids: Sequence[str], answer: BulkAnswer, stamp: _Stamp
) -> tuple[dict[str, Outcome], list[str], str | None]:
    refused: dict[str, Outcome] = {}
    strangers = []
    if answer.errors:
        sent = set(ids)
        for error in answer.errors:
            if error.contact_id in sent:
                refused.setdefault(
                    error.contact_id,
                    Outcome("error", error.code or "unknown_error", error.message, **stamp),
                )
            else:
                strangers.append(error.contact_id)
        rest = [contact_id for contact_id in ids if contact_id not in refused]
    else:  # the usual answer names no row: nothing to sort out per ID
        rest = list(ids)
    problem = None
    if strangers:
        problem = f"errors[] names {len(strangers)} ID(s) that were not sent in this batch"
    elif answer.deleted_count + answer.not_found_count != len(rest):
        problem = (
            f"counts do not add up: deleted_count {answer.deleted_count} + not_found_count "
            f"{answer.not_found_count} != {len(rest)} IDs sent without a row error"
        )
    return refused, rest, problem


def judge_dry_run(
    ids: Sequence[str], answer: BulkAnswer, *, batch: int, attempts: int, request_id: str | None
) -> Verdict:
    """A dry run proves ``would_delete`` or ``not_found`` only when the batch is all one or the other."""
    stamp: _Stamp = {"batch": batch, "attempts": attempts, "request_id": request_id}
    refused, rest, problem = _split_errors(ids, answer, stamp)
    if problem is not None:
        return Verdict(refused, unresolved=tuple(rest), missing_among_unresolved=-1, inconsistency=problem)
    outcomes = dict(refused)
    if answer.not_found_count == 0:
        outcomes.update(dict.fromkeys(rest, Outcome("would_delete", **stamp)))  # one shared, immutable
        return Verdict(outcomes)
    if answer.deleted_count == 0:
        outcomes.update(dict.fromkeys(rest, Outcome("not_found", **stamp)))
        return Verdict(outcomes)
    return Verdict(outcomes, unresolved=tuple(rest), missing_among_unresolved=answer.not_found_count)


def judge_delete(
    ids: Sequence[str], answer: BulkAnswer, *, batch: int, attempts: int, request_id: str | None
) -> Verdict:
    """``deleted`` only where the counts prove it; ``gone`` where they cannot tell."""
    stamp: _Stamp = {"batch": batch, "attempts": attempts, "request_id": request_id}
    refused, rest, problem = _split_errors(ids, answer, stamp)
    outcomes = dict(refused)
    if problem is not None:
        # The server answered, so it may have executed: the honest status is unknown.
        outcomes.update(dict.fromkeys(rest, Outcome("unknown", "inconsistent_answer", problem, **stamp)))
        return Verdict(outcomes, inconsistency=problem)
    status: Status
    if answer.not_found_count == 0:
        status = "deleted"
    elif answer.deleted_count == 0:
        status = "not_found"
    else:
        status = "gone"
    outcomes.update(dict.fromkeys(rest, Outcome(status, **stamp)))
    return Verdict(outcomes)

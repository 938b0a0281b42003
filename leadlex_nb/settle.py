"""How a run's rows end: what it learned, plus an honest status for what it did not.

Pure: however a run ends (finished, stopped, interrupted), the planned IDs without a delete
outcome are either ``unknown`` (their batch went out and its answer never came) or ``not_sent``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from pandas.api.extensions import ExtensionArray

from leadlex_nb.ids import unique_valid_ids
from leadlex_nb.outcome_table import OutcomeTable
from leadlex_nb.results import Outcome, build_result_frame


def settle_rows(
    ids: pd.DataFrame,
    dry_outcomes: Mapping[str, Outcome],
    delete_outcomes: Mapping[str, Outcome],
    plan: Sequence[str] | None,
    in_flight: Mapping[str, int],
    *,
    stopped: str | None,
    interrupted: bool,
    unsent_reason: str,
    texts: ExtensionArray | None = None,
) -> pd.DataFrame:
    """The result frame. ``in_flight`` maps the IDs of batches sent but unanswered to their batch;
    ``texts`` is the input's own text array when the frame's IDs are its text unchanged."""
    unsent = "run stopped before this ID was sent" if stopped or interrupted else None
    if not plan and not delete_outcomes:  # a dry run: its outcomes as they are, not a copy of a million
        return build_result_frame(ids, dry_outcomes, unsent_status="not_sent", unsent_reason=unsent, texts=texts)
    # By column: the run's own tables are used as they are; other mappings are put into tables first.
    merged = dry_outcomes.copy() if isinstance(dry_outcomes, OutcomeTable) \
        else OutcomeTable(unique_valid_ids(ids), dry_outcomes)
    deleted = merged.sibling()
    deleted.put(delete_outcomes)
    merged.put(deleted)
    pending = deleted.without_outcome(plan or ())
    reason = f"run stopped: {stopped}" if stopped else unsent_reason
    if interrupted:
        reason = "interrupted before this batch was sent"
    # One shared Outcome per batch in flight and per dry-run status: the result frame's table stays small.
    unknown: dict[int, Outcome] = {}
    not_sent: dict[str | None, Outcome] = {}
    settled: dict[str, Outcome] = {}
    for cid in pending:
        if cid in in_flight:
            batch = in_flight[cid]
            if batch not in unknown:
                unknown[batch] = Outcome("unknown", "interrupted" if interrupted else "stopped",
                                         "sent, and the run ended before its answer arrived; resume settles it", batch)
            settled[cid] = unknown[batch]
        else:
            dry = dry_outcomes.get(cid)
            status = dry.status if dry else None
            if status not in not_sent:
                not_sent[status] = Outcome("not_sent", None, f"{reason} (dry run: {status})" if dry else reason)
            settled[cid] = not_sent[status]
    merged.put(settled)
    return build_result_frame(ids, merged, unsent_status="not_sent", unsent_reason=unsent, texts=texts)

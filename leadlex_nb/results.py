"""The status vocabulary and the per-row result frame.

The runner decides one :class:`Outcome` per unique contact ID; this module spreads those outcomes
over the caller's rows (duplicates share their first occurrence's outcome), so the result lines up
with the input frame: same index, same order, one row each, and ``df.join(result)`` just works.

Every empty cell is ``pd.NA``: text columns are the ``"string"`` dtype, counters ``Int64``, so a
result never shows ``None``, ``NaN`` and ``NaT`` side by side.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.extensions import ExtensionArray
from pandas.arrays import ArrowStringArray, IntegerArray

from leadlex_nb.ids import ID_COLUMNS, unique_valid_ids

__all__ = [
    "INVALID_ID",
    "RESULT_COLUMNS",
    "STATUSES",
    "STATUS_DTYPE",
    "TEXT_DTYPE",
    "Outcome",
    "Status",
    "build_result_frame",
    "result_html",
    "summarise",
    "summary_line",
]

Status = Literal[
    "deleted",
    "not_found",
    "gone",
    "error",
    "invalid",
    "would_delete",
    "unresolved",
    "not_sent",
    "unknown",
]
"""The status vocabulary, for the type checker; :data:`STATUSES` is the same, at run time."""

STATUSES: Final[tuple[Status, ...]] = get_args(Status)
"""Every status a row can have, in this order; the meanings are in the public contract."""

RESULT_COLUMNS: Final[tuple[str, ...]] = (
    "contact_id",
    "status",
    "error_code",
    "error_message",
    "batch",
    "attempts",
    "request_id",
    "duplicate",
)

STATUS_DTYPE: Final = pd.CategoricalDtype(categories=list(STATUSES), ordered=False)
"""The ``status`` column's dtype: all nine categories, even when a run uses fewer."""

TEXT_DTYPE: Final = pd.StringDtype()
"""``contact_id``, ``error_code``, ``error_message``, ``request_id``: ``"string"``, empty cells ``pd.NA``
(stored as pandas chooses: in pyarrow when it is installed, as ``read_parquet`` gives it back)."""
_ARROW_TEXT: Final = TEXT_DTYPE.storage == "pyarrow"

INVALID_ID: Final[str] = "invalid_id"
"""``error_code`` of rows rejected locally."""

_CODE: Final = {status: code for code, status in enumerate(STATUSES)}


def _check_status(status: object) -> None:
    if not isinstance(status, str) or status not in _CODE:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")


@dataclass(frozen=True)
class Outcome:
    """What this run learned about one unique contact ID, and which answer taught it."""

    status: Status
    error_code: str | None = None
    error_message: str | None = None
    batch: int | None = None
    attempts: int | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        _check_status(self.status)
        for name in ("batch", "attempts"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be None or a non-negative int, got {value!r}")


def build_result_frame(
    ids: pd.DataFrame,
    outcomes: Mapping[str, Outcome],
    *,
    unsent_status: Status = "not_sent",
    unsent_reason: str | None = None,
    texts: ExtensionArray | None = None,
) -> pd.DataFrame:
    """One row per row of ``ids`` (the :func:`~leadlex_nb.ids.normalise_ids` frame), index kept.

    Invalid rows are ``invalid``; valid rows take their canonical ID's outcome; valid IDs without
    one get ``unsent_status`` with ``unsent_reason`` as message (the run stopped before them).
    Outcomes for IDs that are not in ``ids`` are ignored: they cannot belong to any row.
    An invalid row's ``contact_id`` is the raw value as text (``str(value)``; ``42`` gives ``"42"``),
    or ``pd.NA`` where it is missing (``None``, ``NaN``, ``NaT``, ``pd.NA``).
    ``texts``: the input's text array from :func:`~leadlex_nb.ids.normalise_with_texts`, which then is
    the ``contact_id`` column, shared rather than copied.
    """
    missing = [column for column in ID_COLUMNS if column not in ids.columns]
    if missing:
        raise ValueError(f"ids lacks the column(s) {missing}; pass the frame from normalise_ids")
    _check_status(unsent_status)

    # A small table, one row per distinct Outcome object plus a last row for "no outcome": a batch's
    # IDs share one object, so the table has a row or two per batch, and each valid row finds its
    # table row without a Python loop per input row.
    valid = ids["valid"].to_numpy(dtype=bool)
    invalid = np.flatnonzero(~valid)
    contact_id = ids["contact_id"].to_numpy(dtype=object, copy=len(invalid) > 0)  # written below only then
    unsent = Outcome(unsent_status, None, unsent_reason)
    distinct, record_of_row = _records(ids, contact_id, valid, outcomes)
    records = [*distinct, unsent]
    record_of_row[record_of_row < 0] = len(records) - 1
    statuses = list(map(attrgetter("status"), records))
    unknown = set(statuses).difference(STATUSES)
    if unknown:
        raise ValueError(f"unknown status(es) {sorted(map(repr, unknown))}; expected one of {STATUSES}")
    table_status = pd.Categorical(statuses, dtype=STATUS_DTYPE).codes
    table_code = _texts(map(attrgetter("error_code"), records))
    table_message = _texts(map(attrgetter("error_message"), records))
    table_request = _texts(map(attrgetter("request_id"), records))
    table_batch = _nullable_ints(map(attrgetter("batch"), records))
    table_attempts = _nullable_ints(map(attrgetter("attempts"), records))

    where = np.full(len(ids), len(records) - 1, dtype=np.intp)  # invalid rows: the last row, no batch or request
    where[valid] = record_of_row
    del record_of_row
    status = table_status[where]
    error_code = _take(table_code, where)  # a take from the small table: no per-row validation
    error_message = _take(table_message, where)
    if len(invalid):
        if texts is None:
            raw = contact_id[invalid]
            contact_id[invalid] = [None if gap else _text(value) for value, gap in zip(raw, pd.isna(raw), strict=True)]
        status[invalid] = _CODE["invalid"]
        error_code[invalid] = INVALID_ID
        error_message[invalid] = _texts(ids["invalid_reason"].to_numpy(dtype=object)[invalid])
    request_id = _take(table_request, where)
    batch = table_batch[where]
    attempts = table_attempts[where]
    del where

    index = ids.index
    columns = {
        "contact_id": pd.Series(_strings(contact_id) if texts is None else _shared(texts), index=index, copy=False),
        "status": pd.Series(pd.Categorical.from_codes(status, dtype=STATUS_DTYPE), index=index),
        "error_code": pd.Series(error_code, index=index, copy=False),
        "error_message": pd.Series(error_message, index=index, copy=False),
        "batch": pd.Series(batch, index=index, copy=False),
        "attempts": pd.Series(attempts, index=index, copy=False),
        "request_id": pd.Series(request_id, index=index, copy=False),
        "duplicate": pd.Series(ids["duplicate"].to_numpy(dtype=bool, copy=True), index=index, copy=False),
    }
    return pd.DataFrame(columns, index=index, copy=False)  # every column is a new array already


def _records(ids: pd.DataFrame, contact_id: npt.NDArray[np.object_], valid: npt.NDArray[np.bool_],
             outcomes: Mapping[str, Outcome]) -> tuple[list[Outcome], npt.NDArray[np.intp]]:
    """The distinct outcomes and, per valid row, its position among them (-1: none), read by column
    from an :class:`~leadlex_nb.outcome_table.OutcomeTable` over this frame's unique IDs (any other
    mapping is put into one first)."""
    from leadlex_nb.outcome_table import OutcomeTable  # it builds on Outcome: imported once both exist

    unique = unique_valid_ids(ids)
    if not (isinstance(outcomes, OutcomeTable) and outcomes.ids == unique):
        outcomes = OutcomeTable(unique, outcomes)
    table, row_of_rank = outcomes.rows()
    rank = _ranks_of_valid_rows(contact_id, valid, ids["duplicate"].to_numpy(dtype=bool), len(unique))
    return list(table), row_of_rank[rank].astype(np.intp)


def _ranks_of_valid_rows(contact_id: npt.NDArray[np.object_], valid: npt.NDArray[np.bool_],
                         duplicate: npt.NDArray[np.bool_], unique: int) -> npt.NDArray[np.intp]:
    """Each valid row's rank among the frame's ``unique`` first occurrences, which take ranks in order;
    a repeated ID finds its first occurrence through an index of the repeated IDs alone, so a frame
    without repeats hashes nothing."""
    first = valid & ~duplicate
    rank = np.full(len(valid), -1, dtype=np.intp)
    rank[first] = np.arange(unique, dtype=np.intp)
    repeated = np.flatnonzero(valid & duplicate)
    if len(repeated):
        firsts = pd.Index(contact_id[first], dtype=object)
        repeated_ids = pd.Index(pd.unique(contact_id[repeated]), dtype=object)
        at = repeated_ids.get_indexer(firsts)
        hit = at >= 0
        rank_of_repeated = np.empty(len(repeated_ids), dtype=np.intp)
        rank_of_repeated[at[hit]] = np.flatnonzero(hit)
        rank[repeated] = rank_of_repeated[repeated_ids.get_indexer(pd.Index(contact_id[repeated], dtype=object))]
    ranks: npt.NDArray[np.intp] = rank[valid]
    return ranks


def summarise(result: pd.DataFrame) -> pd.Series:
    """Rows per status, for the statuses that occur (no zeros), in :data:`STATUSES` order.

    A Series named ``count``, indexed by ``status``, ``int64``; empty for an empty result.
    """
    statuses = result["status"].astype(object)
    known = statuses.isin(STATUSES).to_numpy(dtype=bool)
    if not known.all():
        unknown = sorted({repr(value) for value in statuses[~known]})
        raise ValueError(f"result holds statuses outside the vocabulary: {', '.join(unknown)}")
    counts = statuses.value_counts()
    counts = counts.reindex([status for status in STATUSES if status in counts.index])
    counts.index.name = "status"
    return counts.astype("int64").rename("count")


def summary_line(result: pd.DataFrame) -> str:
    """One line: ``"300 rows: 297 deleted, 2 not_found, 1 invalid (1 repeated row)"``.

    Rows per status as :func:`summarise` counts them; repeated rows (``duplicate``) share their ID's status.
    """
    counts = summarise(result)
    line = _count(len(result), "row") + (": " if len(counts) else "")
    line += ", ".join(f"{int(n):,} {status}" for status, n in counts.items())
    repeated = int(result["duplicate"].eq(True).sum()) if "duplicate" in result else 0
    return line + (f" ({_count(repeated, 'repeated row')})" if repeated else "")


def result_html(result: pd.DataFrame) -> str:
    """The result as notebook HTML: :func:`summary_line`, then the table with every cell on one line
    (a narrow column otherwise wraps a UUID at its hyphens). Rows are cut as pandas' display options say."""
    max_rows, min_rows = pd.get_option("display.max_rows"), pd.get_option("display.min_rows")
    if max_rows and len(result) > max_rows and min_rows:
        max_rows = min(max_rows, min_rows)  # as DataFrame._repr_html_ does
    table = result.to_html(max_rows=max_rows, max_cols=pd.get_option("display.max_columns"),
                           show_dimensions=pd.get_option("display.show_dimensions"), notebook=True)
    return (f"<div class='leadlex-result'><style>.leadlex-result td, .leadlex-result th "
            f"{{white-space: nowrap;}}</style><p>{html.escape(summary_line(result))}</p>{table}</div>")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not cost the result of a run that has deleted contacts
        return f"<{type(value).__name__} object>"


def _texts(values: Iterable[object]) -> ExtensionArray:
    """``"string"`` values; ``None`` and other missing values become ``pd.NA``, anything else its ``str()``."""
    return pd.array(_objects(values), dtype=TEXT_DTYPE)


def _strings(values: npt.NDArray[np.object_]) -> ExtensionArray:
    """``"string"`` values of an array holding only ``str`` and ``None``: stored by pyarrow directly when
    ``"string"`` is, which is several times faster than pandas' own checks at a million rows."""
    if _ARROW_TEXT:
        import pyarrow as pa  # type: ignore[import-untyped]  # installed: pandas chose it

        try:
            return ArrowStringArray(pa.array(values, type=pa.large_string(), from_pandas=True,
                                             memory_pool=pa.system_memory_pool()))
        except (pa.ArrowException, UnicodeError):
            pass  # pandas says why
    return pd.array(values, dtype=TEXT_DTYPE)


def _shared(texts: ExtensionArray) -> ExtensionArray:
    """The input's pyarrow text array as a ``"string"`` one (``pd.NA`` where missing): the same buffers."""
    if _ARROW_TEXT:
        import pyarrow as pa

        return ArrowStringArray(pa.array(texts))
    return pd.array(np.asarray(texts, dtype=object), dtype=TEXT_DTYPE)


def _take(table: ExtensionArray, where: npt.NDArray[np.intp]) -> ExtensionArray:
    """``table[where]`` (every position valid). pyarrow's take in the system allocator: its default one
    spends 0.3 s of system time setting up the first time a thread allocates a column this size."""
    if _ARROW_TEXT and isinstance(table, ArrowStringArray):
        import pyarrow as pa
        import pyarrow.compute as pc  # type: ignore[import-untyped]

        taken = pc.take(pa.array(table), pa.array(where), boundscheck=False, memory_pool=pa.system_memory_pool())
        return ArrowStringArray(taken)
    return table.take(where)


def _objects(values: Iterable[object]) -> npt.NDArray[np.object_]:
    items = list(values)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _nullable_ints(values: Iterable[int | None]) -> IntegerArray:
    items = _objects(values)
    mask = np.asarray(pd.isna(items), dtype=bool)
    return IntegerArray(np.where(mask, 0, items).astype(np.int64), mask)

"""What a run learned per unique contact ID, kept as columns: one small integer per ID.

A run holds an outcome for each of up to millions of IDs, but a batch's answer gives all its IDs
one shared :class:`~leadlex_nb.results.Outcome`. So the table stores each ID's outcome as a row
number (by the ID's rank among the run's unique IDs, in first-occurrence order) into a short list
of distinct outcomes: 4 bytes per ID instead of a dictionary entry, and a batch whose IDs are a
slice of the unique IDs is stored with one numpy assignment. Looking an ID up by its text builds
a rank dictionary the first time it is needed; the run's own paths avoid that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from leadlex_nb.results import Outcome

__all__ = ["OutcomeTable"]

_NONE = -1  # no outcome yet


class OutcomeTable(Mapping[str, Outcome]):
    """A read-only :class:`~collections.abc.Mapping` from contact ID to outcome, written by :meth:`put`.

    ``ids`` are the run's unique valid IDs in rank order (:func:`~leadlex_nb.ids.unique_valid_ids`);
    outcomes for other IDs are kept aside in a plain dictionary (they belong to no input row).
    """

    def __init__(self, ids: Sequence[str] | _RankIndex, outcomes: Mapping[str, Outcome] | None = None) -> None:
        self._index = ids if isinstance(ids, _RankIndex) else _RankIndex(ids)
        self.ids: list[str] = self._index.ids
        self._row: npt.NDArray[np.int32] = np.full(len(self.ids), _NONE, dtype=np.int32)
        self._outcomes: list[Outcome] = []  # the distinct outcomes; _row points into it
        self._row_of: dict[int, int] = {}  # id(outcome) -> its row (the list keeps the object alive)
        self._stored = 0
        self._strangers: dict[str, Outcome] = {}
        if outcomes:
            self.put(outcomes)

    # -- writing -------------------------------------------------------------------------

    def put(self, outcomes: Mapping[str, Outcome], start: int | None = None) -> None:
        """Store ``outcomes`` (later ones replace earlier). ``start``: where among ``ids`` these IDs
        begin, in order, as a batch's do; checked in C, never trusted."""
        if isinstance(outcomes, OutcomeTable) and outcomes.ids is self.ids:
            self._put_table(outcomes)
            return
        keys = list(outcomes)
        if not keys:
            return
        if start is not None and start >= 0 and self.ids[start : start + len(keys)] == keys:
            ranks: npt.NDArray[np.intp] = np.arange(start, start + len(keys), dtype=np.intp)
        else:
            ranks = self._index.ranks_of(keys)
            keys_kept = ranks != _NONE
            for at in np.flatnonzero(~keys_kept).tolist():
                self._strangers[keys[at]] = outcomes[keys[at]]
            if not keys_kept.all():
                values = [outcomes[key] for key, kept in zip(keys, keys_kept.tolist(), strict=True) if kept]
                self._assign(ranks[keys_kept], values)
                return
        self._assign(ranks, list(outcomes.values()))

    def _assign(self, ranks: npt.NDArray[np.intp], values: list[Outcome]) -> None:
        if not values:
            return
        first = values[0]
        rows: npt.NDArray[np.int32] | int
        if all(value is first for value in values):  # the usual answer: one shared outcome
            rows = self._row_for(first)
        else:  # grouped by identity in numpy: a Python call per distinct outcome, not per ID
            code, identities = pd.factorize(np.fromiter(map(id, values), dtype=np.int64, count=len(values)))
            by_identity = dict(zip(map(id, values), values, strict=True))
            rows = np.array([self._row_for(by_identity[key]) for key in identities.tolist()], dtype=np.int32)[code]
        self._stored += int(np.count_nonzero(self._row[ranks] == _NONE))
        self._row[ranks] = rows

    def _put_table(self, other: OutcomeTable) -> None:
        held = np.flatnonzero(other._row != _NONE)
        if len(held):
            remap = np.fromiter(map(self._row_for, other._outcomes), dtype=np.int32, count=len(other._outcomes))
            self._stored += int(np.count_nonzero(self._row[held] == _NONE))
            self._row[held] = remap[other._row[held]]
        self._strangers.update(other._strangers)

    def _row_for(self, outcome: Outcome) -> int:
        row = self._row_of.get(id(outcome))
        if row is None:
            row = self._row_of[id(outcome)] = len(self._outcomes)
            self._outcomes.append(outcome)
        return row

    def copy(self) -> OutcomeTable:
        twin = self.sibling()
        twin._put_table(self)
        return twin

    def sibling(self) -> OutcomeTable:
        """An empty table over the same IDs, sharing their rank dictionary once either builds it."""
        return OutcomeTable(self._index)

    def without_outcome(self, contact_ids: Sequence[str]) -> list[str]:
        """Those of ``contact_ids`` this table holds no outcome for, in their order."""
        ranks = self._index.ranks_of(contact_ids)
        known = ranks != _NONE
        lacking = np.zeros(len(ranks), dtype=bool)
        lacking[known] = self._row[ranks[known]] == _NONE
        strangers = [contact_ids[at] for at in np.flatnonzero(~known).tolist()]
        lacking[np.flatnonzero(~known)] = [cid not in self._strangers for cid in strangers]
        return [contact_ids[at] for at in np.flatnonzero(lacking).tolist()]

    # -- reading by rank -----------------------------------------------------------------

    def rows(self) -> tuple[list[Outcome], npt.NDArray[np.int32]]:
        """The distinct outcomes, and each rank's row among them (-1: none)."""
        return self._outcomes, self._row

    def status_counts(self) -> Counter[str]:
        """Unique IDs per status, ``"not_sent"`` for IDs without an outcome."""
        per_row = np.bincount(self._row + 1, minlength=len(self._outcomes) + 1)
        counts: Counter[str] = Counter({"not_sent": int(per_row[0])} if per_row[0] else {})
        for outcome, n in zip(self._outcomes, per_row[1:].tolist(), strict=True):
            if n:
                counts[outcome.status] += n
        return counts

    def ids_with_status(self, status: str) -> list[str]:
        """The IDs whose outcome has ``status``, in rank order."""
        rows = [row for row, outcome in enumerate(self._outcomes) if outcome.status == status]
        ranks = np.flatnonzero(np.isin(self._row, rows))
        return [self.ids[rank] for rank in ranks.tolist()]

    # -- the Mapping protocol ------------------------------------------------------------

    def __getitem__(self, contact_id: str) -> Outcome:
        rank = self._index.rank().get(contact_id)
        if rank is not None and self._row[rank] != _NONE:
            return self._outcomes[int(self._row[rank])]
        return self._strangers[contact_id]

    def __iter__(self) -> Iterator[str]:
        for rank in np.flatnonzero(self._row != _NONE).tolist():
            yield self.ids[rank]
        yield from self._strangers

    def __len__(self) -> int:
        return self._stored + len(self._strangers)

    def __repr__(self) -> str:
        return f"<OutcomeTable: {len(self):,} of {len(self.ids):,} IDs, {len(self._outcomes)} distinct outcomes>"


class _RankIndex:
    """The unique IDs and, once a lookup by text needs it, their rank dictionary (shared by siblings)."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids: list[str] = ids if isinstance(ids, list) else list(ids)
        self._rank: dict[str, int] | None = None
        self._identity: tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]] | None = None  # sorted id()s, ranks

    def rank(self) -> dict[str, int]:
        if self._rank is None:
            self._rank = dict(zip(self.ids, range(len(self.ids)), strict=True))
        return self._rank

    def ranks_of(self, contact_ids: Sequence[str]) -> npt.NDArray[np.intp]:
        """Each ID's rank (-1: not among ``ids``). The run passes the very string objects of ``ids``,
        so they are matched by identity in numpy first; the rank dictionary serves only the rest."""
        if self._identity is None:
            identity = np.fromiter(map(id, self.ids), dtype=np.int64, count=len(self.ids))
            order = np.argsort(identity)
            self._identity = (identity[order], order)
        ordered, order = self._identity
        wanted = np.fromiter(map(id, contact_ids), dtype=np.int64, count=len(contact_ids))
        at = np.minimum(np.searchsorted(ordered, wanted), max(len(ordered) - 1, 0))
        ranks: npt.NDArray[np.intp] = np.full(len(contact_ids), _NONE, dtype=np.intp)
        if len(ordered):
            hit = ordered[at] == wanted  # the same object alive in both: the same text
            ranks[hit] = order[at[hit]]
        missed = np.flatnonzero(ranks == _NONE)
        if len(missed):
            rank = self.rank()
            ranks[missed] = [rank.get(contact_ids[i], _NONE) for i in missed.tolist()]
        return ranks

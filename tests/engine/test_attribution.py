"""Attribution: the cheapest strategy within budget, fallbacks, and no unproven claims."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadlex_nb.attribution import (
    BISECT,
    EXPORT,
    LISTING,
    Ambiguity,
    attribute,
    bisect_cost,
    rank_strategies,
    resolve_from_workspace,
)
from leadlex_nb.verdicts import BulkAnswer


def make_ids(n: int, offset: int = 0) -> list[str]:
    return [str(uuid.UUID(int=offset + i + 1)) for i in range(n)]


class FakeWorkspace:
    """A Source over an in-memory workspace that counts requests and can refuse reads."""

    def __init__(self, existing: set[str], total: int | None = None, refuse: Sequence[str] = ()) -> None:
        self.existing = existing
        self.total = len(existing) if total is None else total
        self.refuse = set(refuse)
        self.requests: list[str] = []

    async def dry_run(self, batch: int, ids: Sequence[str]) -> tuple[BulkAnswer, int, str | None] | None:
        self.requests.append("dry_run")
        found = sum(1 for i in ids if i in self.existing)
        return BulkAnswer(found, len(ids) - found), 1, f"req_{len(self.requests)}"

    async def workspace_total(self) -> int | None:
        self.requests.append("probe")
        return None if "probe" in self.refuse else self.total

    async def read_ids(self, strategy: str, workspace_total: int) -> tuple[set[str], str | None] | None:
        self.requests.append(strategy)
        return None if strategy in self.refuse else (set(self.existing), "req_read")


def ambiguity(existing: set[str], ids: list[str], batch: int = 0) -> Ambiguity:
    return Ambiguity(batch, tuple(ids), sum(1 for i in ids if i not in existing))


@given(st.integers(2, 500), st.data())
def test_bisect_cost_is_cheap_for_few_missing_and_bounded(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n - 1))
    assert 1 <= bisect_cost(n, k) <= n - 1
    assert bisect_cost(n, 0) == 0 and bisect_cost(n, n) == 0


def test_many_missing_in_a_large_workspace_pick_the_export() -> None:
    ambiguities = [Ambiguity(i, tuple(make_ids(500, i * 500)), 25) for i in range(20)]
    ranked = rank_strategies(ambiguities, workspace_total=20_000, budget=100)
    assert ranked[0].strategy == EXPORT and ranked[0].estimated_requests == 1


def test_bisection_cheaper_than_any_read_skips_the_size_probe() -> None:
    ids = make_ids(2)
    existing = set(ids[1:])
    source = FakeWorkspace(existing, total=1_000_000)
    outcomes, _ = _run(attribute([ambiguity(existing, ids)], source, budget=50))
    assert "probe" not in source.requests
    assert outcomes[ids[0]].status == "not_found"
    assert all(outcomes[i].status == "would_delete" for i in ids[1:])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 120), st.data())
def test_bisection_pins_every_id_correctly_when_budget_allows(n: int, data: st.DataObject) -> None:
    ids = make_ids(n)
    missing = set(data.draw(st.lists(st.sampled_from(ids), unique=True, min_size=1, max_size=n - 1)))
    existing = set(ids) - missing
    source = FakeWorkspace(existing, refuse=("probe",))
    outcomes, _ = _run(attribute([ambiguity(existing, ids)], source, budget=10_000))
    assert {i for i, o in outcomes.items() if o.status == "not_found"} == missing
    assert {i for i, o in outcomes.items() if o.status == "would_delete"} == existing


def test_refused_export_falls_back_to_listing_then_result_is_exact() -> None:
    ids = make_ids(400)
    rng = random.Random(3)
    existing = {i for i in ids if rng.random() > 0.3}
    source = FakeWorkspace(existing, refuse=(EXPORT,))
    outcomes, notes = _run(attribute([ambiguity(existing, ids)], source, budget=50))
    assert source.requests[:3] == ["probe", EXPORT, LISTING]
    assert {i for i, o in outcomes.items() if o.status == "would_delete"} == existing
    assert any("refused" in n for n in notes)


def test_no_read_permission_falls_back_to_bisection() -> None:
    ids = make_ids(64)
    existing = set(ids[:-3])
    source = FakeWorkspace(existing, refuse=("probe",))
    outcomes, notes = _run(attribute([ambiguity(existing, ids)], source, budget=100))
    assert BISECT in source.requests[-1] or source.requests[-1] == "dry_run"
    assert {i for i, o in outcomes.items() if o.status == "not_found"} == set(ids[-3:])
    assert any("bisect" in n for n in notes)


def test_zero_budget_leaves_everything_unresolved_and_sends_nothing() -> None:
    ids = make_ids(10)
    source = FakeWorkspace(set(ids[:5]))
    outcomes, notes = _run(attribute([ambiguity(set(ids[:5]), ids)], source, budget=0))
    assert outcomes == {} and source.requests == []
    assert notes


def test_small_budget_spends_at_most_the_budget() -> None:
    ambiguities = [ambiguity(set(make_ids(100, b * 100)[::2]), make_ids(100, b * 100), b) for b in range(5)]
    existing = {i for a in ambiguities for i in a.ids[::2]}
    source = FakeWorkspace(existing, refuse=("probe",))
    outcomes, _ = _run(attribute(ambiguities, source, budget=7))
    assert len(source.requests) <= 7
    for cid, outcome in outcomes.items():
        assert outcome.status == ("would_delete" if cid in existing else "not_found")


def test_a_read_that_disagrees_with_the_dry_run_count_is_not_trusted() -> None:
    ids = make_ids(10)
    amb = Ambiguity(0, tuple(ids), missing=2)
    # The workspace moved: now 3 of them are missing.
    assert resolve_from_workspace([amb], set(ids[3:]), "req") == {}
    assert len(resolve_from_workspace([amb], set(ids[2:]), "req")) == 10


def _run(coroutine):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(coroutine)


@pytest.mark.parametrize("total,expected", [(150, 2), (100, 1), (0, 1)])
def test_listing_cost_is_one_request_per_hundred(total: int, expected: int) -> None:
    from leadlex_nb.attribution import read_costs

    assert read_costs(total)[LISTING] == expected

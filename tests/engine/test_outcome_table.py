"""The run's per-ID outcomes as columns: the same answers as a dictionary, and the same result frame."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadlex_nb.ids import normalise_ids, normalise_with_texts, unique_valid_ids
from leadlex_nb.outcome_table import OutcomeTable
from leadlex_nb.plan import DELETE, build_batches, deletion_batches
from leadlex_nb.results import Outcome, build_result_frame
from leadlex_nb.settle import settle_rows

IDS = [str(uuid.UUID(int=(n << 64) | 0xABCDEF)) for n in range(1, 13)]  # with letters: case matters
DELETED, MISSING = Outcome("deleted", batch=0), Outcome("not_found", batch=1)


def test_a_table_answers_as_the_dictionary_it_was_given() -> None:
    given_outcomes = {IDS[0]: DELETED, IDS[3]: MISSING, IDS[4]: MISSING}
    table = OutcomeTable(IDS, given_outcomes)

    assert dict(table) == given_outcomes and table == given_outcomes
    assert len(table) == 3 and list(table) == [IDS[0], IDS[3], IDS[4]]  # rank order
    assert table[IDS[3]] is MISSING and IDS[1] not in table and table.get(IDS[1]) is None
    with pytest.raises(KeyError):
        table[IDS[1]]


def test_a_slice_stored_at_its_start_is_checked_and_a_wrong_start_is_not_trusted() -> None:
    table = OutcomeTable(IDS)
    table.put(dict.fromkeys(IDS[4:8], DELETED), start=4)
    table.put(dict.fromkeys(IDS[0:2], MISSING), start=7)  # wrong: looked up by text instead

    assert dict(table) == {**dict.fromkeys(IDS[0:2], MISSING), **dict.fromkeys(IDS[4:8], DELETED)}


def test_later_outcomes_replace_earlier_ones_and_strangers_are_kept_aside() -> None:
    stranger = str(uuid.UUID(int=999))
    table = OutcomeTable(IDS, {IDS[0]: MISSING})
    table.put({stranger: DELETED})  # strangers alone
    table.put({IDS[0]: DELETED, stranger: MISSING})

    assert table[IDS[0]] is DELETED and table[stranger] is MISSING and len(table) == 2
    assert table.without_outcome([IDS[0], stranger, IDS[1]]) == [IDS[1]]
    same_text = "".join(list(IDS[0]))  # another object: found by its text, not its identity
    assert same_text is not IDS[0] and table.without_outcome([same_text, "".join(list(IDS[2]))]) == [IDS[2]]
    table.put({same_text: MISSING})
    assert table[IDS[0]] is MISSING and len(table) == 2


def test_copies_and_siblings_share_the_ids_not_the_outcomes() -> None:
    table = OutcomeTable(IDS, {IDS[0]: DELETED})
    twin, sibling = table.copy(), table.sibling()
    twin.put({IDS[1]: MISSING})
    sibling.put({IDS[2]: MISSING})

    assert dict(table) == {IDS[0]: DELETED}
    assert dict(twin) == {IDS[0]: DELETED, IDS[1]: MISSING}
    assert dict(sibling) == {IDS[2]: MISSING} and sibling.ids is table.ids
    table.put(sibling)
    assert dict(table) == {IDS[0]: DELETED, IDS[2]: MISSING}


def test_counts_and_statuses_by_column() -> None:
    table = OutcomeTable(IDS, {IDS[0]: Outcome("would_delete"), IDS[1]: Outcome("unresolved"),
                               IDS[2]: Outcome("would_delete")})

    assert table.status_counts() == Counter({"would_delete": 2, "unresolved": 1, "not_sent": len(IDS) - 3})
    assert table.ids_with_status("would_delete") == [IDS[0], IDS[2]]
    by_dict = deletion_batches("run", IDS, dict(table), size=2)
    by_table = deletion_batches("run", IDS, table, size=2)
    assert by_table == by_dict and [b.group for b in by_table] == ["proven", "unresolved"]


outcome_choices = st.sampled_from([DELETED, MISSING, Outcome("error", "contact_locked", "locked", 2, 1, "req"),
                                   Outcome("would_delete", batch=3)])
values = st.lists(st.one_of(st.sampled_from(IDS), st.sampled_from([i.upper() for i in IDS]),
                            st.sampled_from(["", "nope", None, f"{{{IDS[5]}}}"])), max_size=30)


@settings(max_examples=150, deadline=None)
@given(values=values, picks=st.dictionaries(st.sampled_from(IDS), outcome_choices), arrow=st.booleans())
def test_a_table_and_a_dictionary_give_the_same_result_frame(
        values: list[Any], picks: dict[str, Outcome], arrow: bool) -> None:
    series = pd.Series(values, dtype="string[pyarrow]" if arrow else object)
    ids, texts = normalise_with_texts(series)
    unique = unique_valid_ids(ids)
    outcomes = {cid: o for cid, o in picks.items() if cid in unique}

    expected = build_result_frame(normalise_ids(series.astype(object)), outcomes)
    pd.testing.assert_frame_equal(build_result_frame(ids, OutcomeTable(unique, outcomes), texts=texts), expected)
    if texts is not None:  # shared only where every row's text is its input's
        assert all(v is None or v == c for v, c in zip(values, ids["contact_id"], strict=True))


def test_the_input_s_text_is_shared_only_when_nothing_was_respelled() -> None:
    assert normalise_with_texts(pd.Series([IDS[0], None, "junk"], dtype="string[pyarrow]"))[1] is not None
    assert normalise_with_texts(pd.Series([IDS[0].upper()], dtype="string[pyarrow]"))[1] is None
    assert normalise_with_texts(pd.Series([f" {IDS[0]}"], dtype="string[pyarrow]"))[1] is None
    assert normalise_with_texts(pd.Series([IDS[0]], dtype=object))[1] is None


def test_settling_a_deletion_by_column_matches_settling_it_by_dictionary() -> None:
    ids = normalise_ids(pd.Series(IDS + IDS[:2], dtype=object))
    unique = unique_valid_ids(ids)
    dry = OutcomeTable(unique, dict.fromkeys(unique, Outcome("would_delete")))
    batches = build_batches("run", DELETE, unique, size=4)
    delete = dry.sibling()
    delete.put(dict.fromkeys(batches[0].ids, DELETED), start=0)
    in_flight = dict.fromkeys(batches[1].ids, 1)
    plan = [cid for b in batches for cid in b.ids]
    common: dict[str, Any] = {"stopped": None, "interrupted": True, "unsent_reason": "not sent"}

    by_table = settle_rows(ids, dry, delete, plan, in_flight, **common)
    by_dict = settle_rows(ids, dict(dry), dict(delete), plan, in_flight, **common)

    pd.testing.assert_frame_equal(by_table, by_dict)
    assert by_table["status"].astype(str).value_counts().to_dict() == {"unknown": 4, "not_sent": 4, "deleted": 6}

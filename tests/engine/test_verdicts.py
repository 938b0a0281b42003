"""What a bulk-delete answer proves: statuses agree with the counts, never more."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from leadlex_nb.verdicts import BulkAnswer, RowError, judge_delete, judge_dry_run, parse_bulk_answer


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


@st.composite
def batches_with_answers(draw: st.DrawFn) -> tuple[list[str], BulkAnswer]:
    n = draw(st.integers(1, 60))
    sent = ids(n)
    refused = draw(st.lists(st.sampled_from(sent), unique=True, max_size=n))
    rest = n - len(refused)
    missing = draw(st.integers(0, rest))
    errors = tuple(RowError(cid, "contact_locked", "locked") for cid in refused)
    return sent, BulkAnswer(rest - missing, missing, errors)


@given(batches_with_answers())
def test_delete_verdict_agrees_with_counts(case: tuple[list[str], BulkAnswer]) -> None:
    sent, answer = case
    verdict = judge_delete(sent, answer, batch=0, attempts=1, request_id="req_1")
    statuses = [verdict.outcomes[cid].status for cid in sent]
    assert set(verdict.outcomes) == set(sent)
    assert statuses.count("error") == len(answer.errors)
    # Never more "deleted" rows than deleted_count, never more "not_found" than not_found_count.
    assert statuses.count("deleted") in (0, answer.deleted_count)
    assert statuses.count("deleted") <= answer.deleted_count
    assert statuses.count("not_found") <= answer.not_found_count
    if answer.deleted_count and answer.not_found_count:
        assert statuses.count("gone") == answer.deleted_count + answer.not_found_count


@given(batches_with_answers())
def test_dry_run_verdict_never_guesses_which_are_missing(case: tuple[list[str], BulkAnswer]) -> None:
    sent, answer = case
    verdict = judge_dry_run(sent, answer, batch=0, attempts=1, request_id=None)
    decided = [o.status for o in verdict.outcomes.values()]
    assert decided.count("would_delete") <= answer.deleted_count
    assert decided.count("not_found") <= answer.not_found_count
    assert len(verdict.outcomes) + len(verdict.unresolved) == len(sent)
    if verdict.unresolved:
        assert verdict.missing_among_unresolved == answer.not_found_count
        assert 0 < answer.not_found_count < len(verdict.unresolved)


def test_counts_that_do_not_add_up_make_delete_rows_unknown() -> None:
    sent = ids(3)
    verdict = judge_delete(sent, BulkAnswer(5, 0), batch=2, attempts=1, request_id="req_x")
    assert {o.status for o in verdict.outcomes.values()} == {"unknown"}
    assert verdict.outcomes[sent[0]].error_code == "inconsistent_answer"
    assert verdict.inconsistency is not None


def test_counts_that_do_not_add_up_leave_dry_run_rows_unresolved() -> None:
    sent = ids(3)
    verdict = judge_dry_run(sent, BulkAnswer(1, 1), batch=0, attempts=1, request_id=None)
    assert verdict.outcomes == {}
    assert verdict.unresolved == tuple(sent)
    assert verdict.inconsistency is not None


def test_errors_naming_ids_that_were_not_sent_are_an_inconsistency() -> None:
    sent = ids(2)
    stranger = str(uuid.UUID(int=999))
    answer = BulkAnswer(2, 0, (RowError(stranger, "contact_locked", None),))
    verdict = judge_delete(sent, answer, batch=0, attempts=1, request_id=None)
    assert all(o.status == "unknown" for o in verdict.outcomes.values())


def test_mixed_delete_answer_reports_gone_not_deleted() -> None:
    sent = ids(4)
    verdict = judge_delete(sent, BulkAnswer(3, 1), batch=0, attempts=1, request_id=None)
    assert [verdict.outcomes[c].status for c in sent] == ["gone"] * 4


def test_parse_accepts_the_documented_example() -> None:
    parsed = parse_bulk_answer({"data": {"deleted_count": 2, "not_found_count": 0, "errors": []}})
    assert parsed == BulkAnswer(2, 0, ())


def test_parse_lower_cases_error_ids_to_match_sent_ids() -> None:
    upper = str(uuid.UUID(int=7)).upper()
    errors = [{"contact_id": upper, "code": "x", "message": "y"}]
    parsed = parse_bulk_answer({"data": {"deleted_count": 0, "not_found_count": 0, "errors": errors}})
    assert parsed is not None and parsed.errors[0].contact_id == upper.lower()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=15), inner, max_size=4),
    max_leaves=10,
)


@given(json_values)
def test_parse_never_raises_on_arbitrary_json(payload: object) -> None:
    parsed = parse_bulk_answer(payload)
    assert parsed is None or (parsed.deleted_count >= 0 and parsed.not_found_count >= 0)


def test_parse_refuses_negative_boolean_or_missing_counts() -> None:
    for data in ({"deleted_count": -1, "not_found_count": 0}, {"deleted_count": True, "not_found_count": 0},
                 {"not_found_count": 0}, {"deleted_count": 1, "not_found_count": 0, "errors": {}}):
        assert parse_bulk_answer({"data": data}) is None

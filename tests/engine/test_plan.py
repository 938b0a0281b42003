"""The batch plan: partitions, idempotency keys, request bodies and the plan fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from leadlex_nb.plan import (
    MAX_BATCH_SIZE,
    Batch,
    build_batches,
    idempotency_key,
    make_batches,
    plan_fingerprint,
    request_body,
)

U = "123e4567-e89b-12d3-a456-426614174000"
V = "00000000-0000-0000-0000-0000000000ff"

id_lists = st.lists(st.uuids().map(str), max_size=1_200)
sizes = st.integers(1, MAX_BATCH_SIZE)
tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", min_size=1, max_size=40)


# -- make_batches -------------------------------------------------------------------------------


@settings(deadline=None)
@given(id_lists, sizes)
def test_batches_partition_the_ids_in_order_each_at_most_size(ids: list[str], size: int) -> None:
    batches = make_batches(ids, size)
    assert [i for batch in batches for i in batch] == ids
    assert all(1 <= len(batch) <= size for batch in batches)
    assert all(len(batch) == size for batch in batches[:-1])  # only the last may be short
    assert len(batches) == -(-len(ids) // size)


def test_the_default_batch_size_is_the_api_limit_of_500() -> None:
    assert [len(b) for b in make_batches([U] * 1_001)] == [500, 500, 1]


def test_no_ids_make_no_batches() -> None:
    assert make_batches([]) == []


@pytest.mark.parametrize("size", [0, -1, MAX_BATCH_SIZE + 1, True, 2.0, "5"])
def test_a_batch_size_outside_1_to_500_is_refused(size: Any) -> None:
    with pytest.raises(ValueError, match="batch size"):
        make_batches([U], size)


def test_a_single_string_is_refused_rather_than_split_into_characters() -> None:
    with pytest.raises(TypeError, match="single string"):
        make_batches(U)


# -- plan_fingerprint ---------------------------------------------------------------------------


@settings(deadline=None)
@given(st.lists(st.uuids().map(str), max_size=50), st.randoms(use_true_random=False))
def test_the_fingerprint_ignores_order_and_repetition(ids: list[str], rnd: Any) -> None:
    shuffled = ids + ids[: len(ids) // 2]
    rnd.shuffle(shuffled)
    assert plan_fingerprint(shuffled) == plan_fingerprint(ids)


@settings(deadline=None)
@given(st.sets(st.uuids().map(str), min_size=1, max_size=20), st.uuids().map(str))
def test_adding_an_id_changes_the_fingerprint(ids: set[str], extra: str) -> None:
    assume(extra not in ids)
    assert plan_fingerprint(ids | {extra}) != plan_fingerprint(ids)


@settings(deadline=None)
@given(st.lists(st.one_of(st.uuids().map(str), st.sampled_from([U, V, U.upper(), "x" * 36, "1" * 36, ""])),
                max_size=40))
def test_the_fingerprint_is_the_hash_of_the_sorted_set_however_it_is_computed(ids: list[str]) -> None:
    # UUIDs are sorted as numbers in numpy; anything else by Python: both must hash the same text.
    expected = hashlib.sha256(json.dumps(["leadlex-nb/plan/v1", sorted(set(ids))], separators=(",", ":"))
                              .encode("ascii")).hexdigest()
    assert plan_fingerprint(ids) == expected


def test_the_fingerprint_of_many_ids_is_hashed_in_chunks_to_the_same_text() -> None:
    ids = [str(uuid.UUID(int=n * 0x9E3779B97F4A7C15)) for n in range(150_000)]  # past two chunks
    ids += ids[:10]
    expected = hashlib.sha256(json.dumps(["leadlex-nb/plan/v1", sorted(set(ids))], separators=(",", ":"))
                              .encode("ascii")).hexdigest()
    assert plan_fingerprint(ids[::-1]) == expected


def test_the_fingerprint_is_stable_so_journaled_plans_still_match_after_an_upgrade() -> None:
    assert plan_fingerprint([V, U, U]) == "e3642878d8ea0a2be077cd7ec3555fb0ec9d5917a38ef78a3f37c57d58a39e02"


def test_the_fingerprint_cannot_be_forged_by_moving_a_separator() -> None:
    assert plan_fingerprint(["a\nb"]) != plan_fingerprint(["a", "b"])
    assert plan_fingerprint(["a,b"]) != plan_fingerprint(["a", "b"])


# -- idempotency_key ----------------------------------------------------------------------------


def test_the_key_names_run_phase_and_batch_and_is_stable_across_versions() -> None:
    assert idempotency_key("run1", "delete", 3, [U, V]) == "lnb-run1-delete-3-3df2389ce220"


@settings(deadline=None)
@given(tokens, tokens, st.integers(0, 10**9), st.lists(st.uuids().map(str), min_size=1, max_size=20))
def test_the_key_is_deterministic_ascii_and_short_enough_for_the_header(
    run_id: str, phase: str, index: int, ids: list[str]
) -> None:
    key = idempotency_key(run_id, phase, index, ids)
    assert key == idempotency_key(run_id, phase, index, list(ids))
    assert re.fullmatch(rf"lnb-{re.escape(run_id)}-{re.escape(phase)}-{index}-[0-9a-f]{{12}}", key)
    assert key.isascii() and len(key) <= 255


@settings(deadline=None)
@given(st.lists(st.uuids().map(str), min_size=1, max_size=20, unique=True), st.uuids().map(str))
def test_a_different_batch_never_shares_a_key(ids: list[str], other: str) -> None:
    key = idempotency_key("run", "delete", 0, ids)
    if other not in ids:
        assert idempotency_key("run", "delete", 0, [*ids[:-1], other]) != key
    if len(ids) > 1:
        assert idempotency_key("run", "delete", 0, ids[::-1]) != key  # another body, another key


def test_run_phase_and_index_each_change_the_key() -> None:
    keys = {
        idempotency_key("run", "delete", 0, [U]),
        idempotency_key("run2", "delete", 0, [U]),
        idempotency_key("run", "dry_run", 0, [U]),
        idempotency_key("run", "delete", 1, [U]),
    }
    assert len(keys) == 4


def test_hyphens_in_run_id_or_phase_cannot_make_two_keys_collide() -> None:
    assert idempotency_key("a-b", "c", 0, [U]) != idempotency_key("a", "b-c", 0, [U])


@pytest.mark.parametrize(
    ("run_id", "phase", "index"),
    [("", "delete", 0), ("run 1", "delete", 0), ("rün", "delete", 0), ("run", "del\nete", 0),
     ("run", "delete", -1), ("run", "delete", True), ("x" * 250, "delete", 0)],
)
def test_keys_that_could_break_the_header_or_grow_too_long_are_refused(run_id: str, phase: str, index: Any) -> None:
    with pytest.raises(ValueError):
        idempotency_key(run_id, phase, index, [U])


# -- request_body -------------------------------------------------------------------------------


def test_the_body_is_compact_json_with_contact_ids_then_dry_run() -> None:
    assert request_body([U, V], dry_run=False) == (
        b'{"contact_ids":["123e4567-e89b-12d3-a456-426614174000","00000000-0000-0000-0000-0000000000ff"],'
        b'"dry_run":false}'
    )
    assert request_body((U,), dry_run=True).endswith(b',"dry_run":true}')


@settings(deadline=None)
@given(st.lists(st.uuids().map(str) | st.text(min_size=1, max_size=10), min_size=1, max_size=MAX_BATCH_SIZE),
       st.booleans())
def test_the_body_is_byte_identical_for_equal_inputs_and_round_trips(ids: list[str], dry_run: bool) -> None:
    body = request_body(ids, dry_run)
    assert body == request_body(tuple(ids), dry_run)
    assert body.isascii()
    assert json.loads(body) == {"contact_ids": ids, "dry_run": dry_run}


@pytest.mark.parametrize("ids", [[], [U] * (MAX_BATCH_SIZE + 1)])
def test_a_body_outside_1_to_500_ids_is_refused(ids: list[str]) -> None:
    with pytest.raises(ValueError, match="1 to 500"):
        request_body(ids, dry_run=True)


@pytest.mark.parametrize("dry_run", ["false", 0, None])
def test_dry_run_must_be_a_real_bool(dry_run: Any) -> None:
    with pytest.raises(TypeError, match="dry_run"):
        request_body([U], dry_run)


def test_non_string_ids_are_refused_in_a_body() -> None:
    with pytest.raises(TypeError, match="strings"):
        request_body([U, 42], dry_run=True)  # type: ignore[list-item]


# -- Batch and build_batches --------------------------------------------------------------------


@settings(deadline=None)
@given(id_lists.filter(bool), sizes, st.integers(0, 1_000))
def test_built_batches_partition_the_ids_and_number_from_start_index(ids: list[str], size: int, start: int) -> None:
    batches = build_batches("run", "dry_run", ids, size=size, start_index=start)
    assert [i for b in batches for i in b.ids] == ids
    assert [b.index for b in batches] == list(range(start, start + len(batches)))
    assert len({b.idempotency_key for b in batches}) == len(batches)
    for b in batches:
        assert b.idempotency_key == idempotency_key("run", "dry_run", b.index, b.ids)
        assert b.body == request_body(b.ids, dry_run=True)


def test_only_the_delete_phase_builds_deleting_bodies() -> None:
    for phase in ("dry_run", "attribution", "recheck", "Delete", "delete-later"):
        assert all(json.loads(b.body)["dry_run"] is True for b in build_batches("r", phase, [U, V]))  # type: ignore[arg-type]
    assert json.loads(build_batches("r", "delete", [U])[0].body)["dry_run"] is False


def test_a_key_round_gives_the_same_batches_new_keys_and_the_same_bodies() -> None:
    first = build_batches("r", "dry_run", [U, V], size=1)
    again = build_batches("r", "dry_run", [U, V], size=1, key_round="2")
    assert [b.body for b in first] == [b.body for b in again]
    assert [b.index for b in first] == [b.index for b in again]
    assert not {b.idempotency_key for b in first} & {b.idempotency_key for b in again}
    assert build_batches("r", "dry_run", [U], key_round="2") == build_batches("r", "dry_run", [U], key_round="2")


def test_the_group_is_carried_on_every_batch() -> None:
    batches = build_batches("r", "delete", [U, V], size=1, group="unresolved")
    assert [b.group for b in batches] == ["unresolved", "unresolved"]
    assert build_batches("r", "delete", [U])[0].group == "proven"


def test_rebuilding_the_same_plan_gives_equal_batches_so_a_resume_reuses_keys_and_bodies() -> None:
    assert build_batches("r", "delete", [U, V], size=1) == build_batches("r", "delete", [U, V], size=1)


def test_a_batch_is_frozen() -> None:
    batch = build_batches("r", "delete", [U])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.body = b"{}"  # type: ignore[misc]


def test_a_batch_repr_leaves_out_the_ids_and_body() -> None:
    batch = build_batches("r", "delete", [U, V])[0]
    text = repr(batch)
    assert U not in text and "contact_ids" not in text
    assert batch.idempotency_key in text
    assert batch.size == 2


def test_a_negative_start_index_is_refused() -> None:
    with pytest.raises(ValueError, match="start_index"):
        build_batches("r", "delete", [U], start_index=-1)


def test_batch_can_be_made_directly_with_positional_fields() -> None:
    batch = Batch(0, "delete", (U,), "k", b"{}")
    assert (batch.index, batch.phase, batch.ids, batch.idempotency_key, batch.body, batch.group) == (
        0, "delete", (U,), "k", b"{}", "proven"
    )

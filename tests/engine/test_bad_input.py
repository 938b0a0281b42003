"""Bad input, generated: every row gets an honest normalisation, or the caller a clear LeadLexError.

ID columns of every dtype (mixed objects, bytes, floats, ints, None/NaN/pd.NA, categoricals,
string and pyarrow-backed dtypes) under MultiIndex, repeated, text and date indexes. No request is
sent here: ``tests/e2e/test_bad_input_dry_runs.py`` takes a smaller number through the sandbox.
"""

from __future__ import annotations

import decimal
import uuid

import numpy as np
import pandas as pd
import pytest
from bad_frames import ARROW_DTYPES, POOL, Column, columns, reference
from hypothesis import assume, given, settings

import leadlex_nb
from leadlex_nb import ConfigurationError, NothingToDeleteError
from leadlex_nb.ids import ID_COLUMNS, UUID_PATTERN, normalise_ids, unique_valid_ids

# Loopback on port 9: nothing listens, so a run that got past the local checks could not pass.
NOWHERE = {"api_key": "wbk_not_a_real_key", "base_url": "http://127.0.0.1:9", "journal": False,
           "progress": False, "verbose": False}


def check_normalised(column: Column) -> pd.DataFrame:
    values = column.values
    kept = values.to_numpy(dtype=object).copy() if values.dtype == object else values.copy(deep=True)
    frame = normalise_ids(values)
    expected = column.expected()
    assert list(frame.columns) == list(ID_COLUMNS)
    assert frame.index.equals(values.index) and len(frame) == len(values)
    assert frame["valid"].tolist() == [e is not None for e in expected]
    valid = frame["valid"].to_numpy()
    assert frame["contact_id"][valid].tolist() == [e for e in expected if e is not None]
    assert frame["contact_id"][valid].str.fullmatch(UUID_PATTERN).all()
    reasons = frame["invalid_reason"]
    assert reasons[~valid].map(lambda r: isinstance(r, str) and bool(r)).all(), "an invalid row without a reason"
    assert reasons[valid].isna().all()
    seen: set[str] = set()
    for row, canonical in enumerate(expected):
        assert bool(frame["duplicate"].iloc[row]) == (canonical is not None and canonical in seen)
        if canonical is not None:
            seen.add(canonical)
    assert unique_valid_ids(frame) == list(dict.fromkeys(e for e in expected if e is not None))
    # The caller's column is untouched (objects by identity: a signalling NaN cannot be compared).
    if values.dtype == object:
        assert all(a is b for a, b in zip(values.to_numpy(dtype=object), kept, strict=True))
    else:
        pd.testing.assert_series_equal(values, kept)
    return frame


@settings(deadline=None, max_examples=400)
@given(columns())
def test_every_generated_column_normalises_row_by_row_as_the_reference_says(column: Column) -> None:
    check_normalised(column)


@pytest.mark.parametrize("dtype", ARROW_DTYPES)
def test_pyarrow_backed_strings_normalise_like_object_strings(dtype: str) -> None:
    pa = pytest.importorskip("pyarrow")
    raw = [POOL[0].upper(), None, " {" + POOL[1] + "} ", "junk", POOL[0]]
    spelled = pd.ArrowDtype(pa.string()) if dtype == "arrow" else dtype
    frame = normalise_ids(pd.Series(raw, dtype=spelled))
    expected = normalise_ids(pd.Series(raw, dtype=object))
    # An invalid row keeps its raw value: the missing one is the dtype's own (pd.NA, not None).
    assert frame.loc[1, "contact_id"] is pd.NA and expected.loc[1, "contact_id"] is None
    frame.loc[1, "contact_id"] = None
    pd.testing.assert_frame_equal(frame, expected)


@settings(deadline=None, max_examples=150)
@given(columns(max_size=12))
def test_a_column_with_no_valid_id_raises_nothing_to_delete_before_any_request(column: Column) -> None:
    assume(all(e is None for e in column.expected()))
    frame = pd.DataFrame({"c": column.values})
    with pytest.raises(NothingToDeleteError, match=f"among {len(frame)} row"):
        frame.leadlex.bulk_delete("c", confirm=False, **NOWHERE)


@pytest.mark.parametrize("empty", [
    pd.DataFrame({"c": []}),
    pd.DataFrame({"c": pd.Series([], dtype="string")}),
    pd.DataFrame({"c": pd.Series([], dtype="category")}),
    pd.DataFrame({"c": [None, np.nan, pd.NA]}),
    pd.DataFrame({"c": ["", "  "]}, index=pd.MultiIndex.from_tuples([("a", 1), ("a", 1)])),
])
def test_empty_frames_and_frames_of_nothing_raise_nothing_to_delete(empty: pd.DataFrame) -> None:
    with pytest.raises(NothingToDeleteError, match="nothing was sent"):
        empty.leadlex.bulk_delete("c", confirm=False, **NOWHERE)


def test_a_series_of_anything_but_ids_and_a_frame_without_the_column_are_refused_clearly() -> None:
    with pytest.raises(leadlex_nb.ColumnNotFoundError):
        pd.DataFrame({"c": POOL}).leadlex.bulk_delete("contact_id", **NOWHERE)
    with pytest.raises(ConfigurationError, match="by its label"):
        pd.DataFrame({"c": POOL}).leadlex.bulk_delete(["c"], **NOWHERE)
    with pytest.raises(ConfigurationError, match="appears 2 times"):
        pd.DataFrame([POOL[:2]], columns=["c", "c"]).leadlex.bulk_delete("c", **NOWHERE)


def test_a_million_repeats_of_one_id_are_one_unique_id_and_a_million_duplicate_flags() -> None:
    one = uuid.UUID(POOL[2])
    values = pd.Series([POOL[2].upper()] * 500_000 + [one] * 500_000, dtype=object)
    frame = normalise_ids(values)
    assert frame["valid"].all() and frame["contact_id"].eq(POOL[2]).all()
    assert unique_valid_ids(frame) == [POOL[2]]
    assert int(frame["duplicate"].sum()) == 999_999 and not frame["duplicate"].iloc[0]
    assert reference(values.iloc[-1]) == POOL[2]


def test_a_signalling_nan_decimal_is_a_missing_value_not_a_crash() -> None:
    # Regression: pd.isna raises decimal.InvalidOperation on Decimal("sNaN"), and normalise_ids with it.
    frame = normalise_ids(pd.Series([decimal.Decimal("sNaN"), decimal.Decimal("1.5"), POOL[0]], dtype=object))
    assert frame["valid"].tolist() == [False, False, True]
    assert frame["invalid_reason"].tolist()[:2] == ["missing value", "not a string: Decimal('1.5')"]
    assert frame["contact_id"].iloc[0] is None  # pandas, the journal and the result cannot handle it as it is

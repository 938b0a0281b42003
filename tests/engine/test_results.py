"""The result frame: one row per input row, statuses from the outcomes, and the summary."""

from __future__ import annotations

import ast
import dataclasses
import decimal
import pickle
import sys
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leadlex_nb
from leadlex_nb.ids import normalise_ids
from leadlex_nb.results import (
    RESULT_COLUMNS,
    STATUSES,
    Outcome,
    build_result_frame,
    result_html,
    summarise,
    summary_line,
)

U = "123e4567-e89b-12d3-a456-426614174000"
V = "00000000-0000-0000-0000-0000000000ff"
W = "ffffffff-0000-0000-0000-000000000000"
TEXT_COLUMNS = ("contact_id", "error_code", "error_message", "request_id")
NA = pd.NA  # every empty cell of a result; lists and dicts holding it compare by identity


def result_for(
    values: list[Any], outcomes: dict[str, Outcome], index: pd.Index | None = None, **kw: Any
) -> pd.DataFrame:
    return build_result_frame(normalise_ids(pd.Series(values, index=index, dtype=object)), outcomes, **kw)


def test_the_status_vocabulary_is_the_contract_s_nine_strings() -> None:
    assert STATUSES == (
        "deleted", "not_found", "gone", "error", "invalid", "would_delete", "unresolved", "not_sent", "unknown"
    )
    assert RESULT_COLUMNS == (
        "contact_id", "status", "error_code", "error_message", "batch", "attempts", "request_id", "duplicate"
    )


def test_valid_rows_carry_their_outcome() -> None:
    result = result_for(
        [U.upper(), V],
        {U: Outcome("deleted", batch=0, attempts=2, request_id="req-1"),
         V: Outcome("error", "contact_locked", "locked by an import", batch=1, attempts=1, request_id="req-2")},
    )
    assert result.to_dict("records") == [  # to_dict gives Python values: None for <NA>
        {"contact_id": U, "status": "deleted", "error_code": None, "error_message": None, "batch": 0,
         "attempts": 2, "request_id": "req-1", "duplicate": False},
        {"contact_id": V, "status": "error", "error_code": "contact_locked", "error_message": "locked by an import",
         "batch": 1, "attempts": 1, "request_id": "req-2", "duplicate": False},
    ]


def test_invalid_rows_are_invalid_with_the_reason_and_no_batch() -> None:
    result = result_for([None, "junk", 42], {"junk": Outcome("deleted", batch=0)})
    assert result["status"].tolist() == ["invalid"] * 3
    assert result["error_code"].tolist() == ["invalid_id"] * 3
    assert result["error_message"].tolist() == ["missing value", "not a UUID: 'junk'", "not a string: 42"]
    assert result["batch"].isna().all() and result["attempts"].isna().all()
    assert result["request_id"].tolist() == [NA] * 3
    assert result["contact_id"].tolist() == [NA, "junk", "42"]  # the raw value as text; missing: <NA>


def test_duplicates_share_the_first_occurrence_s_outcome_and_are_flagged() -> None:
    result = result_for([U, V, "{" + U.upper() + "}", U], {U: Outcome("gone", batch=3, attempts=1, request_id="r")})
    assert result["status"].tolist() == ["gone", "not_sent", "gone", "gone"]
    assert result["batch"].tolist() == [3, pd.NA, 3, 3]
    assert result["request_id"].tolist() == ["r", NA, "r", "r"]
    assert result["duplicate"].tolist() == [False, False, True, True]


def test_valid_ids_without_an_outcome_get_the_unsent_status_and_reason() -> None:
    result = result_for([U, V], {U: Outcome("deleted")}, unsent_reason="run stopped: quota exhausted")
    assert result.loc[1, "status"] == "not_sent"
    assert result.loc[1, "error_message"] == "run stopped: quota exhausted"
    assert result.loc[1, "error_code"] is NA
    assert result["batch"].isna().tolist() == [True, True]
    unknown = result_for([U], {}, unsent_status="unknown")
    assert unknown["status"].tolist() == ["unknown"]


def test_outcomes_for_ids_not_in_the_input_are_ignored() -> None:
    result = result_for([U], {U: Outcome("deleted"), W: Outcome("deleted")})
    assert len(result) == 1
    assert summarise(result)["deleted"] == 1


def test_column_dtypes_are_categorical_status_nullable_ints_and_string_text() -> None:
    result = result_for([U, "junk"], {U: Outcome("deleted", batch=0, attempts=1)})
    assert tuple(result.columns) == RESULT_COLUMNS
    assert isinstance(result["status"].dtype, pd.CategoricalDtype)
    assert tuple(result["status"].cat.categories) == STATUSES
    assert str(result["batch"].dtype) == "Int64" and str(result["attempts"].dtype) == "Int64"
    for column in TEXT_COLUMNS:
        assert result[column].dtype == "string" and result[column].dtype.na_value is NA
    assert result["duplicate"].dtype == bool


def test_an_empty_input_gives_an_empty_result_with_the_columns_and_dtypes() -> None:
    result = build_result_frame(normalise_ids(pd.Series([], dtype=object)), {U: Outcome("deleted")})
    assert result.empty
    assert tuple(result.columns) == RESULT_COLUMNS
    assert isinstance(result["status"].dtype, pd.CategoricalDtype)
    assert str(result["batch"].dtype) == "Int64"
    assert all(result[column].dtype == "string" for column in TEXT_COLUMNS)


@pytest.mark.parametrize(
    "index",
    [
        pd.Index(["c", "a", "b", "a"]),
        pd.Index([7, 7, 7, 7]),
        pd.MultiIndex.from_tuples([("x", 1), ("x", 1), ("y", 0), ("a", 9)], names=["k", "n"]),
        pd.RangeIndex(10, 18, 2),
    ],
)
def test_the_result_has_the_input_s_index_and_order(index: pd.Index) -> None:
    result = result_for([V, None, U, V], {V: Outcome("deleted")}, index=index)
    assert result.index.equals(index)
    assert result["status"].tolist() == ["deleted", "invalid", "not_sent", "deleted"]


def test_the_result_joins_and_masks_the_caller_s_frame() -> None:
    df = pd.DataFrame({"contact_id": [U, "junk", V], "name": ["ann", "bob", "cy"]}, index=["r1", "r2", "r3"])
    result = build_result_frame(normalise_ids(df["contact_id"]), {U: Outcome("deleted")})
    joined = df.join(result.drop(columns="contact_id"))
    assert joined["status"].tolist() == ["deleted", "invalid", "not_sent"]
    assert df[result["status"] == "deleted"]["name"].tolist() == ["ann"]


MISSING = [None, float("nan"), np.nan, pd.NaT, np.datetime64("NaT"), pd.NA, decimal.Decimal("NaN")]


@pytest.mark.parametrize("missing", MISSING, ids=repr)
def test_a_missing_raw_value_is_na_and_never_none_nan_or_nat(missing: Any) -> None:
    result = result_for([missing, U], {U: Outcome("deleted", batch=0, attempts=1, request_id="r")})
    assert result.loc[0, "contact_id"] is NA
    assert result.loc[0, "error_message"] == "missing value"
    for column in ("contact_id", "error_code", "error_message", "batch", "attempts", "request_id"):
        cells = result[column].tolist()
        assert all(cell is NA for cell in cells if pd.isna(cell)), (column, cells)


@pytest.mark.parametrize(
    ("raw", "text"),
    [(42, "42"), (1.5, "1.5"), (True, "True"), (b"ab", "b'ab'"), (["x"], "['x']"), (np.str_("junk "), "junk "),
     (" junk ", " junk "), ("", "")],
    ids=repr,
)
def test_an_invalid_raw_value_is_kept_as_its_string_form(raw: Any, text: str) -> None:
    result = result_for([raw], {})
    assert result["status"].tolist() == ["invalid"]
    cell = result.loc[0, "contact_id"]
    assert cell == text and type(cell) is str  # what the journal stores, so a resumed run shows the same


def test_a_raw_value_whose_str_fails_does_not_lose_the_result() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

        def __repr__(self) -> str:
            return "Broken()"

    result = result_for([Broken(), U], {U: Outcome("deleted")})
    assert result["contact_id"].tolist() == ["<Broken object>", U]
    assert result["status"].tolist() == ["invalid", "deleted"]


def test_the_text_display_shows_missing_cells_one_way() -> None:
    result = result_for([U, None, float("nan"), pd.NaT, 42, V], {U: Outcome("deleted", batch=0, attempts=1)})
    shown = result.to_string()
    for other in ("None", "NaN", "NaT"):
        assert other not in shown
    assert "<NA>" in shown


def test_the_result_reads_like_a_plain_frame() -> None:
    df = pd.DataFrame({"contact_id": [U, None, "junk", V, U.upper()], "n": range(5)}, index=list("abcde"))
    result = build_result_frame(
        normalise_ids(df["contact_id"]),
        {U: Outcome("deleted", batch=0, attempts=1, request_id="r"), V: Outcome("error", "contact_locked", "locked")},
    )
    assert df[result.status.eq("deleted")]["n"].tolist() == [0, 4]
    assert df[result["error_code"] == "contact_locked"]["n"].tolist() == [3]  # <NA> rows count as False
    assert df[result["error_code"].isna()]["n"].tolist() == [0, 4]
    assert df[result["error_code"] != "contact_locked"]["n"].tolist() == [1, 2]  # <NA> != x is <NA>: left out
    assert result["status"].value_counts()[["deleted", "invalid", "error"]].tolist() == [2, 2, 1]
    assert result["error_code"].value_counts().to_dict() == {"invalid_id": 2, "contact_locked": 1}
    assert df.join(result.drop(columns="contact_id"))["request_id"].tolist() == ["r", NA, NA, NA, "r"]
    assert set(result.loc[result["status"] == "deleted", "contact_id"]) == {U}

    again = pickle.loads(pickle.dumps(result))
    pd.testing.assert_frame_equal(again, result)

    text = result.to_csv()
    assert text.splitlines()[2] == "b,,invalid,invalid_id,missing value,,,,False"  # an empty cell is empty
    back = pd.read_csv(StringIO(text), index_col=0, keep_default_na=False, na_values=[""])
    assert summarise(back).to_dict() == summarise(result).to_dict()


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown status"):
        Outcome("removed")
    with pytest.raises(ValueError, match="unknown status"):
        result_for([U], {}, unsent_status="skipped")
    forged = Outcome("deleted")
    object.__setattr__(forged, "status", "removed")
    with pytest.raises(ValueError, match="removed"):
        result_for([U], {U: forged})


@pytest.mark.parametrize("field", ["batch", "attempts"])
@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_outcome_counters_must_be_non_negative_ints(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        Outcome("deleted", **{field: value})


def test_an_outcome_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Outcome("deleted").status = "gone"  # type: ignore[misc]


def test_a_frame_without_the_normalised_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="normalise_ids"):
        build_result_frame(pd.DataFrame({"contact_id": [U]}), {})


# -- summarise ----------------------------------------------------------------------------------


def test_the_summary_lists_the_statuses_that_occur_in_the_vocabulary_s_order() -> None:
    result = result_for(["junk", V, U, U], {U: Outcome("deleted"), V: Outcome("error", "x", "y")})
    summary = summarise(result)
    assert isinstance(summary, pd.Series)
    assert summary.name == "count" and summary.index.name == "status" and summary.dtype == np.int64
    assert list(summary.items()) == [("deleted", 2), ("error", 1), ("invalid", 1)]  # no zeros
    assert str(summary) == "status\ndeleted    2\nerror      1\ninvalid    1\nName: count, dtype: int64"


def test_the_summary_of_an_empty_result_is_empty() -> None:
    summary = summarise(build_result_frame(normalise_ids(pd.Series([], dtype=object)), {}))
    assert summary.empty and summary.name == "count" and summary.index.name == "status"
    assert summary.dtype == np.int64


def test_the_summary_works_on_a_plain_text_status_column() -> None:
    result = pd.DataFrame({"status": ["unknown", "gone", "gone"]})  # e.g. read back from CSV
    assert summarise(result).to_dict() == {"gone": 2, "unknown": 1}
    assert list(summarise(result).index) == ["gone", "unknown"]


@pytest.mark.parametrize("bad", ["removed", None])
def test_the_summary_refuses_statuses_outside_the_vocabulary(bad: Any) -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        summarise(pd.DataFrame({"status": ["deleted", bad]}))


# -- summary_line and result_html ------------------------------------------------------------


def test_the_summary_line_counts_rows_per_status_and_repeated_rows() -> None:
    result = result_for([U, V, "junk", U.upper(), W], {U: Outcome("deleted"), V: Outcome("not_found")})
    assert summary_line(result) == "5 rows: 2 deleted, 1 not_found, 1 invalid, 1 not_sent (1 repeated row)"


@pytest.mark.parametrize(
    ("statuses", "repeated", "line"),
    [
        ([], 0, "0 rows"),
        (["deleted"], 0, "1 row: 1 deleted"),
        (["deleted"] * 2997 + ["not_found"] * 2 + ["invalid"], 1200,
         "3,000 rows: 2,997 deleted, 2 not_found, 1 invalid (1,200 repeated rows)"),
        (["unknown", "gone", "unknown"], 1, "3 rows: 1 gone, 2 unknown (1 repeated row)"),
    ],
)
def test_the_summary_line_wording(statuses: list[str], repeated: int, line: str) -> None:
    duplicate = [True] * repeated + [False] * (len(statuses) - repeated)
    assert summary_line(pd.DataFrame({"status": statuses, "duplicate": duplicate})) == line


def test_the_summary_line_needs_only_a_status_column() -> None:
    assert summary_line(pd.DataFrame({"status": ["gone", "gone"]})) == "2 rows: 2 gone"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        summary_line(pd.DataFrame({"status": ["gone", "removed"]}))


def test_the_html_shows_the_summary_line_and_keeps_each_cell_on_one_line() -> None:
    result = result_for([U, "<b>junk</b>", V], {U: Outcome("deleted")})
    shown = result_html(result)
    assert shown.startswith("<div class='leadlex-result'>") and shown.endswith("</div>")
    assert ".leadlex-result td, .leadlex-result th {white-space: nowrap;}" in shown
    assert "<p>3 rows: 1 deleted, 1 invalid, 1 not_sent</p>" in shown
    assert f"<td>{U}</td>" in shown and "&lt;b&gt;junk&lt;/b&gt;" in shown and "<b>junk" not in shown
    assert shown.count("<tr>") == 3  # the body's rows; the header's <tr> carries a style


def test_the_html_cuts_long_results_as_pandas_display_options_say() -> None:
    result = result_for([U] * 300, {U: Outcome("deleted")})
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10, "display.show_dimensions", True):
        shown = result_html(result)
    assert shown.count(f"<td>{U}</td>") == 10
    assert "300 rows × 8 columns" in shown
    assert "<p>300 rows: 300 deleted (299 repeated rows)</p>" in shown


# -- properties ---------------------------------------------------------------------------------

POOL = [U, V, W, U.upper(), "{" + V + "}", W.replace("-", "")]
raw_values = st.one_of(
    st.sampled_from(POOL), st.sampled_from(["junk", "", None, 7, float("nan"), pd.NaT, pd.NA, b"x", 2.5]), st.none(),
    st.builds(uuid.UUID, st.sampled_from(POOL[:3])),
)
outcomes = st.builds(
    Outcome,
    status=st.sampled_from(STATUSES),
    error_code=st.none() | st.sampled_from(["contact_locked", "rate_limited"]),
    error_message=st.none() | st.text(max_size=10),
    batch=st.none() | st.integers(0, 100),
    attempts=st.none() | st.integers(1, 9),
    request_id=st.none() | st.text(min_size=1, max_size=8),
)


@st.composite
def indexes(draw: st.DrawFn, n: int) -> pd.Index:
    kind = draw(st.sampled_from(["range", "strings", "repeated", "multi"]))
    if kind == "range":
        return pd.RangeIndex(n)
    if kind == "strings":
        return pd.Index(draw(st.lists(st.text(max_size=3), min_size=n, max_size=n)), dtype=object)
    if kind == "repeated":
        return pd.Index(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    keys = draw(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 1)), min_size=n, max_size=n))
    return pd.MultiIndex.from_tuples(keys) if keys else pd.MultiIndex.from_arrays([[], []])


@settings(deadline=None)
@given(st.data())
def test_one_row_per_input_row_with_statuses_from_the_outcomes(data: st.DataObject) -> None:
    raw = data.draw(st.lists(raw_values, max_size=25))
    index = data.draw(indexes(len(raw)))
    decided = data.draw(st.dictionaries(st.sampled_from([U, V, W]), outcomes))
    ids = normalise_ids(pd.Series(raw, index=index, dtype=object))

    result = build_result_frame(ids, decided, unsent_status="not_sent", unsent_reason="stopped")

    assert len(result) == len(raw)
    assert result.index.equals(index)
    assert tuple(result.columns) == RESULT_COLUMNS
    assert result["contact_id"].tolist() == [
        cid if valid else NA if pd.isna(cid) else str(cid)
        for cid, valid in zip(ids["contact_id"], ids["valid"], strict=True)
    ]
    assert result["duplicate"].tolist() == ids["duplicate"].tolist()
    for column in RESULT_COLUMNS:  # missing values one way: <NA>, never None, NaN or NaT
        assert all(cell is NA for cell in result[column].astype(object) if pd.isna(cell)), column
    for (_, row), valid in zip(result.iterrows(), ids["valid"], strict=True):
        if not valid:
            assert (row["status"], row["error_code"]) == ("invalid", "invalid_id")
        elif row["contact_id"] in decided:
            outcome = decided[row["contact_id"]]
            assert row["status"] == outcome.status
            assert _none(row["error_message"]) == outcome.error_message
            assert _none(row["batch"]) == outcome.batch
            assert _none(row["request_id"]) == outcome.request_id
        else:
            assert (row["status"], row["error_message"]) == ("not_sent", "stopped")
    valid_rows = result[ids["valid"].to_numpy()]
    shared = valid_rows.astype({"status": object}).groupby("contact_id")[["status", "batch", "attempts"]]
    assert (shared.nunique(dropna=False) <= 1).all().all()  # duplicates share the outcome
    summary = summarise(result)
    assert summary.sum() == len(raw) and (summary > 0).all()
    assert list(summary.index) == [status for status in STATUSES if status in set(result["status"])]
    assert summary_line(result).startswith(f"{len(raw)} row")


def _none(cell: Any) -> Any:
    return None if cell is NA else cell


@pytest.mark.parametrize("module", ["ids", "plan", "results", "outcome_table"])
def test_the_pure_core_imports_only_pandas_numpy_the_stdlib_and_itself(module: str) -> None:
    tree = ast.parse((Path(leadlex_nb.__file__).parent / f"{module}.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed_roots = set(sys.stdlib_module_names) | {"pandas", "numpy", "pyarrow"}  # pyarrow: pandas' own storage
    pure_siblings = {"leadlex_nb.ids", "leadlex_nb.results", "leadlex_nb.outcome_table"}
    outside = {name for name in imported if name.split(".")[0] not in allowed_roots and name not in pure_siblings}
    assert outside == set()  # no aiohttp, tqdm, ipywidgets or I/O layers of our own

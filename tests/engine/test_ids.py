"""ID normalisation: what is accepted, how it is spelled afterwards, and why a row was refused."""

from __future__ import annotations

import re
import string
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadlex_nb.ids import ID_COLUMNS, UUID_PATTERN, normalise_ids, unique_valid_ids

U = "123e4567-e89b-12d3-a456-426614174000"
V = "00000000-0000-0000-0000-0000000000ff"
HEX32 = U.replace("-", "")

_LOWER_ASCII = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_REFERENCE = re.compile(
    r"(?:urn:uuid:)?(\{)?([0-9a-f]{8}(-?)[0-9a-f]{4}\3[0-9a-f]{4}\3[0-9a-f]{4}\3[0-9a-f]{12})(?(1)\})",
    re.ASCII,
)


def reference(value: object) -> str | None:
    """A slow, obviously-correct spelling of the rules: the canonical ID, or None if invalid."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    match = _REFERENCE.fullmatch(value.strip().translate(_LOWER_ASCII))
    return None if match is None else str(uuid.UUID(match.group(2)))


def one(value: object) -> pd.Series:
    """The output row for a single input value."""
    frame = normalise_ids(pd.Series([value], dtype=object))
    return frame.iloc[0]


# -- accepted spellings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        U,
        U.upper(),
        "{" + U + "}",
        "{" + U.upper() + "}",
        "urn:uuid:" + U,
        "URN:UUID:" + U.upper(),
        "Urn:Uuid:{" + U + "}",
        HEX32,
        HEX32.upper(),
        "{" + HEX32 + "}",
        "urn:uuid:" + HEX32,
        "  " + U + "  ",
        "\t" + U + "\r\n",
        "\u00a0\u3000" + U + "\u2028",  # Unicode whitespace, as str.strip sees it
        " " * 200 + "{" + U + "}" + " " * 200,
    ],
)
def test_accepted_spellings_become_the_canonical_lower_case_uuid(spelling: str) -> None:
    row = one(spelling)
    assert row["valid"]
    assert row["contact_id"] == U
    assert row["invalid_reason"] is None


def test_32_hex_digits_get_hyphens_in_the_canonical_places() -> None:
    assert one("ABCDEF0123456789abcdef0123456789")["contact_id"] == "abcdef01-2345-6789-abcd-ef0123456789"


# -- refused values -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, np.nan, float("nan"), pd.NA, pd.NaT])
def test_missing_values_are_invalid_as_missing(missing: object) -> None:
    row = one(missing)
    assert not row["valid"]
    assert row["invalid_reason"] == "missing value"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (42, "not a string: 42"),
        (1.5, "not a string: 1.5"),
        (True, "not a string: True"),
        (b"x", "not a string: b'x'"),
        (uuid.UUID(U).bytes, f"not a string: {uuid.UUID(U).bytes!r}"),
    ],
)
def test_non_string_scalars_are_invalid_with_their_repr(value: object, reason: str) -> None:
    row = one(value)
    assert not row["valid"]
    assert row["invalid_reason"] == reason


def test_uuid_objects_are_valid_ids_in_their_canonical_spelling() -> None:
    # What a Parquet ``uuid`` column or a database driver gives: before, every row was "not a string".
    frame = normalise_ids(pd.Series([uuid.UUID(U), U.upper(), uuid.UUID(V), "junk", uuid.UUID(U)], dtype=object))
    assert frame["valid"].tolist() == [True, True, True, False, True]
    assert frame["contact_id"].tolist() == [U, U, V, "junk", U]
    assert all(type(v) is str for v in frame["contact_id"])
    assert frame["duplicate"].tolist() == [False, True, False, False, True]
    assert frame["invalid_reason"].tolist() == [None, None, None, "not a UUID: 'junk'", None]
    assert unique_valid_ids(frame) == [U, V]


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u3000"])
def test_empty_and_blank_strings_are_invalid_as_empty(blank: str) -> None:
    row = one(blank)
    assert not row["valid"]
    assert row["invalid_reason"] == "empty string"


@pytest.mark.parametrize(
    "junk",
    [
        "abc",
        U[:-1],  # 35 characters
        U + "0",  # 37 characters
        U[:-1] + "g",  # not hex
        "{" + U,  # unbalanced braces
        U + "}",
        "{{" + U + "}}",
        "{" + U + "]",  # the closing brace is checked, not just counted
        "{" + HEX32 + "{",
        "urn:uuid:{" + U + ")",
        "[" + U + "]",
        "(" + U + ")",
        U.replace("-", "_"),
        U.replace("-", "", 1),  # hyphens partly removed
        HEX32[:8] + "-" + HEX32[8:] + "-",
        "uuid:" + U,
        "urn:uuid:",
        "{urn:uuid:" + U + "}",
        U + "\x00",  # a NUL is neither whitespace nor hex
        "\x10" * 32,  # control characters whose bits look like digits
        "１２３e4567-e89b-12d3-a456-426614174000",  # full-width digits
        "\u0130" * 36,  # 'İ' lower-cases to two characters
        "\ud800" * 36,  # lone surrogates
        U[:8] + " " + U[9:],
    ],
)
def test_malformed_strings_are_invalid_and_show_the_raw_value(junk: str) -> None:
    row = one(junk)
    assert not row["valid"]
    assert row["invalid_reason"].startswith("not a UUID: ")
    assert row["contact_id"] is junk


def test_long_raw_values_are_shortened_in_the_reason() -> None:
    reason = one("x" * 10_000)["invalid_reason"]
    assert reason.startswith("not a UUID: 'xxx")
    assert len(reason) < 100


@pytest.mark.parametrize("raw", [None, 42, b"x", "junk", " ", [1, 2]])
def test_invalid_rows_keep_the_raw_value_untouched(raw: object) -> None:
    assert one(raw)["contact_id"] is raw


def test_invalid_rows_are_never_flagged_duplicate() -> None:
    frame = normalise_ids(pd.Series(["abc", "abc", None, None, 7, 7], dtype=object))
    assert not frame["duplicate"].any()


# -- duplicates and order -----------------------------------------------------------------------


def test_second_and_later_spellings_of_one_id_are_duplicates() -> None:
    frame = normalise_ids(pd.Series([U.upper(), V, "{" + U + "}", HEX32, V, "junk"], dtype=object))
    assert frame["duplicate"].tolist() == [False, False, True, True, True, False]
    assert frame["contact_id"].tolist()[:5] == [U, V, U, U, V]


@pytest.mark.parametrize("dtype", [object, "str", "category"])
def test_the_input_series_is_left_unchanged(dtype: Any) -> None:
    values = pd.Series([U.upper(), " " + V, None], dtype=dtype)
    before = values.copy()
    normalise_ids(values)
    pd.testing.assert_series_equal(values, before)


def test_unique_valid_ids_are_first_occurrences_in_input_order() -> None:
    frame = normalise_ids(pd.Series([V, None, U.upper(), V, "junk", U], dtype=object))
    assert unique_valid_ids(frame) == [V, U]


@pytest.mark.parametrize(
    "index",
    [
        pd.Index(["z", "a", "m", "b"]),
        pd.Index([5, 5, 1, 5]),
        pd.MultiIndex.from_tuples([("x", 2), ("x", 1), ("x", 2), ("a", 0)]),
        pd.date_range("2024-01-01", periods=4),
    ],
)
def test_index_and_row_order_are_those_of_the_input(index: pd.Index) -> None:
    values = pd.Series([V, None, U, V], index=index, dtype=object)
    frame = normalise_ids(values)
    assert frame.index.equals(index)
    assert frame["contact_id"].tolist()[0::2] == [V, U]
    assert frame["duplicate"].tolist() == [False, False, False, True]


# -- dtypes of the input and the output --------------------------------------------------------


def test_output_dtypes_stay_object_and_bool_even_when_every_row_is_valid() -> None:
    frame = normalise_ids(pd.Series([U, V]))
    assert tuple(frame.columns) == ID_COLUMNS
    assert frame.dtypes.to_dict() == {
        "contact_id": np.dtype(object),
        "valid": np.dtype(bool),
        "invalid_reason": np.dtype(object),
        "duplicate": np.dtype(bool),
    }
    assert frame["invalid_reason"].tolist() == [None, None]


@pytest.mark.parametrize(
    "dtype",
    [
        "string",
        pd.StringDtype("python"),
        pytest.param("str", id="str-pandas3-default"),
        pytest.param("string[pyarrow]", id="pyarrow-if-installed"),
    ],
)
def test_pandas_string_dtypes_are_normalised_like_object(dtype: Any) -> None:
    if dtype == "string[pyarrow]":
        pytest.importorskip("pyarrow")
    values = pd.Series([" " + U.upper(), None, "junk", "", HEX32], dtype=dtype)
    frame = normalise_ids(values)
    assert frame["valid"].tolist() == [True, False, False, False, True]
    assert frame["contact_id"].tolist()[0::4] == [U, U]
    assert frame["invalid_reason"].tolist()[1:4] == ["missing value", "not a UUID: 'junk'", "empty string"]
    assert frame["duplicate"].tolist() == [False, False, False, False, True]


def test_categorical_series_are_normalised_by_their_values() -> None:
    values = pd.Series(
        pd.Categorical([U.upper(), None, "junk", U, U.upper(), 7], categories=[U.upper(), U, "junk", 7, "unused"])
    )
    frame = normalise_ids(values)
    assert frame["valid"].tolist() == [True, False, False, True, True, False]
    assert frame["duplicate"].tolist() == [False, False, False, True, True, False]
    assert frame["invalid_reason"].tolist()[1:3] == ["missing value", "not a UUID: 'junk'"]
    assert frame["invalid_reason"].iloc[5] == "not a string: 7"
    assert frame["contact_id"].tolist()[2:] == ["junk", U, U, 7]


@pytest.mark.parametrize("dtype", [object, "str", "category", "float64"])
def test_an_empty_series_gives_an_empty_frame_with_the_columns(dtype: Any) -> None:
    frame = normalise_ids(pd.Series([], dtype=dtype))
    assert frame.empty
    assert tuple(frame.columns) == ID_COLUMNS
    assert unique_valid_ids(frame) == []


def test_a_numeric_series_is_all_invalid() -> None:
    frame = normalise_ids(pd.Series([1.0, np.nan]))
    assert frame["invalid_reason"].tolist() == ["not a string: 1.0", "missing value"]


def test_anything_but_a_series_is_refused() -> None:
    with pytest.raises(TypeError, match="Series"):
        normalise_ids([U])  # type: ignore[arg-type]


def test_results_are_the_same_across_internal_chunk_boundaries() -> None:
    ids = [str(uuid.UUID(int=i * 7919)) for i in range(70_000)]
    spelled = [s.upper() if i % 2 else "{" + s + "}" for i, s in enumerate(ids)]
    spelled[65_536] = "junk"
    frame = normalise_ids(pd.Series(spelled + spelled[:3], dtype=object))
    assert frame["valid"].sum() == 70_002
    assert frame["contact_id"].iloc[65_537] == ids[65_537]
    assert frame["duplicate"].tolist()[-3:] == [True, True, True]


# -- properties ---------------------------------------------------------------------------------

uuids = st.uuids().map(str)


@st.composite
def spelled_uuids(draw: st.DrawFn) -> str:
    """A valid ID in any accepted spelling."""
    core = draw(uuids)
    if draw(st.booleans()):
        core = core.replace("-", "")
    core = "".join(c.upper() if draw(st.booleans()) else c for c in core) if draw(st.booleans()) else core
    if draw(st.booleans()):
        core = "{" + core + "}"
    if draw(st.booleans()):
        core = draw(st.sampled_from(["urn:uuid:", "URN:UUID:", "uRn:UuId:"])) + core
    pad = st.text(alphabet=" \t\n\u00a0\u3000", max_size=3)
    return draw(pad) + core + draw(pad)


@st.composite
def damaged_uuids(draw: st.DrawFn) -> str:
    """A spelled ID with one character replaced, inserted or removed: mostly invalid, sometimes not."""
    text = draw(spelled_uuids())
    at = draw(st.integers(0, len(text)))
    char = draw(st.characters(codec="utf-8") | st.sampled_from("-{}:gG0aA \x00"))
    how = draw(st.sampled_from(["replace", "insert", "delete"]))
    if how == "insert":
        return text[:at] + char + text[at:]
    if how == "replace":
        return text[:at] + char + text[at + 1 :]
    return text[:at] + text[at + 1 :]


values = st.one_of(
    spelled_uuids(),
    damaged_uuids(),
    st.text(max_size=60),
    st.none(),
    st.just(np.nan),
    st.just(pd.NA),
    st.integers(),
    st.floats(),
    st.binary(max_size=40),
    st.booleans(),
    st.uuids(),
)


def reference_duplicates(expected: list[str | None]) -> list[bool]:
    """True for a valid row whose canonical ID appeared on an earlier row."""
    seen: set[str] = set()
    duplicates = []
    for canonical in expected:
        duplicates.append(canonical is not None and canonical in seen)
        if canonical is not None:
            seen.add(canonical)
    return duplicates


@settings(deadline=None, max_examples=200)
@given(st.lists(values, max_size=30))
def test_agrees_with_a_reference_regex_on_every_row(raw: list[Any]) -> None:
    frame = normalise_ids(pd.Series(raw, dtype=object))
    expected = [reference(v) for v in raw]
    assert frame["valid"].tolist() == [e is not None for e in expected]
    for value, canonical, got in zip(raw, expected, frame["contact_id"].tolist(), strict=True):
        assert got == canonical if canonical is not None else got is value
    assert frame["duplicate"].tolist() == reference_duplicates(expected)
    assert frame["invalid_reason"].isna().tolist() == frame["valid"].tolist()


def stdlib_reference(value: object) -> str | None:
    """The rules restated with ``uuid.UUID`` instead of a regex: the canonical ID, or None if invalid.

    ``uuid.UUID`` alone is looser (hyphens anywhere, "_" and signs inside ``int``, "urn:" or "uuid:"
    alone, unbalanced braces), so the text it parsed must also be exactly its 8-4-4-4-12 or 32-digit form.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[:9].isascii() and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    if text[:1] == "{" and text[-1:] == "}":
        text = text[1:-1]
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return None
    return str(parsed) if text.isascii() and text.lower() in (str(parsed), parsed.hex) else None


def stdlib_reason_kind(value: object) -> str | None:
    """The expected ``invalid_reason`` up to its first colon: None where valid."""
    if stdlib_reference(value) is not None:
        return None
    if isinstance(value, str):
        return "not a UUID" if value.strip() else "empty string"
    return "missing value" if value is None or value is pd.NA or value != value else "not a string"


@settings(deadline=None, max_examples=200)
@given(st.lists(values, max_size=30))
def test_agrees_with_uuid_uuid_on_every_row_and_reason(raw: list[Any]) -> None:
    frame = normalise_ids(pd.Series(raw, dtype=object))
    expected = [stdlib_reference(v) for v in raw]
    assert frame["valid"].tolist() == [e is not None for e in expected]
    assert frame["contact_id"].tolist() == [v if e is None else e for v, e in zip(raw, expected, strict=True)]
    assert frame["duplicate"].tolist() == reference_duplicates(expected)
    kinds = [None if reason is None else reason.split(":")[0] for reason in frame["invalid_reason"]]
    assert kinds == [stdlib_reason_kind(v) for v in raw]


@settings(deadline=None)
@given(st.lists(values, max_size=30))
def test_every_valid_output_matches_the_uuid_pattern(raw: list[Any]) -> None:
    frame = normalise_ids(pd.Series(raw, dtype=object))
    valid_ids = frame.loc[frame["valid"], "contact_id"]
    assert valid_ids.map(lambda s: re.fullmatch(UUID_PATTERN, s) is not None).all()


@settings(deadline=None)
@given(st.lists(spelled_uuids() | damaged_uuids(), max_size=30))
def test_normalising_twice_changes_nothing(raw: list[str]) -> None:
    first = normalise_ids(pd.Series(raw, dtype=object))
    valid_ids = first.loc[first["valid"], "contact_id"]
    second = normalise_ids(valid_ids)
    assert second["valid"].all()
    assert second["contact_id"].tolist() == valid_ids.tolist()
    assert second["duplicate"].tolist() == first.loc[first["valid"], "duplicate"].tolist()


@settings(deadline=None)
@given(st.lists(st.text() | st.binary() | st.integers() | st.floats() | st.none() | st.datetimes(), max_size=20))
def test_random_junk_never_raises_and_keeps_one_row_per_value(raw: list[Any]) -> None:
    frame = normalise_ids(pd.Series(raw, dtype=object))
    assert len(frame) == len(raw)
    assert frame.loc[~frame["valid"], "invalid_reason"].map(lambda r: isinstance(r, str) and r != "").all()


@settings(deadline=None)
@given(st.lists(spelled_uuids() | damaged_uuids() | st.none(), max_size=30))
def test_categorical_and_string_inputs_agree_with_object_input(raw: list[str | None]) -> None:
    expected = normalise_ids(pd.Series(raw, dtype=object))
    for dtype in ("category", "string"):
        got = normalise_ids(pd.Series(raw, dtype=dtype))
        assert got["valid"].tolist() == expected["valid"].tolist()
        assert got["duplicate"].tolist() == expected["duplicate"].tolist()
        assert got.loc[got["valid"], "contact_id"].tolist() == expected.loc[expected["valid"], "contact_id"].tolist()


# -- details that must not change -------------------------------------------------------------


def test_an_already_canonical_string_is_kept_and_the_input_is_not_modified() -> None:
    raw = [U, U.upper(), " " + V]
    values = pd.Series(raw, dtype=object)
    frame = normalise_ids(values)
    assert frame["contact_id"].tolist() == [U, U, V]
    assert frame["contact_id"].iloc[0] is raw[0]
    assert values.tolist() == raw
    assert all(a is b for a, b in zip(values.tolist(), raw, strict=True))


def test_str_subclasses_are_checked_as_plain_strings_but_shown_as_they_are() -> None:
    junk = np.str_("junk")
    frame = normalise_ids(pd.Series([np.str_(U.upper()), np.str_(U), junk, "junk", 7], dtype=object))
    assert frame["valid"].tolist() == [True, True, False, False, False]
    assert [type(v) for v in frame["contact_id"].iloc[:2]] == [str, str]
    assert frame["contact_id"].tolist()[:2] == [U, U]
    assert frame["duplicate"].tolist() == [False, True, False, False, False]
    assert frame["contact_id"].iloc[2] is junk
    assert frame["invalid_reason"].tolist()[2:] == [
        f"not a UUID: {junk!r}",
        "not a UUID: 'junk'",
        "not a string: 7",
    ]


def test_equal_values_of_different_types_keep_their_own_reason() -> None:
    raw = [1, True, 1.0, 0.0, -0.0, b"1", 1, True, -0.0, "1", "1"]
    frame = normalise_ids(pd.Series(raw, dtype=object))
    shown = [f"not a UUID: {v!r}" if isinstance(v, str) else f"not a string: {v!r}" for v in raw]
    assert frame["invalid_reason"].tolist() == shown
    assert all(got is value for got, value in zip(frame["contact_id"].tolist(), raw, strict=True))


def test_non_ascii_strings_do_not_shift_the_valid_ones_in_the_same_chunk() -> None:
    raw = ["é" * 36, U.upper(), "\ud800" + U[1:], V, "１" * 36, "{" + U + "}", "é" + HEX32[1:]]
    frame = normalise_ids(pd.Series(raw, dtype=object))
    assert frame["valid"].tolist() == [False, True, False, True, False, True, False]
    assert frame["contact_id"].tolist()[1::2] == [U, V, U]


def test_many_rows_of_mixed_lengths_and_types_agree_with_the_reference() -> None:
    rng = np.random.default_rng(5)
    ids = [str(uuid.UUID(int=int(i) * 104729 + 1)) for i in range(40_000)]
    spellings = [
        lambda s: s,
        str.upper,
        lambda s: "{" + s + "}",
        lambda s: " " + s + "\t",
        lambda s: "urn:uuid:" + s.replace("-", ""),
        lambda s: s[:-1] + "x",
        lambda s: "URN:UUID:{" + s.upper() + "}",
    ]
    kinds, picks = rng.integers(0, 7, 150_000), rng.integers(0, 40_000, 150_000)
    raw: list[Any] = [spellings[k](ids[j]) for k, j in zip(kinds, picks, strict=True)]
    for at in rng.integers(0, len(raw), 2_000):
        raw[at] = [None, "", 42, "junk", np.nan, b"x"][at % 6]
    frame = normalise_ids(pd.Series(raw, dtype=object))
    expected = [reference(v) for v in raw]
    assert frame["valid"].tolist() == [e is not None for e in expected]
    got = frame["contact_id"].tolist()
    assert [c for c, e in zip(got, expected, strict=True) if e is not None] == [e for e in expected if e]
    assert frame["duplicate"].tolist() == reference_duplicates(expected)

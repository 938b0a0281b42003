"""Normalise, validate and de-duplicate contact IDs.

A malformed UUID may make the API refuse a whole batch of 500, so every value is checked here,
before anything is sent, and each row keeps its own reason for being left out.

Accepted (after trimming whitespace, any letter case): ``8-4-4-4-12`` hex, 32 hex digits without
hyphens, either one in ``{braces}``, and any of those behind a ``urn:uuid:`` prefix; and
:class:`uuid.UUID` objects (what database drivers and Parquet ``uuid`` columns give). Everything
else, including other non-string values, is invalid. Valid IDs come out in the canonical lower-case hyphenated
form, so one contact is never sent twice under two spellings.

Why no per-row regex: it costs about 3 CPU-s per million IDs, the client's whole CPU budget
(BENCHMARKS.md, section 5). Here the trimmed strings of each accepted length are joined and checked
as one byte matrix (one ``uint8`` per character) in numpy: about 1.3 CPU-s per million.
"""

from __future__ import annotations

import decimal
import operator
import reprlib
import uuid
from collections.abc import Callable
from itertools import repeat
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.extensions import ExtensionArray

__all__ = [
    "ID_COLUMNS",
    "UUID_PATTERN",
    "normalise_ids",
    "normalise_with_texts",
    "unique_valid_ids",
]

UUID_PATTERN: Final[str] = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""What every valid ``contact_id`` matches: the canonical lower-case hyphenated UUID."""

ID_COLUMNS: Final[tuple[str, ...]] = ("contact_id", "valid", "invalid_reason", "duplicate")

MISSING_VALUE: Final[str] = "missing value"
EMPTY_STRING: Final[str] = "empty string"

_Bools = npt.NDArray[np.bool_]
_Bytes = npt.NDArray[np.uint8]
_Objects = npt.NDArray[np.object_]
_Affix = tuple[_Bytes, _Bytes]  # the bytes of a prefix or suffix, and the case bit of its letters

_CHUNK: Final = 1 << 16  # rows per byte matrix: a few MB, so the temporaries stay in cache
_HYPHEN_COLUMNS: Final = [8, 13, 18, 23]
_DIGIT_COLUMNS: Final = [column for column in range(36) if column not in _HYPHEN_COLUMNS]
_CASE_BIT: Final = np.uint8(0x20)  # OR-ed into A-F gives a-f; digits and "-" have it already


def _affix(text: str) -> _Affix:
    encoded = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    case_bits = np.array([0x20 if c.isalpha() else 0 for c in text], dtype=np.uint8)
    return encoded, case_bits


# Trimmed length -> (prefix, length of the UUID core, suffix): each accepted spelling has its own length.
_LAYOUTS: Final[dict[int, tuple[_Affix, int, _Affix]]] = {
    len(urn + opening) + core + len(closing): (_affix(urn + opening), core, _affix(closing))
    for urn in ("", "urn:uuid:")
    for opening, closing in (("", ""), ("{", "}"))
    for core in (32, 36)
}

_shown = reprlib.Repr()
_shown.maxstring = 60
_shown.maxother = 60
_shown.maxlong = 60


def normalise_ids(values: pd.Series) -> pd.DataFrame:
    """Return one row per input row (same index, same order) with columns :data:`ID_COLUMNS`.

    ``contact_id`` holds the canonical UUID where ``valid``, otherwise the raw value untouched, so
    the caller can see exactly what was refused; ``invalid_reason`` says why. ``duplicate`` marks
    the second and later rows of a canonical ID: the ID is sent once and its outcome shared.
    """
    return normalise_with_texts(values)[0]


def normalise_with_texts(values: pd.Series) -> tuple[pd.DataFrame, ExtensionArray | None]:
    """:func:`normalise_ids`, and ``values``' own pyarrow-backed text array when each row's text in
    the frame is its input text unchanged (IDs given in canonical spelling, the usual case): a result
    can then share those bytes instead of building a million strings' worth again."""
    if not isinstance(values, pd.Series):
        raise TypeError(f"normalise_ids expects a pandas Series, not {type(values).__name__}")
    raw: _Objects = values.to_numpy(dtype=object)  # a categorical gives its values, NaN where missing
    n = len(raw)
    is_string = np.fromiter(map(isinstance, raw, repeat(str)), dtype=bool, count=n)
    strings, others = np.flatnonzero(is_string), np.flatnonzero(~is_string)
    ok, canonical = _canonical_ids(raw[strings])
    valid = np.zeros(n, dtype=bool)
    valid[strings[ok]] = True
    contact_id = raw.copy()
    contact_id[valid] = canonical[ok]
    # uuid.UUID objects are IDs already: their str() is the canonical spelling.
    objects = others[np.fromiter(map(isinstance, raw[others], repeat(uuid.UUID)), dtype=bool, count=len(others))]
    valid[objects] = True
    contact_id[objects] = list(map(str, raw[objects]))

    invalid = np.flatnonzero(~valid)
    reason = np.full(n, None, dtype=object)
    missing, signalling = _missing(raw[invalid])
    reason[invalid] = list(map(_reason, raw[invalid], missing))
    if signalling:  # pandas raises wherever it meets a signalling NaN (the journal, the result): shown as missing
        contact_id[invalid[[_is_signalling_nan(v) for v in raw[invalid]]]] = None
    duplicate = np.zeros(n, dtype=bool)
    duplicate[valid] = pd.Series(contact_id[valid], dtype=object).duplicated().to_numpy()

    texts = None
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow" \
            and all(map(operator.is_, canonical[ok], raw[strings[ok]])):  # nothing re-spelled (identity, in C)
        texts = values.array
    index = values.index  # explicit object Series: pandas 3 would otherwise infer its string dtype
    frame = pd.DataFrame(
        {
            "contact_id": pd.Series(contact_id, index=index, dtype=object),
            "valid": pd.Series(valid, index=index, dtype=bool),
            "invalid_reason": pd.Series(reason, index=index, dtype=object),
            "duplicate": pd.Series(duplicate, index=index, dtype=bool),
        },
        index=index,
    )
    return frame, texts


def unique_valid_ids(frame: pd.DataFrame) -> list[str]:
    """The IDs to send: valid, first occurrences only, in input order."""
    keep = frame["valid"].to_numpy(dtype=bool) & ~frame["duplicate"].to_numpy(dtype=bool)
    ids: list[str] = frame["contact_id"].to_numpy(dtype=object)[keep].tolist()
    return ids


def _missing(values: _Objects) -> tuple[_Bools, bool]:
    """``pd.isna`` of each value, and whether one is a signalling NaN (``Decimal("sNaN")``), which makes
    pandas raise: then they are checked one by one."""
    try:
        return np.asarray(pd.isna(values), dtype=bool), False
    except ArithmeticError:  # decimal.InvalidOperation
        return np.fromiter(map(_is_missing, values), dtype=bool, count=len(values)), True


def _is_signalling_nan(value: object) -> bool:
    return isinstance(value, decimal.Decimal) and value.is_snan()


def _is_missing(value: object) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_nan()
    answer: Any = pd.isna(cast(Any, value))
    return answer is True  # an array-like value gives an array: not missing


def _reason(value: object, missing: bool) -> str:
    if missing:
        return MISSING_VALUE
    if not isinstance(value, str):
        return f"not a string: {_shown.repr(value)}"
    if not value.strip():
        return EMPTY_STRING
    return f"not a UUID: {_shown.repr(value)}"


def _canonical_ids(strings: _Objects) -> tuple[_Bools, _Objects]:
    """Which strings spell a UUID and, where they do, its canonical spelling (as a plain ``str``).

    A string that is canonical already is returned as it is, not copied.
    """
    trimmed = _each(str.strip, strings)  # a plain str also for a subclass such as numpy.str_
    lengths = np.fromiter(map(len, trimmed), dtype=np.intp, count=len(trimmed))
    ok = np.zeros(len(trimmed), dtype=bool)
    for length, layout in _LAYOUTS.items():
        of_length = np.flatnonzero(lengths == length)
        for start in range(0, len(of_length), _CHUNK):
            rows = of_length[start : start + _CHUNK]
            matrix = _bytes(trimmed[rows], length)
            ok[rows], spelled = _parse(matrix, *layout)
            # Only the bare 8-4-4-4-12 spelling can be canonical as it is: when no digit is upper case.
            new = ok[rows] & ~(matrix == spelled).all(axis=1) if length == 36 else ok[rows]
            trimmed[rows[new]] = spelled[new].astype(np.uint32).view("<U36").ravel().tolist()
    return ok, trimmed


def _each(func: Callable[[Any], object], values: _Objects) -> _Objects:
    """``func(value)`` for each value, looped in C by ``np.frompyfunc``."""
    ufunc: Any = np.frompyfunc(func, 1, 1)
    result: _Objects = np.asarray(ufunc(values), dtype=object)
    return result


def _bytes(strings: _Objects, length: int) -> _Bytes:
    """A (rows, length) matrix with one byte per character; anything beyond ASCII becomes ``?``."""
    joined = "".join(strings)
    if joined.isascii():
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, length)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return np.where(points < 128, points, ord("?")).astype(np.uint8).reshape(-1, length)


def _parse(matrix: _Bytes, prefix: _Affix, core_length: int, suffix: _Affix) -> tuple[_Bools, _Bytes]:
    """Which rows are ``prefix + UUID core + suffix`` (letters in any case), and each row's canonical bytes."""
    (prefix_bytes, prefix_case), (suffix_bytes, suffix_case) = prefix, suffix
    start, end = len(prefix_bytes), len(prefix_bytes) + core_length
    core = matrix[:, start:end]
    lowered = core | _CASE_BIT
    # Unsigned subtraction wraps below "0" and "a", so one comparison bounds each range.
    good = ((core - np.uint8(ord("0"))) <= 9) | ((lowered - np.uint8(ord("a"))) <= 5)
    if core_length == 36:
        good[:, _HYPHEN_COLUMNS] = core[:, _HYPHEN_COLUMNS] == ord("-")
        spelled = lowered
    else:
        spelled = np.full((len(matrix), 36), ord("-"), dtype=np.uint8)
        spelled[:, _DIGIT_COLUMNS] = lowered
    ok: _Bools = np.all(good, axis=1)
    ok &= ((matrix[:, :start] | prefix_case) == prefix_bytes).all(axis=1)
    ok &= ((matrix[:, end:] | suffix_case) == suffix_bytes).all(axis=1)
    return ok, spelled

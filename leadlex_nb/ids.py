"""Normalise, validate and de-duplicate contact IDs, vectorised.

A malformed UUID may make the API refuse a whole batch of 500, so every value is checked here,
before anything is sent, and each row keeps its own reason for being left out.

Accepted (after trimming whitespace, any letter case): ``8-4-4-4-12`` hex, 32 hex digits without
hyphens, either one in ``{braces}``, and any of those behind a ``urn:uuid:`` prefix. Everything else,
including non-string values, is invalid. Valid IDs come out in the canonical lower-case hyphenated
form, so one contact is never sent twice under two spellings.

Why no regex: ``Series.str`` with a regex calls Python once per row and step (about 4 s per million
IDs). Here the strings of each accepted length are joined, encoded to one byte per character and
checked as one ``uint8`` matrix, so the per-row work runs inside numpy:

* Per row, only ``type`` and ``len`` are called (C callables, looped in C) before the join.
  ``str.strip`` runs only for strings that fail as they are: no accepted spelling starts or ends
  with whitespace.
* A string that is already canonical stays as it is (same object); new strings are made only for
  the other spellings.
* Duplicates are found on a 64-bit hash of the canonical bytes, not by hashing Python strings; each
  duplicate the hash finds is confirmed against the string it repeats.
* Reasons are built only for invalid rows, once per distinct value where the type allows.

About 0.3 s per million mostly-canonical IDs on 2 shared cores.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from itertools import compress
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "ID_COLUMNS",
    "UUID_PATTERN",
    "normalise_ids",
    "unique_valid_ids",
]

UUID_PATTERN: Final[str] = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""What every valid ``contact_id`` matches: the canonical lower-case hyphenated UUID."""

ID_COLUMNS: Final[tuple[str, ...]] = ("contact_id", "valid", "invalid_reason", "duplicate")

MISSING_VALUE: Final[str] = "missing value"
EMPTY_STRING: Final[str] = "empty string"

_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.intp]
_Bytes = npt.NDArray[np.uint8]
_Words = npt.NDArray[np.uint64]
_Objects = npt.NDArray[np.object_]

_CHUNK: Final = 1 << 16  # rows per byte matrix: a few MB, so the temporaries stay in cache
_HYPHEN: Final = ord("-")
_IS_HYPHEN: Final = np.isin(np.arange(36), (8, 13, 18, 23))
_HYPHEN_COLUMNS: Final = np.flatnonzero(_IS_HYPHEN)
_DIGIT_COLUMNS: Final = np.flatnonzero(~_IS_HYPHEN)  # where the 32 hex digits sit in 8-4-4-4-12
_CASE_BITS: Final = np.uint32(0x20202020)  # bit 0x20 of four bytes: set in 0-9, a-f and "-"
_ALL_TRUE: Final = np.uint32(0x01010101)  # four bytes of True
_KEY_MULTIPLIERS: Final = tuple(
    np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5)
)
_MIX: Final = np.uint64(0xBF58476D1CE4E5B9)


def _prefix(text: str) -> tuple[_Bytes, _Bytes]:
    """The bytes of a prefix or suffix, and what to OR into the input first: 0x20 on letters only."""
    encoded = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    fold = np.array([0x20 if c.isalpha() else 0 for c in text], dtype=np.uint8)
    return encoded, fold


# Trimmed length -> (prefix, its case fold, core length, suffix); every accepted spelling has its
# own length.
_LAYOUTS: Final[dict[int, tuple[_Bytes, _Bytes, int, _Bytes]]] = {
    len(urn) + len(opening) + core + len(closing): (*_prefix(urn + opening), core, _prefix(closing)[0])
    for urn in ("", "urn:uuid:")
    for opening, closing in (("", ""), ("{", "}"))
    for core in (32, 36)
}
_LONGEST: Final = max(_LAYOUTS)

_EMPTY_CODE: Final = 1
_NOT_UUID_CODE: Final = 2
_NOT_STR_CODE: Final = 3

# Equal values of these exact types always have the same repr, so their reason is built once per
# distinct value (1 == 1.0 == True and 0.0 == -0.0, so numbers of different types never share one).
_REPR_BY_VALUE: Final = (str, int, bool, bytes)

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
    if not isinstance(values, pd.Series):
        raise TypeError(f"normalise_ids expects a pandas Series, not {type(values).__name__}")
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _normalise_categorical(values)

    raw: _Objects = values.to_numpy(dtype=object)
    n = len(raw)
    contact_id = raw.copy()  # each valid string is replaced by its canonical ID, in place
    missing = np.zeros(n, dtype=bool)
    not_str = subclassed = np.zeros(0, dtype=np.intp)
    # A sample first, to skip the pass over every row when other values are mixed in.
    if set(map(type, raw[:: max(1, n // 1024)])) <= {str} and set(map(type, raw)) <= {str}:
        is_str = None  # every row: the usual case
    else:
        # A pandas string dtype may hold numpy.str_ too, so every dtype gets the same checks.
        is_str = np.asarray(_each(type, raw) == str, dtype=bool)
        others = np.flatnonzero(~is_str)
        missing[others] = np.asarray(pd.isna(raw[others]), dtype=bool)
        maybe = others[~missing[others]]
        subclassed = maybe[np.asarray(_each(isinstance, raw[maybe], str), dtype=bool)]
        not_str = np.setdiff1d(maybe, subclassed, assume_unique=True)
        # A subclass of str (numpy.str_, say) is checked as a plain str.
        is_str[subclassed] = True
        contact_id[subclassed] = _each(str.__str__, raw[subclassed])

    codes, keys = _canonicalise(contact_id, is_str)
    valid = codes == 0
    refused = subclassed[~valid[subclassed]]
    contact_id[refused] = raw[refused]  # the raw value itself, not its plain str copy

    reason = np.full(n, None, dtype=object)
    reason[missing] = MISSING_VALUE
    reason[codes == _EMPTY_CODE] = EMPTY_STRING
    not_uuid = np.flatnonzero(codes == _NOT_UUID_CODE)
    reason[not_uuid] = _messages("not a UUID", raw[not_uuid], None if subclassed.size else str)
    reason[not_str] = _messages("not a string", raw[not_str])

    if valid.all():
        duplicate = _duplicated(keys, contact_id, None)
    else:
        duplicate = np.zeros(n, dtype=bool)
        valid_rows = np.flatnonzero(valid)
        duplicate[valid_rows] = _duplicated(keys[valid_rows], contact_id, valid_rows)
    return _frame(values.index, contact_id, valid, reason, duplicate)


def unique_valid_ids(frame: pd.DataFrame) -> list[str]:
    """The IDs to send: valid, first occurrences only, in input order."""
    keep = frame["valid"].to_numpy(dtype=bool) & ~frame["duplicate"].to_numpy(dtype=bool)
    ids: list[str] = frame["contact_id"].to_numpy(dtype=object)[keep].tolist()
    return ids


def _normalise_categorical(values: pd.Series) -> pd.DataFrame:
    """Check each category once, then spread the answers to the rows by code."""
    categories = pd.Series(values.cat.categories.to_numpy(dtype=object), dtype=object)
    per_category = normalise_ids(categories)
    codes = values.cat.codes.to_numpy()
    present = codes >= 0
    n = len(codes)

    contact_id = values.to_numpy(dtype=object)  # raw values; NaN where the code is -1
    valid = np.zeros(n, dtype=bool)
    reason = np.full(n, None, dtype=object)
    reason[~present] = MISSING_VALUE
    taken = codes[present]
    valid[present] = per_category["valid"].to_numpy(dtype=bool)[taken]
    reason[present] = per_category["invalid_reason"].to_numpy(dtype=object)[taken]
    contact_id[valid] = per_category["contact_id"].to_numpy(dtype=object)[codes[valid]]

    # Two categories can spell one ID ("ABC…" and "abc…"), so de-duplicate on the canonical form.
    duplicate = np.zeros(n, dtype=bool)
    duplicate[valid] = pd.Series(contact_id[valid], dtype=object).duplicated(keep="first").to_numpy()
    return _frame(values.index, contact_id, valid, reason, duplicate)


def _frame(
    index: pd.Index, contact_id: _Objects, valid: _Bools, reason: _Objects, duplicate: _Bools
) -> pd.DataFrame:
    # Explicit object Series: pandas 3 would otherwise infer its string dtype and turn None into NaN.
    return pd.DataFrame(
        {
            "contact_id": pd.Series(contact_id, index=index, dtype=object, copy=False),
            "valid": pd.Series(valid, index=index, dtype=bool, copy=False),
            "invalid_reason": pd.Series(reason, index=index, dtype=object, copy=False),
            "duplicate": pd.Series(duplicate, index=index, dtype=bool, copy=False),
        },
        index=index,
    )


def _messages(prefix: str, raw: _Objects, only_type: type | None = None) -> _Objects:
    """``"prefix: <shortened repr>"`` per value; one repr per distinct value where that is safe.

    ``only_type`` says every value has exactly that type (so no per-row ``type`` call is needed).
    """
    out: _Objects = np.empty(len(raw), dtype=object)
    if not len(raw):
        return out
    if only_type is not None:
        groups = [(only_type, slice(None))]
    else:
        types = list(map(type, raw))
        kinds = {kind: number for number, kind in enumerate(dict.fromkeys(types))}
        numbers = np.fromiter(map(kinds.__getitem__, types), dtype=np.intp, count=len(types))
        groups = [(kind, numbers == number if len(kinds) > 1 else slice(None)) for kind, number in kinds.items()]
    for kind, rows in groups:
        values = raw[rows]
        if kind in _REPR_BY_VALUE:
            codes, uniques = pd.factorize(values)
            shown = np.array([f"{prefix}: {_shown.repr(value)}" for value in uniques], dtype=object)
            out[rows] = shown[codes]
        else:
            out[rows] = [f"{prefix}: {_shown.repr(value)}" for value in values]
    return out


def _canonicalise(values: _Objects, is_str: _Bools | None) -> tuple[npt.NDArray[np.int8], _Words]:
    """Replace each valid string, in place, by its canonical ID; leave the other values as they are.

    ``is_str`` says which values are strings (``None``: all). Returns a code per value (0 valid,
    1 empty string, 2 not a UUID, 3 not a string) and, where valid, a hash of the canonical ID
    (see :func:`_duplicated`).
    """
    n = len(values)
    codes = np.full(n, _NOT_UUID_CODE, dtype=np.int8)
    keys: _Words = np.zeros(n, dtype=np.uint64)
    if is_str is None:
        lengths: _Ints = np.fromiter(map(len, values), dtype=np.intp, count=n)
    else:
        codes[~is_str] = _NOT_STR_CODE
        lengths = np.full(n, -1, dtype=np.intp)  # no layout has this length
        count = int(is_str.sum())
        lengths[is_str] = np.fromiter(map(len, compress(values, is_str.tolist())), dtype=np.intp, count=count)
    if n == 0:
        return codes, keys
    ok = np.zeros(n, dtype=bool)
    _check(values, lengths, None, ok, keys, values)

    # No accepted spelling starts or ends with whitespace, so only what failed is stripped.
    failed = np.flatnonzero(~ok & (lengths >= 0))
    if failed.size:
        trimmed = _each(str.strip, values[failed])
        trimmed_lengths = np.fromiter(map(len, trimmed), dtype=np.intp, count=failed.size)
        codes[failed[trimmed_lengths == 0]] = _EMPTY_CODE
        shorter = (trimmed_lengths < lengths[failed]) & (trimmed_lengths > 0)
        _check(trimmed[shorter], trimmed_lengths[shorter], failed[shorter], ok, keys, values)
    codes[ok] = 0
    return codes, keys


def _check(
    strings: _Objects, lengths: _Ints, rows: _Ints | None, ok: _Bools, keys: _Words, canon: _Objects
) -> None:
    """Check ``strings``, which are at ``rows`` (``None``: all, in order) of the outputs.

    Sets ``ok`` and ``keys`` there, and ``canon`` where valid (it may be ``strings`` itself when
    ``rows`` is ``None``: a string that is already canonical stays).
    """
    counts = np.bincount(np.clip(lengths, 0, _LONGEST + 1), minlength=_LONGEST + 2)
    for length, layout in _LAYOUTS.items():
        if not counts[length]:
            continue
        at = np.flatnonzero(lengths == length) if counts[length] < len(strings) else None
        total = len(strings) if at is None else at.size
        for start in range(0, total, _CHUNK):
            part = np.arange(start, min(start + _CHUNK, total)) if at is None else at[start : start + _CHUNK]
            chunk = strings[start : start + _CHUNK] if at is None else strings[part]
            where = part if rows is None else rows[part]
            chunk_ok, fresh, spelled = _parse(_bytes(chunk, length), *layout)
            ok[where] = chunk_ok
            keys[where] = _hash(spelled)
            if rows is not None:  # a trimmed string that is canonical is the ID itself
                kept = chunk_ok & ~fresh
                canon[where[kept]] = chunk[kept]
            if fresh.any():
                canon[where[fresh]] = spelled[fresh].astype(np.uint32).view("<U36").ravel().tolist()


def _each(func: Callable[..., object], values: _Objects, *args: object) -> _Objects:
    """``func(value, *args)`` for each value, looped in C by ``np.frompyfunc`` (for C callables)."""
    ufunc: Any = np.frompyfunc(func, 1 + len(args), 1)
    result: _Objects = np.asarray(ufunc(values, *args), dtype=object)
    return result


def _bytes(strings: _Objects, length: int) -> _Bytes:
    """A (rows, length) matrix with one byte per character; anything beyond ASCII becomes ``?``."""
    joined = "".join(strings)
    if joined.isascii():
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, length)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return np.where(points < 128, points, ord("?")).astype(np.uint8).reshape(-1, length)


def _parse(
    matrix: _Bytes, prefix: _Bytes, fold: _Bytes, core_length: int, suffix: _Bytes
) -> tuple[_Bools, _Bools, _Bytes]:
    """Check rows against one layout: ``prefix + UUID core + suffix``, the prefix in any case.

    Returns which rows match, which of those are not spelled canonically (so need a new string),
    and every row's canonical bytes (meaningful where it matches).
    """
    width = matrix.shape[1]
    start = len(prefix)
    core = matrix[:, start : start + core_length]
    # c | 0x20 lower-cases A-F and leaves digits and "-" alone; the digit test excludes controls.
    lowered: _Bytes = core | np.uint8(0x20)
    good = ((core - np.uint8(48)) <= 9) | ((lowered - np.uint8(97)) <= 5)  # wraps below 48/97
    if core_length == 36:
        good[:, _HYPHEN_COLUMNS] = core[:, _HYPHEN_COLUMNS] == _HYPHEN
        spelled = lowered
    else:
        spelled = np.full((len(matrix), 36), _HYPHEN, dtype=np.uint8)
        spelled[:, _DIGIT_COLUMNS] = lowered
    flags = good.view(np.uint8)
    if width == 36:  # nothing but the core: canonical unless a digit is upper case (0x20 clear)
        flags = flags | (core & np.uint8(0x20))
    # Each row's words ANDed: bit 0 of each byte says "all good", bit 5 "all lower case".
    words = flags.view(np.uint32)
    every = words[:, 0].copy()
    for column in range(1, words.shape[1]):
        every &= words[:, column]
    ok: _Bools = (every & _ALL_TRUE) == _ALL_TRUE
    if start:
        ok &= ((matrix[:, :start] | fold) == prefix).all(axis=1)
    if len(suffix):
        ok &= (matrix[:, width - len(suffix) :] == suffix).all(axis=1)
    fresh = ok & ((every & _CASE_BITS) != _CASE_BITS) if width == 36 else ok
    return ok, fresh, spelled


def _duplicated(keys: _Words, ids: _Objects, rows: _Ints | None) -> _Bools:
    """Second and later occurrences, in order, of the IDs hashed to ``keys``.

    ``ids`` at ``rows`` (``None``: all) are the canonical IDs. The hashes are numbered by first
    appearance, so a row is a first occurrence exactly when its number exceeds every number before
    it; each later occurrence is then confirmed against the ID of the first. After a collision
    (two IDs, one hash) the IDs decide instead.
    """
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    numbers = pd.factorize(keys)[0]
    seen: _Bools = np.empty(len(numbers), dtype=bool)
    seen[0] = False
    seen[1:] = numbers[1:] <= np.maximum.accumulate(numbers[:-1])
    if not seen.any():
        return seen
    first = np.flatnonzero(~seen)[numbers[seen]]
    later = np.flatnonzero(seen)
    if rows is not None:
        first, later = rows[first], rows[later]
    if (ids[later] == ids[first]).all():
        return seen
    exact: _Bools = pd.Series(ids if rows is None else ids[rows], dtype=object).duplicated().to_numpy()
    return exact


def _hash(spelled: _Bytes) -> _Words:
    """One ``uint64`` per row of 36 bytes: a multiply-add of its words, then a bit mix."""
    words = spelled[:, :32].view(np.uint64)
    key = spelled[:, 32:].view(np.uint32)[:, 0].astype(np.uint64)
    for column, multiplier in enumerate(_KEY_MULTIPLIERS):
        key += words[:, column] * multiplier
    key ^= key >> np.uint64(29)
    key *= _MIX
    key ^= key >> np.uint64(32)
    return key

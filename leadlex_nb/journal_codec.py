"""The journal's encodings: a run's input as a few blobs, a batch's IDs as positions, the index as JSON.

A million IDs as one row each cost the journal hundreds of bytes and about a CPU second per ID
million; here a valid ID is its 16 UUID bytes, stored once, and a batch or a group of outcomes
names its IDs by their rank among the input's unique valid IDs: the differences between
consecutive ranks (little-endian ``int32``), zlib-compressed, since a batch is mostly a run of
consecutive ranks and then costs a few bytes in all.
Everything is data: bytes, bits and JSON, never pickle.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from leadlex_nb.results import Outcome

# What tampered or damaged rows raise when read back, besides sqlite3.Error.
BAD_CONTENT: Final[tuple[type[Exception], ...]] = (ValueError, TypeError, KeyError, IndexError, OverflowError,
                                                     zlib.error)

_STEP: Final = np.dtype("<i4")
_MAX_RANKS: Final = 1 << 31
_HYPHEN: Final = ord("-")
_DIGIT_COLUMNS: Final = [c for c in range(36) if c not in (8, 13, 18, 23)]


@dataclass(frozen=True)
class StoredInputs:
    """The columns of a normalised input, packed: see :func:`pack_inputs`."""

    rows: int
    valid_bits: bytes
    duplicate_bits: bytes
    uuids: bytes  # 16 bytes per valid row, in row order
    invalid: str  # JSON: [text or null, reason] per invalid row, in row order


def pack_inputs(ids: pd.DataFrame) -> StoredInputs:
    valid = ids["valid"].to_numpy(dtype=bool)
    contact_id = ids["contact_id"].to_numpy(dtype=object)
    reasons = ids["invalid_reason"].to_numpy(dtype=object)
    # Valid IDs are canonical (lower-case, hyphenated): one join and one fromhex for all of them.
    uuids = bytes.fromhex("".join(contact_id[valid].tolist()).replace("-", ""))
    invalid = [[_to_text(value), _to_text(reason)] for value, reason in
               zip(contact_id[~valid].tolist(), reasons[~valid].tolist(), strict=True)]
    return StoredInputs(len(ids), np.packbits(valid).tobytes(),
                        np.packbits(ids["duplicate"].to_numpy(dtype=bool)).tobytes(), uuids, json.dumps(invalid))


def unpack_inputs(stored: StoredInputs, index: pd.Index) -> pd.DataFrame:
    """The frame :func:`pack_inputs` was given (object columns, ``None`` where empty)."""
    valid = _bits(stored.valid_bits, stored.rows)
    duplicate = _bits(stored.duplicate_bits, stored.rows)
    count = int(valid.sum())
    if len(stored.uuids) != 16 * count:
        raise ValueError(f"it holds {len(stored.uuids)} bytes of IDs for {count} valid rows")
    invalid = json.loads(stored.invalid)
    if len(invalid) != stored.rows - count or len(index) != stored.rows:
        raise ValueError(f"its {stored.rows} input rows do not match {len(invalid)} invalid ones or the index")
    contact_id = np.empty(stored.rows, dtype=object)
    reason = np.full(stored.rows, None, dtype=object)
    contact_id[valid] = uuid_texts(stored.uuids)
    contact_id[~valid] = _objects(_checked_text(text) for text, _ in invalid)
    reason[~valid] = _objects(_checked_text(why) for _, why in invalid)
    return pd.DataFrame({"contact_id": pd.Series(contact_id, dtype=object), "valid": valid,
                         "invalid_reason": pd.Series(reason, dtype=object), "duplicate": duplicate}).set_axis(index)


def uuid_texts(packed: bytes) -> list[str]:
    """Canonical UUID texts of 16-byte UUIDs, built as one byte matrix."""
    count = len(packed) // 16
    digits = np.frombuffer(packed.hex().encode("ascii"), dtype=np.uint8).reshape(count, 32)
    matrix = np.full((count, 36), _HYPHEN, dtype=np.uint8)
    matrix[:, _DIGIT_COLUMNS] = digits
    text = matrix.tobytes().decode("ascii")
    return [text[start : start + 36] for start in range(0, 36 * count, 36)]


class UniqueIds:
    """A run's unique valid IDs in first-occurrence order: the ranks that batches and outcomes store."""

    def __init__(self, inputs: pd.DataFrame) -> None:
        keep = inputs["valid"].to_numpy(dtype=bool) & ~inputs["duplicate"].to_numpy(dtype=bool)
        self.texts: npt.NDArray[np.object_] = inputs["contact_id"].to_numpy(dtype=object)[keep]
        if len(self.texts) >= _MAX_RANKS:
            raise ValueError(f"a run's input holds at most {_MAX_RANKS - 1} unique IDs")
        self._rank: dict[str, int] | None = None  # built on the first write: a resume may only read

    def ranks_of(self, ids: Sequence[str], *, start_hint: int | None = None) -> bytes:
        """``ids`` as stored ranks. When they are the unique IDs from ``start_hint`` on, in order (a
        dry-run batch is a slice of them), one list comparison in C proves it: no lookup per ID."""
        if start_hint is not None and start_hint >= 0 and start_hint + len(ids) <= len(self.texts) \
                and self.texts[start_hint : start_hint + len(ids)].tolist() == list(ids):
            ranks = np.arange(start_hint, start_hint + len(ids), dtype=np.int64)
        else:
            if self._rank is None:
                self._rank = dict(zip(self.texts.tolist(), range(len(self.texts)), strict=True))
            try:
                ranks = np.fromiter(map(self._rank.__getitem__, ids), dtype=np.int64, count=len(ids))
            except KeyError:
                raise ValueError("a batch holds an ID that is not in its run's input") from None
        return zlib.compress(np.diff(ranks, prepend=0).astype(_STEP).tobytes())

    def ids_at(self, packed: bytes) -> list[str]:
        ranks = np.cumsum(np.frombuffer(zlib.decompress(packed), dtype=_STEP), dtype=np.int64)
        if len(ranks) and (int(ranks.min()) < 0 or int(ranks.max()) >= len(self.texts)):
            raise ValueError("a stored rank lies outside the run's input")
        ids: list[str] = self.texts[ranks].tolist()
        return ids


def grouped(outcomes: Mapping[str, Outcome]) -> dict[Outcome, list[str]]:
    """The IDs per distinct outcome: a batch's answer usually gives all of them one shared object,
    so they are grouped by identity in numpy first, then the few distinct objects by equality."""
    if not outcomes:
        return {}
    values = list(outcomes.values())
    if values.count(values[0]) == len(values):  # identity first, in C: the usual one shared outcome
        return {values[0]: list(outcomes)}
    identity = np.fromiter(map(id, values), dtype=np.int64, count=len(values))
    keys = np.array(list(outcomes), dtype=object)
    _, first, which = np.unique(identity, return_index=True, return_inverse=True)
    groups: dict[Outcome, list[str]] = {}
    for group, at in enumerate(first.tolist()):
        groups.setdefault(values[at], []).extend(keys[which == group].tolist())
    return groups


def outcome_json(outcome: Outcome) -> str:
    return json.dumps([outcome.status, outcome.error_code, outcome.error_message, outcome.batch,
                       outcome.attempts, outcome.request_id])


def outcome_from_json(text: str) -> Outcome:
    status, code, message, batch, attempts, request_id = json.loads(text)
    for value in (code, message, request_id):
        _checked_text(value)
    return Outcome(status, code, message, batch, attempts, request_id)


def _bits(packed: bytes, rows: int) -> npt.NDArray[np.bool_]:
    if len(packed) != (rows + 7) // 8:
        raise ValueError(f"it holds {len(packed)} bytes of flags for {rows} rows")
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=rows).astype(bool)


def _objects(values: Iterable[Any]) -> npt.NDArray[np.object_]:
    items = list(values)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _checked_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected text or null, found {type(value).__name__}")
    return value


def _to_text(value: Any) -> str | None:
    # Every missing value (None, NaN, NaT, pd.NA) is stored as NULL, so a resumed run shows <NA> too.
    if value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value))):
        return None
    return str(value)


# -- the input's index, as data ------------------------------------------------------------------
# {"kind": "range", "range": [start, stop, step], "names": [name]} or {"kind": "index" | "multi",
# "names": [...], "levels": [...]}; a level is {"type": "number" | "str", "dtype": ..., "values": [...]}
# (null for a missing value) or {"type": "datetime", "unit": ..., "tz": ..., "freq": ..., "values": [int since epoch]}.


def encode_index(index: pd.Index) -> str | None:
    """The index as JSON, checked to decode to the same index; None when it cannot be stored faithfully."""
    try:
        if isinstance(index, pd.RangeIndex):
            data: dict[str, Any] = {"kind": "range", "range": [index.start, index.stop, index.step]}
        else:
            data = {"kind": "multi" if isinstance(index, pd.MultiIndex) else "index",
                    "levels": [_encode_level(index.get_level_values(i)) for i in range(index.nlevels)]}
        encoded = json.dumps({**data, "names": list(index.names)})
        restored = decode_index(encoded)
    except BAD_CONTENT:
        return None
    same = (type(restored) is type(index) and restored.equals(index) and list(restored.names) == list(index.names)
            and all(restored.get_level_values(i).dtype == index.get_level_values(i).dtype
                    for i in range(index.nlevels)))
    return encoded if same else None


def _encode_level(level: pd.Index) -> dict[str, Any]:
    if isinstance(level, pd.DatetimeIndex):  # exact integers in the index's unit; NaT is numpy's NaT integer
        tz = None if level.tz is None else str(level.tz)
        return {"type": "datetime", "unit": level.unit, "tz": tz, "freq": level.freqstr, "values": level.asi8.tolist()}
    values = [None if missing else v for v, missing in zip(level.tolist(), level.isna().tolist(), strict=True)]
    if level.dtype.kind in "iufb":
        return {"type": "number", "dtype": str(level.dtype), "values": values}
    if all(v is None or isinstance(v, str) for v in values):
        return {"type": "str", "dtype": str(level.dtype), "values": values}
    raise TypeError(f"an index of {level.dtype} values is not stored")  # positions are, instead


def decode_index(encoded: str) -> pd.Index:
    data = json.loads(encoded)
    if data["kind"] == "range":
        start, stop, step = (int(n) for n in data["range"])
        return pd.RangeIndex(start, stop, step, name=data["names"][0])
    levels = [_decode_level(level) for level in data["levels"]]
    if data["kind"] == "multi":
        return pd.MultiIndex.from_arrays(levels, names=data["names"])
    (level,) = levels
    return level.rename(data["names"][0])


def _decode_level(data: Mapping[str, Any]) -> pd.Index:
    values = data["values"]
    if data["type"] == "datetime":
        stamps = pd.DatetimeIndex(np.array(values, dtype=np.int64).view(f"M8[{data['unit']}]"))
        stamps = stamps if data["tz"] is None else stamps.tz_localize("UTC").tz_convert(data["tz"])
        return pd.DatetimeIndex(stamps, freq=data["freq"])  # a freq the stamps do not follow is refused
    # Plain data dtypes only, whatever a tampered journal names.
    dtype = pd.api.types.pandas_dtype(data["dtype"])
    number = data["type"] == "number" and dtype.kind in "iufb" and not isinstance(dtype, pd.CategoricalDtype)
    text = data["type"] == "str" and (dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype))
    if not (number or text):
        raise ValueError(f"an index level of {data['type']} {dtype} is not accepted")
    level: pd.Index = pd.Index(values, dtype=dtype)
    return level

"""Generated bad input: ID columns of every dtype a frame can hold, under awkward indexes.

Each example is a Series plus, per row, what a correct normalisation makes of it (the canonical
ID or None), computed by a slow reference independent of ``leadlex_nb.ids``.
"""

from __future__ import annotations

import importlib.util
import re
import string
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
POOL = [str(uuid.UUID(int=(i + 1) * 0x1234_5678_9ABC_DEF0_1357)) for i in range(6)]  # repeats are likely

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_SPELLED = re.compile(
    r"(?:urn:uuid:)?(\{)?([0-9a-f]{8}(-?)[0-9a-f]{4}\3[0-9a-f]{4}\3[0-9a-f]{4}\3[0-9a-f]{12})(?(1)\})", re.ASCII)


def reference(value: object) -> str | None:
    """The canonical ID a value stands for, or None when it is not a contact ID."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    match = _SPELLED.fullmatch(value.strip().translate(_LOWER))
    return None if match is None else str(uuid.UUID(match.group(2)))


@st.composite
def spellings(draw: st.DrawFn) -> str:
    core = draw(st.sampled_from(POOL))
    if draw(st.booleans()):
        core = core.replace("-", "")
    if draw(st.booleans()):
        core = core.upper()
    if draw(st.booleans()):
        core = "{" + core + "}"
    if draw(st.booleans()):
        core = "urn:uuid:" + core
    return draw(st.sampled_from(["", " ", "\t", "\u3000"])) + core + draw(st.sampled_from(["", " ", "\n"]))


texts = st.one_of(spellings(), st.text(max_size=40), st.sampled_from(["", "  ", "nan", "None", "<NA>", "\ud800"]))
scalars = st.one_of(
    texts,
    st.sampled_from(POOL).map(uuid.UUID),
    st.sampled_from(POOL).map(str.encode),  # bytes of a valid ID are still not a string
    st.binary(max_size=20),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.sampled_from([None, np.nan, pd.NA, pd.NaT, np.float32("nan"), np.str_(POOL[0]), np.int64(7)]),
    st.decimals(allow_nan=True),
)
unhashable = st.one_of(st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


ARROW_DTYPES = ("string[pyarrow]", "arrow")
DTYPES = ("object", "object+unhashable", "category", "string", "Int64", "float64", "bool", "bytes",
          *(ARROW_DTYPES if HAS_PYARROW else ()))


@dataclass
class Column:
    values: pd.Series
    dtype: str

    def expected(self) -> list[str | None]:
        return [reference(v) for v in self.values.to_numpy(dtype=object)]


def _index(draw: st.DrawFn, n: int) -> pd.Index:
    kind = draw(st.sampled_from(["range", "repeated", "multi", "text", "dates", "shuffled"]))
    if kind == "range":
        return pd.RangeIndex(n)
    if kind == "repeated":
        return pd.Index([draw(st.integers(0, 2)) for _ in range(n)])
    if kind == "multi":
        level0 = [draw(st.sampled_from(["a", "b"])) for _ in range(n)]
        level1 = [draw(st.sampled_from([0, 1, 2.5])) for _ in range(n)]
        return pd.MultiIndex.from_arrays([level0, level1], names=["team", None])
    if kind == "text":
        return pd.Index([draw(st.sampled_from(["x", "y", None, "z"])) for _ in range(n)], dtype=object)
    if kind == "dates":
        return pd.date_range("2024-01-01", periods=n, freq="h")
    return pd.Index(draw(st.permutations(list(range(n)))))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def columns(draw: st.DrawFn, max_size: int = 25) -> Column:
    """A Series of a drawn dtype, its values drawn to suit it, under a drawn index."""
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(0, max_size))
    index = _index(draw, n)
    if dtype in ("object", "object+unhashable"):
        pool = st.one_of(scalars, unhashable) if dtype == "object+unhashable" else scalars
        values = pd.Series([draw(pool) for _ in range(n)], index=index, dtype=object)
    elif dtype == "category":
        # Categories of text become UTF-8 arrow strings where pandas infers them (pyarrow installed).
        hashable = st.one_of(texts.filter(_encodable), st.sampled_from(POOL).map(uuid.UUID), st.integers(-3, 3),
                             st.none())
        values = pd.Series([draw(hashable) for _ in range(n)], index=index, dtype="category")
    elif dtype in ("string", "string[pyarrow]", "arrow"):
        # Arrow strings are UTF-8: a lone surrogate cannot be stored in one at all.
        drawn = [draw(st.one_of(texts.filter(_encodable), st.none())) for _ in range(n)]
        spelled: Any = {"string": "string", "string[pyarrow]": "string[pyarrow]"}.get(dtype)
        if dtype == "arrow":
            import pyarrow as pa

            spelled = pd.ArrowDtype(pa.string())
        values = pd.Series(drawn, index=index, dtype=spelled)
    elif dtype == "Int64":
        values = pd.Series([draw(st.one_of(st.integers(-10, 10), st.none())) for _ in range(n)], index=index,
                           dtype="Int64")
    elif dtype == "float64":
        values = pd.Series([draw(st.floats()) for _ in range(n)], index=index, dtype="float64")
    elif dtype == "bool":
        values = pd.Series([draw(st.booleans()) for _ in range(n)], index=index, dtype=bool)
    else:
        values = pd.Series([draw(st.sampled_from(POOL)).encode() for _ in range(n)], index=index, dtype=object)
    return Column(values, dtype)

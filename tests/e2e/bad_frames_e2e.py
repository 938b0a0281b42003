"""Frames of mixed good and bad IDs for end-to-end dry runs, with the status each row must get."""

from __future__ import annotations

import decimal
import random
import uuid
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st


class mixed_frames:
    seeds = st.integers(0, 2**32 - 1)

    @staticmethod
    def build(rng: random.Random, existing: list[str]) -> tuple[pd.Series, list[str]]:
        """A Series of a random dtype and index, and the dry-run status each of its rows must get."""
        n = rng.randint(0, 30)
        junk: list[Any] = [None, np.nan, pd.NA, "", " ", "nope", b"x", 42, 4.2, True, decimal.Decimal("sNaN"),
                           existing[0].encode(), [existing[0]], uuid.UUID(int=0).hex[:31]]
        values: list[Any] = []
        expected: list[str] = []
        for _ in range(n):
            roll = rng.random()
            if roll < 0.4:
                cid = rng.choice(existing)
                values.append(rng.choice([cid, cid.upper(), "{" + cid + "}", "urn:uuid:" + cid.replace("-", ""),
                                          uuid.UUID(cid), f"  {cid}\t"]))
                expected.append("would_delete")
            elif roll < 0.6:
                values.append(str(uuid.UUID(int=rng.getrandbits(128))))
                expected.append("not_found")
            else:
                values.append(rng.choice(junk))
                expected.append("invalid")
        dtype = rng.choice(["object", "category", "string"])
        if dtype == "category" and all(_hashable(v) for v in values):
            series = pd.Series(values, dtype="category")
        elif dtype == "string" and all(isinstance(v, str) or v is None for v in values):
            series = pd.Series(values, dtype="string")
        else:
            series = pd.Series(values, dtype=object)
        series.index = rng.choice([
            pd.RangeIndex(n),
            pd.Index([rng.randint(0, 2) for _ in range(n)]),
            pd.MultiIndex.from_arrays([[rng.choice("ab") for _ in range(n)], [rng.randint(0, 1) for _ in range(n)]]),
            pd.Index([rng.choice(["k", None]) for _ in range(n)], dtype=object),
        ])
        return series, expected


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return not isinstance(value, decimal.Decimal)  # a signalling NaN cannot be compared

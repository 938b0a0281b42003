"""Progress bars: tqdm.auto (a widget in notebooks, text in terminals), falling back to text."""

from __future__ import annotations

from typing import Any


def tqdm_progress(total: int, desc: str) -> Any:
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="id", leave=True)
    except Exception:  # a broken widget frontend must not stop a deletion
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(total=total, desc=desc, unit="id", leave=True)

"""Paging the export by creation date: complete, refused, out of order, and the cost estimate."""

from __future__ import annotations

import csv
import io

import pytest

from leadlex_nb.export_pages import EXPORT_PAGE, ExportPages, export_calls
from leadlex_nb.transport import Answer


def _csv(rows: list[tuple[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "created_at"])
    writer.writerows(rows)
    return buffer.getvalue().encode()


class FakeExport:
    """An export over ``rows`` (id, created_at), sorted by creation date, ``created_after`` inclusive."""

    def __init__(self, rows: list[tuple[str, str]], *, page: int = EXPORT_PAGE, shuffled: bool = False) -> None:
        self.rows, self.page, self.shuffled = sorted(rows, key=lambda r: r[1]), page, shuffled
        self.calls: list[dict[str, str | int]] = []

    async def __call__(self, params: dict[str, str | int]) -> Answer | None:
        self.calls.append(params)
        after = str(params.get("created_after", ""))
        rows = [r for r in self.rows if r[1] >= after][: self.page]
        if self.shuffled:
            rows = rows[::-1]
        return Answer(200, {}, _csv(rows))


async def _read(fetch: FakeExport, monkeypatch: pytest.MonkeyPatch, page: int) -> tuple[ExportPages, set[str]]:
    monkeypatch.setattr("leadlex_nb.export_pages.EXPORT_PAGE", page)
    pages = ExportPages(fetch, ())
    seen: set[str] = set()
    async for rows in pages:
        seen |= {r["id"] for r in rows}
    return pages, seen


async def test_pages_cover_every_row_once_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"id{i}", f"2026-01-01T00:00:{i // 3:02d}Z") for i in range(25)]  # dates shared by three rows
    fetch = FakeExport(rows, page=10)
    pages, seen = await _read(fetch, monkeypatch, 10)
    assert pages.complete and seen == {r[0] for r in rows}
    assert "created_after" not in fetch.calls[0] and pages.calls == len(fetch.calls) > 2


async def test_an_export_out_of_creation_order_is_not_paged(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"id{i}", f"2026-01-01T00:00:{i:02d}Z") for i in range(25)]
    pages, _ = await _read(FakeExport(rows, page=10, shuffled=True), monkeypatch, 10)
    assert not pages.complete and pages.calls == 1 and "creation order" in (pages.note or "")


async def test_a_refused_export_is_not_complete() -> None:
    async def refuse(_params: dict[str, str | int]) -> Answer | None:
        return None

    pages = ExportPages(refuse, ("email",))
    assert [rows async for rows in pages] == []
    assert pages.refused and not pages.complete


def test_the_estimate_counts_the_overlap_and_the_hourly_limit() -> None:
    assert [export_calls(n) for n in (0, 49_999, 50_000, 100_000, 200_000, 450_000, 500_000)] == \
        [1, 1, 2, 3, 5, 10, None]

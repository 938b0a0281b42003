"""Reading ``GET /v1/contacts/export`` past its 50,000 rows a call, by creation date.

The export has no cursor; its documented way to page is ``created_after`` / ``created_before``.
Each page asks for the rows created at or after the last creation date of the page before; the
overlap (rows sharing that date) is de-duplicated by the caller's use of IDs. The docs leave the
export's order and the bounds' inclusiveness open, so a page out of creation order, or a page that
would not move past its start, ends the paging as incomplete rather than risk a gap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

from leadlex_nb.transport import Answer

EXPORT_PATH: Final = "/v1/contacts/export"
EXPORT_PAGE: Final = 50_000
EXPORT_CALLS_PER_HOUR: Final = 10

# Sends one export request with these query parameters; None when it was refused or failed.
Fetch = Callable[[dict[str, str | int]], Awaitable[Answer | None]]


def export_calls(workspace_total: int) -> int | None:
    """Export calls to read a workspace of this size, counting one overlapping row per page (inclusive
    bounds) and the call that shows a full page was the last; None beyond the hour's 10."""
    calls = 1 if workspace_total < EXPORT_PAGE else (workspace_total - EXPORT_PAGE) // (EXPORT_PAGE - 1) + 2
    return calls if calls <= EXPORT_CALLS_PER_HOUR else None


class ExportPages:
    """The rows of an export, a page at a time: ``async for rows in ExportPages(fetch, fields)``.

    Afterwards ``complete`` says whether every row of the workspace was seen, ``calls`` how many
    requests were sent, and ``request_id`` names the first answer.
    """

    def __init__(self, fetch: Fetch, fields: Sequence[str]) -> None:
        self._fetch = fetch
        self._fields = ",".join(dict.fromkeys(["id", "created_at", *fields]))
        self.complete = False
        self.refused = False
        self.calls = 0
        self.request_id: str | None = None
        self.note: str | None = None  # why the paging stopped short, when it did

    async def __aiter__(self) -> AsyncIterator[list[dict[str, str]]]:
        after: str | None = None
        while self.calls < EXPORT_CALLS_PER_HOUR:
            params: dict[str, str | int] = {"fields": self._fields, "limit": EXPORT_PAGE}
            if after is not None:
                params["created_after"] = after
            self.calls += 1
            answer = await self._fetch(params)
            rows = None if answer is None else _rows(answer.body)
            if rows is None:
                self.refused = True
                return
            if self.request_id is None and answer is not None:
                self.request_id = answer.request_id
            yield rows
            if len(rows) < EXPORT_PAGE:
                self.complete = True
                return
            created = [row.get("created_at") or "" for row in rows]
            if created != sorted(created) or not created[-1] or created[-1] == after:
                self.note = "the export is not in creation order, or a date holds a whole page: it cannot be paged"
                return
            after = created[-1]
        self.note = f"the export needs more than the {EXPORT_CALLS_PER_HOUR} calls it allows an hour"


def _rows(body: bytes) -> list[dict[str, str]] | None:
    """The CSV's rows, or None when it is not an export (no ``id`` column, not UTF-8)."""
    try:
        reader = csv.DictReader(io.StringIO(body.decode("utf-8")))
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            return None
        return list(reader)
    except (UnicodeDecodeError, csv.Error):
        return None

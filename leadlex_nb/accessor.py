"""The ``.leadlex`` accessor on DataFrame and Series: a thin adapter over :mod:`leadlex_nb.api`.

It keeps no state: pandas caches accessors per object and drops them on copy or pickle. In a Jupyter
kernel, with ``confirm`` omitted and ``dry_run`` false, ``bulk_delete`` hands over to
:mod:`leadlex_nb.notebook`, which returns a deletion handle whose panel asks (a running cell cannot
receive a click); every other call returns the result frame from :mod:`leadlex_nb.api`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from leadlex_nb import api, notebook
from leadlex_nb.config import hide_key_option
from leadlex_nb.errors import ColumnNotFoundError, ConfigurationError
from leadlex_nb.notebook import DeletionRun

_DOC = """
        Parameters
        ----------
        api_key : str, optional
            Else the ``LEADLEX_API_KEY`` environment variable. Never shown anywhere.
        base_url : str, optional
            Else ``LEADLEX_BASE_URL``, else ``https://data.leadlex.com/functions/v1/api-gateway``.
            ``http://`` is refused except for loopback hosts (the local sandbox).
        dry_run : bool, default False
            Only look: run the dry run and return ``would_delete`` / ``not_found`` / ... statuses.
        confirm : omitted, False or callable
            Omitted: ask. In a Jupyter kernel, ``bulk_delete`` returns a :class:`~leadlex_nb.notebook.DeletionRun`
            once the dry run is done: its panel shows the plan with ``Delete N contacts`` and ``Cancel``
            buttons (``run.confirm()`` / ``run.cancel()`` from code; ``run.result`` / ``run.wait()`` give
            the frame). In a terminal: a typed prompt. Elsewhere (no one to answer): declines.
            False: delete the dry-run plan without asking (scripts, CI). A callable gets the
            :class:`~leadlex_nb.runner.PlanSummary` and returns (or awaits) True to go ahead.
        plan : "starter" | "pro" | "org" | int | RateLimit, optional
            The workspace plan (or requests per minute) to pace to without ever hitting 429.
            Without it the per-minute limit is learned from the first 429.
        rate_window : float, default 60
            The longest the API's unadvertised rate window may be; without a plan, the rate and
            the window are learned from 429s, and no wait after one is longer than this.
        retry : RetryPolicy, optional
            Attempts per batch, backoff and the run's retry budget (default: 8 attempts,
            0.5 s base, 30 s cap, 200 retries per run).
        batch_size : int, default 500
        concurrency : int, optional
            Requests in flight at once (default: sized from the rate limit, 4 to 32).
        timeout : float, default 30
            Seconds per request; a timed-out batch is retried with the same idempotency key.
        attribution_budget : int, default 100
            Requests the run may spend pinning down which IDs of a dry-run batch are missing.
        ignore_quota : bool, default False
            Start even when the daily quota cannot cover the run (it stops cleanly when it runs out).
        journal : path or False, optional
            Where the run journal goes (``$LEADLEX_JOURNAL``, else ``~/.local/share/leadlex-nb/journal.sqlite3``).
        snapshot : bool or "export" | "list" | "get", default True
            Before deleting, save the planned contacts' fields beside the journal (the cheapest
            read, shown in the plan), so ``leadlex_nb.restore(run_id)`` can re-create them;
            "get" reads each contact (custom fields too); False: no snapshot.
        progress : bool, default True
        verbose : bool, default True
            Print what the run decides (attribution strategy, stops) to stderr.

        Returns
        -------
        DataFrame (or, in a kernel with ``confirm`` omitted, a DeletionRun whose ``result`` is it)
            One row per input row, with the input's index: ``contact_id``, ``status``,
            ``error_code``, ``error_message``, ``batch``, ``attempts``, ``request_id``,
            ``duplicate``. ``result.attrs["leadlex"]`` holds the run id, request counts and the snapshot's path.
"""


def _series_of(frame: pd.DataFrame, column: Any) -> pd.Series:
    columns = frame.columns
    try:
        hash(column)
    except TypeError:
        raise ConfigurationError(f"name one column by its label, not a {type(column).__name__}") from None
    if isinstance(columns, pd.MultiIndex):
        return _multi_level_series(frame, column)
    if column not in columns:
        raise ColumnNotFoundError(f"column {column!r} is not in the DataFrame; {_where_instead(frame, column)}")
    values: pd.Series | pd.DataFrame = frame[column]
    if isinstance(values, pd.DataFrame):
        raise ConfigurationError(f"column {column!r} appears {values.shape[1]} times; name a unique column")
    return values


def _multi_level_series(frame: pd.DataFrame, column: Any) -> pd.Series:
    """Columns with several levels: only a full label names one column (a partial one names a group)."""
    columns = frame.columns
    full = isinstance(column, tuple) and len(column) == columns.nlevels
    if full and column in columns:
        values: pd.Series | pd.DataFrame = frame[column]
        if isinstance(values, pd.DataFrame):
            raise ConfigurationError(f"column {column!r} appears {values.shape[1]} times; name a unique column")
        return values
    parts = column if isinstance(column, tuple) else (column,)
    matching = [label for label in columns if all(part in label for part in parts)]
    if matching and not full:
        raise ColumnNotFoundError(
            f"the DataFrame's columns have {columns.nlevels} levels, so {column!r} is not one column; name it "
            f"by its full label, one of {matching[:5]!r}"
        )
    raise ColumnNotFoundError(f"column {column!r} is not in the DataFrame; {_where_instead(frame, column)}")


def _where_instead(frame: pd.DataFrame, column: Any) -> str:
    """What the caller may have meant: the index, or the columns there are."""
    names = [name for name in frame.index.names if name is not None]
    if column in names:
        return (f"{column!r} is the name of the index, not a column: use "
                f"df.reset_index().leadlex.bulk_delete({column!r})")
    return f"its columns are {list(frame.columns)[:20]!r}"


@pd.api.extensions.register_dataframe_accessor("leadlex")
class LeadLexFrameAccessor:
    """``df.leadlex.bulk_delete("contact_id")``"""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def bulk_delete(self, column: Any, **options: Any) -> pd.DataFrame | DeletionRun:
        options = hide_key_option(options)  # never a plain-text key in a verbose traceback
        values = _series_of(self._frame, column)
        if notebook.wants_handle(options):
            return notebook.bulk_delete(values, options)
        return api.bulk_delete(values, **options)

    async def abulk_delete(self, column: Any, **options: Any) -> pd.DataFrame | DeletionRun:
        options = hide_key_option(options)  # never a plain-text key in a verbose traceback
        values = _series_of(self._frame, column)
        if notebook.wants_handle(options):
            return await notebook.abulk_delete(values, options)
        return await api.abulk_delete(values, **options)

    bulk_delete.__doc__ = "Delete the contacts whose UUIDs are in ``column``.\n" + _DOC
    abulk_delete.__doc__ = "Async :meth:`bulk_delete`, for code already inside an event loop.\n" + _DOC


@pd.api.extensions.register_series_accessor("leadlex")
class LeadLexSeriesAccessor:
    """``df["contact_id"].leadlex.bulk_delete()``"""

    def __init__(self, series: pd.Series) -> None:
        self._series = series

    def bulk_delete(self, **options: Any) -> pd.DataFrame | DeletionRun:
        options = hide_key_option(options)  # never a plain-text key in a verbose traceback
        if notebook.wants_handle(options):
            return notebook.bulk_delete(self._series, options)
        return api.bulk_delete(self._series, **options)

    async def abulk_delete(self, **options: Any) -> pd.DataFrame | DeletionRun:
        options = hide_key_option(options)  # never a plain-text key in a verbose traceback
        if notebook.wants_handle(options):
            return await notebook.abulk_delete(self._series, options)
        return await api.abulk_delete(self._series, **options)

    bulk_delete.__doc__ = "Delete the contacts whose UUIDs are in this Series.\n" + _DOC
    abulk_delete.__doc__ = "Async :meth:`bulk_delete`.\n" + _DOC

"""The public entry points: bulk delete a column of contact IDs, and resume a run.

Thin composition of the parts: settings → ID normalisation → a journaled :class:`Run`
with front-end hooks. The async functions are the implementation; the sync ones wrap
them with :func:`run_sync`, which works inside a running event loop (Jupyter) too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from leadlex_nb.config import (
    Settings,
    check_flag,
    default_journal_path,
    hide_api_key,
    hide_key_option,
    resolve_settings,
)
from leadlex_nb.defaults import (
    DEFAULT_ATTRIBUTION_BUDGET,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_WINDOW_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
)
from leadlex_nb.errors import ConfigurationError
from leadlex_nb.hooks import Confirm, Hooks, StopSignal
from leadlex_nb.ids import normalise_with_texts
from leadlex_nb.journal import Journal
from leadlex_nb.resume import load_resume_point
from leadlex_nb.retry import RetryPolicy
from leadlex_nb.runner import Run
from leadlex_nb.syncrun import run_sync

if TYPE_CHECKING:
    from leadlex_nb.restore_plan import RestorePlan

log = logging.getLogger("leadlex_nb")

ASK: Any = ...  # the default of ``confirm``: ask in the front end at hand


def _confirm_hook(confirm: Any, dry_run: bool) -> Confirm | None:
    if dry_run or confirm is False:
        return None
    if confirm is True:
        raise ConfigurationError(
            "confirm=True is ambiguous: leave confirm out to be asked, or pass confirm=False to delete "
            "the dry-run plan without asking"
        )
    if confirm is ASK:
        from leadlex_nb.terminal import ask_in_terminal

        return ask_in_terminal
    if callable(confirm):
        return confirm  # type: ignore[no-any-return]
    raise ConfigurationError(f"confirm must be omitted, False, or a callable taking the plan; got {confirm!r}")


def restore_confirm_hook(confirm: Any) -> Callable[[RestorePlan], Any] | None:
    """``confirm`` of a restore: omitted asks in a terminal, False creates without asking, or a callable."""
    if confirm is False:
        return None
    if confirm is ASK:
        from leadlex_nb.terminal import ask_to_restore

        return ask_to_restore
    if callable(confirm):
        return confirm  # type: ignore[no-any-return]
    raise ConfigurationError(f"confirm must be omitted, False, or a callable taking the plan; got {confirm!r}")


def _hooks(confirm: Confirm | None, progress: bool, verbose: bool, stop: StopSignal | None = None) -> Hooks:
    from leadlex_nb.progress import note, tqdm_progress

    def announce(message: str) -> None:
        log.info("%s", message)
        if verbose:
            note(message)  # a plain line on stdout in a notebook (no red stderr box); stderr in a terminal

    hooks = Hooks(confirm=confirm, announce=announce, stop=stop)
    if progress:
        hooks.progress = tqdm_progress
    return hooks


async def abulk_delete(
    values: pd.Series,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    dry_run: bool = False,
    confirm: Any = ASK,
    plan: Any = None,
    rate_window: float = DEFAULT_RATE_WINDOW_SECONDS,
    retry: RetryPolicy | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int | None = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    attribution_budget: int = DEFAULT_ATTRIBUTION_BUDGET,
    ignore_quota: bool = False,
    journal: str | os.PathLike[str] | bool | None = None,
    snapshot: bool | str = True,
    progress: bool = True,
    verbose: bool = True,
    stop: StopSignal | None = None,
) -> pd.DataFrame:
    """Delete the contacts whose IDs are in ``values``; one result row per input row.

    See :meth:`LeadLexAccessor.bulk_delete` for the parameters. ``stop``, set from any thread,
    stops the run: no new request, those in flight finish and are recorded.
    """
    api_key = hide_api_key(api_key)  # IPython's verbose tracebacks print argument values
    dry_run = check_flag("dry_run", dry_run)
    settings = resolve_settings(
        api_key=api_key, base_url=base_url, plan=plan, rate_window=rate_window, retry=retry, batch_size=batch_size,
        concurrency=concurrency, timeout=timeout, attribution_budget=attribution_budget, ignore_quota=ignore_quota,
        journal=journal, snapshot=snapshot,
    )
    hooks = _hooks(_confirm_hook(confirm, dry_run), progress, verbose, stop)
    ids, texts = normalise_with_texts(values)
    with _open_journal(settings) as opened:
        return await Run(settings, ids, dry_run=dry_run, hooks=hooks, journal=opened, texts=texts).execute()


def bulk_delete(values: pd.Series, **options: Any) -> pd.DataFrame:
    """Synchronous :func:`abulk_delete`; works inside a running event loop (Jupyter) too."""
    options = hide_key_option(options)
    return run_sync(lambda: abulk_delete(values, **options))


def _open_journal(settings: Settings) -> Any:
    return Journal(settings.journal_path) if settings.journal_path is not None else contextlib.nullcontext()


async def aresume(
    run_id: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    journal: str | os.PathLike[str] | None = None,
    confirm: Any = ASK,
    progress: bool = True,
    verbose: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Finish an interrupted or stopped run from its journal.

    Batches sent less than 23 hours ago are resent with their original idempotency key and
    body, so the server replays instead of executing twice; older ones are first checked
    with a dry run. A run that never reached deletion (declined, stopped, interrupted) does
    its dry run again, so the plan it asks to confirm is current. A finished run returns its
    result without sending anything.
    """
    api_key = hide_api_key(api_key)
    probe = resolve_settings(api_key=api_key, base_url=base_url, journal=journal)
    if probe.journal_path is None:
        raise ConfigurationError("resume needs a journal")
    with Journal(probe.journal_path) as opened:
        point = load_resume_point(opened, run_id, probe.api_key.fingerprint, now=time.time())
        # The run's own server and batch size: its batches and keys depend on them.
        options.pop("batch_size", None)
        settings = resolve_settings(
            api_key=probe.api_key, base_url=base_url or point.record.base_url,
            batch_size=point.record.meta.get("batch_size", DEFAULT_BATCH_SIZE), journal=probe.journal_path, **options,
        )
        hooks = _hooks(_confirm_hook(confirm, point.record.dry_run), progress, verbose)
        return await Run.from_journal(settings, hooks, opened, point).resume()


def resume(run_id: str, **options: Any) -> pd.DataFrame:
    """Synchronous :func:`aresume`."""
    options = hide_key_option(options)
    return run_sync(lambda: aresume(run_id, **options))


def journaled_runs(journal: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The runs in the journal, newest first."""
    with Journal(Path(journal) if journal is not None else default_journal_path()) as opened:
        return opened.runs()

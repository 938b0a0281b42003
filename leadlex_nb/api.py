"""The public entry points: bulk delete a column of contact IDs, and resume a run.

Thin composition of the parts: settings → ID normalisation → a journaled :class:`Run`
with front-end hooks. The async functions are the implementation; the sync ones wrap
them with :func:`run_sync`, which works inside a running event loop (Jupyter) too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any

import pandas as pd

from leadlex_nb.config import Settings, resolve_settings
from leadlex_nb.errors import ConfigurationError, ResumeError
from leadlex_nb.ids import normalise_ids
from leadlex_nb.journal import Journal
from leadlex_nb.retry import RetryPolicy
from leadlex_nb.runner import DELETE, DRY_RUN, IDEMPOTENCY_WINDOW_SECONDS, Confirm, Hooks, Run
from leadlex_nb.syncrun import run_sync

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


def _hooks(confirm: Confirm | None, progress: bool, verbose: bool) -> Hooks:
    from leadlex_nb.progress import tqdm_progress

    def announce(message: str) -> None:
        log.info("%s", message)
        if verbose:
            print(message, file=sys.stderr, flush=True)

    hooks = Hooks(confirm=confirm, announce=announce)
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
    rate_window: float = 60.0,
    retry: RetryPolicy | None = None,
    batch_size: int = 500,
    concurrency: int = 4,
    timeout: float = 30.0,
    attribution_budget: int = 100,
    ignore_quota: bool = False,
    journal: str | os.PathLike[str] | bool | None = None,
    progress: bool = True,
    verbose: bool = True,
) -> pd.DataFrame:
    """Delete the contacts whose IDs are in ``values``; one result row per input row.

    See :meth:`LeadLexAccessor.bulk_delete` for the parameters.
    """
    settings = resolve_settings(
        api_key=api_key, base_url=base_url, plan=plan, rate_window=rate_window, retry=retry, batch_size=batch_size, concurrency=concurrency,
        timeout=timeout, attribution_budget=attribution_budget, ignore_quota=ignore_quota, journal=journal,
    )
    hooks = _hooks(_confirm_hook(confirm, dry_run), progress, verbose)
    ids = normalise_ids(values)
    run = Run(settings, ids, dry_run=dry_run, hooks=hooks)
    with _open_journal(settings) as opened:
        run.attach_journal(opened)
        return await run.execute()


def bulk_delete(values: pd.Series, **options: Any) -> pd.DataFrame:
    """Synchronous :func:`abulk_delete`; works inside a running event loop (Jupyter) too."""
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
    with a dry run. A run that stopped before deleting repeats its dry run (same keys) and
    asks again. A finished run returns its result without sending anything.
    """
    probe = resolve_settings(api_key=api_key, base_url=base_url, journal=journal)
    if probe.journal_path is None:
        raise ConfigurationError("resume needs a journal")
    with Journal(probe.journal_path) as opened:
        record = opened.load_run(run_id)
        if record is None:
            raise ResumeError(f"no run {run_id!r} in the journal {probe.journal_path}")
        # The run's own server and batch size: its batches and keys depend on them.
        options.pop("batch_size", None)
        settings = resolve_settings(
            api_key=probe.api_key, base_url=base_url or record.base_url,
            batch_size=record.meta.get("batch_size", 500), journal=probe.journal_path, **options,
        )
        if settings.api_key.fingerprint != record.key_fingerprint:
            raise ResumeError(f"run {run_id} was made with a different API key; resume it with the same key")
        delete_batches = opened.load_batches(run_id, DELETE)
        hooks = _hooks(_confirm_hook(confirm, record.dry_run), progress, verbose)
        run = Run(settings, record.ids, dry_run=record.dry_run, hooks=hooks, run_id=run_id)
        run.attach_journal(opened)
        if not delete_batches:
            # Never reached deletion: repeat the flow; the same dry-run keys replay stored answers.
            run.resumed = True
            return await run.execute()
        run.dry_outcomes = opened.load_outcomes(run_id, DRY_RUN)
        run.delete_outcomes = opened.load_outcomes(run_id, DELETE)
        run.plan = [cid for jb in delete_batches for cid in jb.batch.ids]
        now = time.time()
        pending = [jb for jb in delete_batches if jb.state != "answered"]
        fresh = [jb.batch for jb in pending if jb.first_sent_at is None or now - jb.first_sent_at < IDEMPOTENCY_WINDOW_SECONDS]
        expired = [jb.batch for jb in pending if jb.batch not in fresh]
        for batch in fresh + expired:
            for cid in batch.ids:
                run.delete_outcomes.pop(cid, None)
        return await run.resume_delete(fresh, expired)


def resume(run_id: str, **options: Any) -> pd.DataFrame:
    """Synchronous :func:`aresume`."""
    return run_sync(lambda: aresume(run_id, **options))


def journaled_runs(journal: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The runs in the journal, newest first."""
    from leadlex_nb.config import default_journal_path

    with Journal(journal or default_journal_path()) as opened:
        return opened.runs()

"""The ``leadlex-nb`` command line.

::

    leadlex-nb sandbox [--port N] [--seed-contacts N] [--db PATH] [--profile NAME]
    leadlex-nb delete contacts.csv [--column contact_id] [--dry-run] [--yes] [--out result.csv|.parquet]
    leadlex-nb resume RUN_ID [--yes] [--out result.csv]
    leadlex-nb restore RUN_ID [--ids contacts.csv] [--dry-run] [--yes] [--out result.csv]
    leadlex-nb runs [--journal PATH]

The key comes from ``LEADLEX_API_KEY`` (never from an argument, so it stays out of shell
history and process lists); the URL from ``--base-url`` or ``LEADLEX_BASE_URL``.

Every failure ends with one line on stderr (no traceback) and its own exit code
(the README's "Command line" section has the same table):

===  =====================================================================================
0    done: every row settled
1    some rows unsettled (``unknown``, ``not_sent``, ``error``, ``unresolved``), including
     a server that could not be reached (stderr says so): resume or run them again
2    usage: bad arguments; an input file that cannot be read, lacks the column or holds no
     valid ID; an ``--out`` file that cannot be written; Parquet without pyarrow
3    configuration: no key, a refused base URL, an option value out of range
4    stopped by the API: 401 (key refused), 403 (permission missing), the daily quota
5    journal: no journal at the path given, or it cannot be written or read; a run that
     cannot be resumed or restored (unknown id, another key, no snapshot); a snapshot that
     cannot be written
6    declined: the plan was not confirmed; nothing was deleted
70   internal error: a bug in leadlex-nb (please report it)
130  interrupted (Ctrl-C); ``leadlex-nb resume RUN_ID`` finishes the run
===  =====================================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from leadlex_nb.cli_files import (
    EXIT_API_STOP,
    EXIT_CONFIGURATION,
    EXIT_DECLINED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_JOURNAL,
    EXIT_OK,
    EXIT_UNSETTLED,
    EXIT_USAGE,
    CliError,
    check_out,
    one_line,
    read_table,
    write_result,
)
from leadlex_nb.defaults import (
    DEFAULT_ATTRIBUTION_BUDGET,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_ID_COLUMN,
    DEFAULT_RATE_WINDOW_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_BASE_URL,
    ENV_JOURNAL,
)

if TYPE_CHECKING:
    import pandas as pd


UNSETTLED = ("unknown", "not_sent", "error", "unresolved", "refused")


# -- what the run says -------------------------------------------------------------------


class _Announcements(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"warning: {message}" if record.levelno >= logging.WARNING else message


@contextlib.contextmanager
def _announcements() -> Iterator[None]:
    """What the run decides, on stderr. A stop is announced as it happens ("stopping: ...") and then
    raised; the command line prints the raised error itself, so the announcement is left out (a
    401 would otherwise be said twice)."""
    logger = logging.getLogger("leadlex_nb")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO)
    handler.setFormatter(_Announcements())
    handler.addFilter(lambda record: record.name == "leadlex_nb"
                      and not record.getMessage().startswith("stopping: "))
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _confirm_in_terminal(yes_hint: str, ask: str = "delete") -> Any:
    async def confirm(summary: Any) -> bool:
        if sys.stdin is not None and sys.stdin.isatty():
            from leadlex_nb.terminal import ask_in_terminal, ask_to_restore

            return await (ask_to_restore(summary) if ask == "restore" else ask_in_terminal(summary))
        print(_cli_wording(summary.describe()), file=sys.stderr)
        print(f"No terminal to confirm in: nothing was {'created' if ask == 'restore' else 'deleted'}. {yes_hint}",
              file=sys.stderr)
        return False

    return confirm


def _shown_url(url: str) -> str:
    """The base URL without query or fragment: enough to say where, never anything secret in it."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/")


def _report(result: pd.DataFrame, out: Path | None, base_url: Callable[[], str]) -> int:
    """The summary on stderr, the result file, a line about a server that could not be reached."""
    from leadlex_nb.results import summarise, summary_line

    if "new_contact_id" in result.columns:  # a restore's frame
        counts = result["status"].value_counts()
        print("restore: " + ", ".join(f"{n:,} {s}" for s, n in counts.items() if n), file=sys.stderr)
        reasons: dict[tuple[str, str], list[str]] = {}
        for row_status, code, message in zip(result["status"].astype(str), result["error_code"],
                                             result["error_message"], strict=True):
            if isinstance(code, str):
                reasons.setdefault((row_status, code), []).append(str(message))
        for (row_status, code), messages in reasons.items():
            print(f"  {len(messages):,} {row_status} ({code}): {one_line(messages[0])}", file=sys.stderr)
    else:
        print(summary_line(result), file=sys.stderr)
        print(summarise(result).to_string(), file=sys.stderr)
    report = result.attrs.get("leadlex", {})
    if report:
        print(f"run {report.get('run_id')}: requests {report.get('requests')}, 429s {report.get('rate_limited', 0)}",
              file=sys.stderr)
        if report.get("snapshot"):
            print(f"snapshot: {report['snapshot']} (`leadlex-nb restore {report.get('run_id')}` re-creates the "
                  "deleted contacts)", file=sys.stderr)
    status = result["status"].astype(str)
    unreached = (status == "not_sent") & (result["error_code"].astype(str) == "transport_connect")
    if unreached.any():
        reason = one_line(result.loc[unreached, "error_message"].iloc[0])
        print(f"error: could not connect to {_shown_url(base_url())}; {int((status == 'not_sent').sum()):,} row(s) "
              f"not sent ({reason})", file=sys.stderr)
    if out is not None:
        try:
            write_result(result, out, with_index="new_contact_id" not in result.columns)
        except Exception as error:
            run_id = report.get("run_id", "RUN_ID")
            raise CliError(f"cannot write the result to {out}: {one_line(error)}; the run is in the journal, "
                           f"`leadlex-nb resume {run_id} --out OTHER_FILE` writes it", EXIT_USAGE) from None
        print(f"result written to {out}", file=sys.stderr)
    return EXIT_UNSETTLED if status.isin(UNSETTLED).any() else EXIT_OK


# -- arguments ---------------------------------------------------------------------------


def _tuning(parser: argparse.ArgumentParser) -> None:
    """The run options shared by ``delete`` and ``resume`` (the API's keywords of the same names)."""
    parser.add_argument("--plan", help="starter | pro | org | requests per minute: pace to it, never hitting 429")
    parser.add_argument("--rate-window", type=float, default=DEFAULT_RATE_WINDOW_SECONDS, metavar="SECONDS",
                        help=f"the longest the API's rate window may be, for learning it without --plan "
                             f"(default {DEFAULT_RATE_WINDOW_SECONDS:g})")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="requests in flight (default: sized from the rate limit, 4 to 32)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                        help=f"seconds per request (default {DEFAULT_TIMEOUT_SECONDS:g})")
    parser.add_argument("--attribution-budget", type=int, default=DEFAULT_ATTRIBUTION_BUDGET, metavar="N",
                        help="requests allowed for pinning down which IDs are missing")
    parser.add_argument("--ignore-quota", action="store_true",
                        help="start even if the daily quota cannot cover the run")


def _common(parser: argparse.ArgumentParser, yes: str = "delete the dry-run plan without asking") -> None:
    parser.add_argument("--base-url", help=f"API base URL (default: {ENV_BASE_URL}, else the LeadLex gateway)")
    parser.add_argument("--journal", type=Path,
                        help=f"run journal path (default: {ENV_JOURNAL}, else ~/.local/share/leadlex-nb)")
    parser.add_argument("--yes", action="store_true", help=yes)
    parser.add_argument("--out", type=Path, help="write the result frame to this file (.parquet: Parquet, else CSV)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadlex-nb", description="Bulk-delete LeadLex contacts safely.",
                                     epilog="Exit codes: see the README's 'Command line' section.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sandbox", help="start the local LeadLex sandbox", add_help=False)

    delete = commands.add_parser("delete", help="dry-run, confirm, and delete the contacts listed in a file")
    delete.add_argument("file", type=Path, help="CSV (or Parquet) file with a column of contact UUIDs")
    delete.add_argument("--column", default=DEFAULT_ID_COLUMN)
    delete.add_argument("--dry-run", action="store_true", help="only look; nothing is deleted")
    delete.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"IDs per request, 1-500 (default {DEFAULT_BATCH_SIZE})")
    delete.add_argument("--snapshot", choices=("auto", "export", "list", "get", "off"), default="auto",
                        help="save the planned contacts before deleting: the cheapest read (auto), a given one, "
                             "or none (off)")
    _tuning(delete)
    _common(delete)

    resume = commands.add_parser("resume", help="finish an interrupted run from its journal")
    resume.add_argument("run_id")
    _tuning(resume)
    _common(resume)

    restore = commands.add_parser("restore", help="re-create a run's deleted contacts from its snapshot")
    restore.add_argument("run_id")
    restore.add_argument("--ids", type=Path, metavar="FILE",
                         help="only these contacts: a CSV (or Parquet) file with a column of the deleted IDs")
    restore.add_argument("--column", default=DEFAULT_ID_COLUMN,
                         help=f"the column of --ids that holds the IDs (default {DEFAULT_ID_COLUMN})")
    restore.add_argument("--dry-run", action="store_true", help="only show what would be re-created")
    _common(restore, yes="re-create the contacts without asking")

    runs = commands.add_parser("runs", help="list the journaled runs")
    runs.add_argument("--journal", type=Path)
    return parser


# -- commands ----------------------------------------------------------------------------


def _existing_journal(explicit: Path | None, *, required: bool) -> Path | None:
    """The journal to read, never created here: a missing one is an error where it was named (or
    needed), and None where only the default location was looked at."""
    from leadlex_nb.config import default_journal_path

    path = explicit if explicit is not None else default_journal_path()
    if path.is_file():
        return path
    if path.exists():
        raise CliError(f"{path} is not a journal file", EXIT_JOURNAL)
    if required or explicit is not None or os.environ.get(ENV_JOURNAL):
        raise CliError(f"no journal at {path}", EXIT_JOURNAL)
    return None


def _runs(args: argparse.Namespace) -> int:
    import leadlex_nb

    path = _existing_journal(args.journal, required=False)
    if path is None:
        print("no journaled runs (no journal yet)")
        return EXIT_OK
    runs = leadlex_nb.journaled_runs(path)
    print(runs.to_string(index=False) if len(runs) else "no journaled runs")
    return EXIT_OK


def _options(args: argparse.Namespace, yes_hint: str) -> dict[str, Any]:
    plan: Any = int(args.plan) if args.plan and args.plan.isdigit() else args.plan
    options: dict[str, Any] = {
        "base_url": args.base_url,
        "progress": not args.quiet,
        "verbose": False,  # said by _announcements instead, without repeating a stop
        "confirm": False if args.yes else _confirm_in_terminal(yes_hint),
        "plan": plan,
        "rate_window": args.rate_window,
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "attribution_budget": args.attribution_budget,
        "ignore_quota": args.ignore_quota,
    }
    if args.journal is not None:
        options["journal"] = args.journal
    return options


def _base_url(args: argparse.Namespace) -> str:
    """Where the run went: --base-url, else the environment, else the gateway (resume: the journal's)."""
    if args.base_url:
        return str(args.base_url)
    if args.command == "resume":
        with contextlib.suppress(Exception):
            import leadlex_nb

            runs = leadlex_nb.journaled_runs(args.journal)
            return str(runs.loc[runs["run_id"] == args.run_id, "base_url"].iloc[0])
    return os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL


def _run(args: argparse.Namespace) -> int:
    import leadlex_nb  # registers the .leadlex accessor

    if args.command == "restore":
        return _restore(args)
    if args.command == "resume":
        _existing_journal(args.journal, required=True)
        check_out(args.out, None)
        options = _options(args, f"Pass --yes to delete this plan without asking: leadlex-nb resume {args.run_id} "
                                 "--yes")
        return _report(leadlex_nb.resume(args.run_id, **options), args.out, lambda: _base_url(args))
    frame = read_table(args.file, args.column)
    check_out(args.out, args.file)
    options = _options(args, "Pass --yes to delete this plan without asking, or --dry-run to only look.")
    snapshot = {"auto": True, "off": False}.get(args.snapshot, args.snapshot)
    result = frame.leadlex.bulk_delete(args.column, dry_run=args.dry_run, batch_size=args.batch_size,
                                       snapshot=snapshot, **options)
    return _report(result, args.out, lambda: _base_url(args))


def _restore(args: argparse.Namespace) -> int:
    import pandas as pd

    import leadlex_nb
    from leadlex_nb.ids import normalise_ids

    journal = _existing_journal(args.journal, required=True)
    ids = None if args.ids is None else read_table(args.ids, args.column)[args.column].tolist()
    if ids is not None and not normalise_ids(pd.Series(ids, dtype=object))["valid"].any():
        raise CliError(f"no valid contact ID among {len(ids):,} row(s) of {args.ids}; nothing was sent", EXIT_USAGE)
    check_out(args.out, args.ids)
    confirm: Any = False if args.yes else _confirm_in_terminal(
        f"Pass --yes to restore without asking: leadlex-nb restore {args.run_id} --yes", ask="restore")
    result = leadlex_nb.restore(args.run_id, ids, base_url=args.base_url, journal=journal, dry_run=args.dry_run,
                                confirm=confirm, progress=not args.quiet, verbose=False)
    return _report(result, args.out, lambda: _base_url(args))


def _cli_wording(message: str) -> str:
    """The API's messages name keyword arguments; on the command line they are options."""
    return (message.replace("pass ignore_quota=True", "pass --ignore-quota")
            .replace("snapshot=False", "--snapshot off").replace("journal=False", "no journal"))


def _stopped(error: Any, args: argparse.Namespace, code: int, label: str | None, *, resumable: bool = True) -> int:
    """A run that ended early: its partial result, then the reason on one line (unless the report said
    it: ``label`` None), then how to finish it."""
    if error.result is not None:
        try:
            _report(error.result, args.out, lambda: _base_url(args))
        except CliError as failure:
            print(f"error: {failure}", file=sys.stderr)
    if label is not None or error.result is None:
        print(f"{label or 'stopped'}: {_cli_wording(str(error))}", file=sys.stderr)
    if error.run_id and resumable:
        again = "restore" if args.command == "restore" else "resume"
        print(f"finish the run with: leadlex-nb {again} {error.run_id}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "sandbox":
        from leadlex_nb.sandbox.cli import main as sandbox_main

        return sandbox_main(args_list[1:])
    args = build_parser().parse_args(args_list)

    from leadlex_nb.errors import (
        AuthenticationError,
        ColumnNotFoundError,
        ConfigurationError,
        ConfirmationDeclined,
        JournalError,
        NothingToDeleteError,
        PermissionDeniedError,
        QuotaError,
        RestoreError,
        ResumeError,
        RunInterrupted,
        ServerUnreachableError,
        SnapshotError,
    )

    try:
        with _announcements():
            if args.command == "runs":
                return _runs(args)
            return _run(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except (ColumnNotFoundError, NothingToDeleteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except (AuthenticationError, PermissionDeniedError, QuotaError) as error:
        return _stopped(error, args, EXIT_API_STOP, "stopped")
    except ServerUnreachableError as error:  # the report's last line names the server and why
        return _stopped(error, args, EXIT_UNSETTLED, None, resumable=False)
    except ConfirmationDeclined as error:
        return _stopped(error, args, EXIT_DECLINED, "declined", resumable=False)
    except RunInterrupted as error:
        # Its own text names the Python call; here the way on is the command.
        error.args = ("no new request was sent; requests in flight are marked unknown",)
        return _stopped(error, args, EXIT_INTERRUPTED, "interrupted")
    except (JournalError, ResumeError, RestoreError, SnapshotError) as error:
        return _stopped(error, args, EXIT_JOURNAL, "error", resumable=isinstance(error, JournalError))
    except KeyboardInterrupt:
        print("interrupted; `leadlex-nb runs` lists the run if it had started, `leadlex-nb resume RUN_ID` "
              "finishes it", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        print(f"internal error (a bug in leadlex-nb, please report it): {type(error).__name__}: {one_line(error)}",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``leadlex-nb`` command line.

::

    leadlex-nb sandbox [--port N] [--seed-contacts N] [--db PATH] [--profile NAME]
    leadlex-nb delete contacts.csv [--column contact_id] [--dry-run] [--yes] [--out result.csv]
    leadlex-nb resume RUN_ID [--yes] [--out result.csv]
    leadlex-nb runs

The key comes from ``LEADLEX_API_KEY`` (never from an argument, so it stays out of shell
history and process lists); the URL from ``--base-url`` or ``LEADLEX_BASE_URL``.
Exit codes: 0 done, 1 some rows not settled (unknown / not_sent / error), 2 usage or
configuration error, 3 stopped (auth, permission, quota, declined, interrupted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from leadlex_nb.defaults import (
    DEFAULT_ATTRIBUTION_BUDGET,
    DEFAULT_CONCURRENCY,
    DEFAULT_ID_COLUMN,
    ENV_BASE_URL,
    ENV_JOURNAL,
)

EXIT_OK, EXIT_UNSETTLED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


def _read_table(path: Path, column: str) -> Any:
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path, columns=[column])
    # IDs are read as text: never let pandas turn them into numbers or dates.
    return pd.read_csv(path, dtype={column: "string"}, keep_default_na=False, na_values=[""])


def _finish(result: Any, out: str | None) -> int:
    from leadlex_nb.results import summarise

    print(summarise(result).to_string(), file=sys.stderr)
    report = result.attrs.get("leadlex", {})
    if report:
        print(f"run {report.get('run_id')}: requests {report.get('requests')}, 429s {report.get('rate_limited')}",
              file=sys.stderr)
    if out:
        result.to_csv(out)
        print(f"result written to {out}", file=sys.stderr)
    unsettled = result["status"].astype(str).isin(["unknown", "not_sent", "error", "unresolved"]).any()
    return EXIT_UNSETTLED if unsettled else EXIT_OK


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help=f"API base URL (default: {ENV_BASE_URL}, else the LeadLex gateway)")
    parser.add_argument("--journal", help=f"run journal path (default: {ENV_JOURNAL}, else ~/.local/share/leadlex-nb)")
    parser.add_argument("--yes", action="store_true", help="delete the dry-run plan without asking")
    parser.add_argument("--out", help="write the result frame to this CSV file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadlex-nb", description="Bulk-delete LeadLex contacts safely.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sandbox", help="start the local LeadLex sandbox", add_help=False)

    delete = commands.add_parser("delete", help="dry-run, confirm, and delete the contacts listed in a file")
    delete.add_argument("file", type=Path, help="CSV (or Parquet) file with a column of contact UUIDs")
    delete.add_argument("--column", default=DEFAULT_ID_COLUMN)
    delete.add_argument("--dry-run", action="store_true", help="only look; nothing is deleted")
    delete.add_argument("--plan", help="starter | pro | org | requests per minute")
    delete.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    delete.add_argument("--attribution-budget", type=int, default=DEFAULT_ATTRIBUTION_BUDGET)
    delete.add_argument("--ignore-quota", action="store_true")
    _common(delete)

    resume = commands.add_parser("resume", help="finish an interrupted run from its journal")
    resume.add_argument("run_id")
    _common(resume)

    runs = commands.add_parser("runs", help="list the journaled runs")
    runs.add_argument("--journal")
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "sandbox":
        from leadlex_nb.sandbox.cli import main as sandbox_main

        return sandbox_main(args_list[1:])
    args = build_parser().parse_args(args_list)

    import leadlex_nb
    from leadlex_nb.errors import ConfigurationError, LeadLexError

    try:
        if args.command == "runs":
            runs = leadlex_nb.journaled_runs(args.journal)
            print(runs.to_string(index=False) if len(runs) else "no journaled runs")
            return EXIT_OK
        options: dict[str, Any] = {
            "base_url": args.base_url,
            "progress": not args.quiet,
            "confirm": False if args.yes else leadlex_nb.api.ASK,
        }
        if args.journal:
            options["journal"] = args.journal
        if args.command == "resume":
            return _finish(leadlex_nb.resume(args.run_id, **options), args.out)
        if not args.file.exists():
            raise ConfigurationError(f"no such file: {args.file}")
        frame = _read_table(args.file, args.column)
        plan: Any = int(args.plan) if args.plan and args.plan.isdigit() else args.plan
        result = frame.leadlex.bulk_delete(
            args.column, dry_run=args.dry_run, plan=plan, concurrency=args.concurrency,
            attribution_budget=args.attribution_budget, ignore_quota=args.ignore_quota, **options,
        )
        return _finish(result, args.out)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except LeadLexError as error:
        print(f"stopped: {error}", file=sys.stderr)
        if error.result is not None and args.command != "runs":
            _finish(error.result, args.out)
        if error.run_id:
            print(f"resume with: leadlex-nb resume {error.run_id}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        return EXIT_STOPPED


if __name__ == "__main__":
    raise SystemExit(main())

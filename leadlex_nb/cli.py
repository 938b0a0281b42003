"""The ``leadlex-nb`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "sandbox":
        from leadlex_nb.sandbox.cli import main as sandbox_main

        return sandbox_main(args[1:])
    print("usage: leadlex-nb sandbox [--port N] [--seed-contacts N] [--db PATH] [--profile NAME]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

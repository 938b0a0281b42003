"""``leadlex-nb sandbox``: serve the sandbox until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .profiles import PROFILES
from .server import Sandbox


def _port(text: str) -> int:
    port = _count(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (0-65535; 0 picks a free one)")
    return port


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadlex-nb sandbox",
                                     description="Serve a local LeadLex API on 127.0.0.1.")
    parser.add_argument("--port", type=_port, default=0, help="port to bind (default: any free port)")
    parser.add_argument("--seed-contacts", type=_count, default=0, metavar="N", help="create N contacts")
    parser.add_argument("--db", metavar="PATH", default=None, help="SQLite file (default: in memory)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="fast", help="rate-limit profile")
    parser.add_argument("--seed", type=int, default=0, help="seed for generated data")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sandbox = Sandbox(seed_contacts=args.seed_contacts, profile=args.profile,
                              db_path=args.db, port=args.port, seed=args.seed).start()
        except OSError as exc:
            print(f"leadlex-nb sandbox: cannot serve: {exc}", file=sys.stderr)
            return 1
        with sandbox:
            print(f"LEADLEX_BASE_URL={sandbox.base_url}", flush=True)
            print(f"LEADLEX_API_KEY={sandbox.api_key}", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

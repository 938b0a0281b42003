"""What every benchmark section shares: the scale of a run, the hidden-window setup, timing and stats."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leadlex_nb.sandbox import Profile

ROOT = Path(__file__).resolve().parent.parent
BULK_DELETE_PATH = "/v1/contacts/bulk-delete"
BATCH = 500  # the API's maximum IDs per bulk-delete call

# The unadvertised limit of section A: 20 requests per 1-second window, a daily quota that never binds.
HIDDEN_PER_WINDOW = 20
HIDDEN_WINDOW_S = 1.0
HIDDEN_PROFILE = Profile("hidden", per_window=HIDDEN_PER_WINDOW, window_seconds=HIDDEN_WINDOW_S, daily_quota=10**7)
LATENCY_S = 0.05
LATENCY_JITTER_S = 0.02
# Sections C and D count requests, not seconds: a limit that never binds keeps them quick.
ROOMY_PROFILE = Profile("roomy", per_window=100_000, window_seconds=1.0, daily_quota=10**8)


@dataclass(frozen=True)
class Scale:
    """How big each section is; ``full()`` for ``make bench``, ``quick()`` for ``BENCH_QUICK=1``."""

    side_by_side_ids: int
    side_by_side_repeats: int
    stall_cap_s: float
    overhead_ids: int
    overhead_repeats: int
    unknown_ids: int
    fault_ids: int
    fault_seeds: int
    # Section E: the learning runs (the 60-second window takes minutes of real time).
    learning_cases: tuple[tuple[int, float, int, int], ...] = ((10, 1.0, 80, 3), (50, 60.0, 150, 1))
    # Section F: contacts planned for deletion (the workspace holds twice as many).
    snapshot_ids: int = 10_000
    # Section C's last row: a workspace past one export call.
    large_workspace: int = 200_000

    @classmethod
    def full(cls) -> Scale:
        return cls(side_by_side_ids=20_000, side_by_side_repeats=3, stall_cap_s=120.0, overhead_ids=1_000_000,
                   overhead_repeats=3, unknown_ids=10_000, fault_ids=20_000, fault_seeds=3)

    @classmethod
    def quick(cls) -> Scale:
        return cls(side_by_side_ids=12_000, side_by_side_repeats=1, stall_cap_s=20.0, overhead_ids=100_000,
                   overhead_repeats=1, unknown_ids=5_000, fault_ids=5_000, fault_seeds=1,
                   learning_cases=((10, 1.0, 40, 1),), snapshot_ids=2_000, large_workspace=60_000)

    @classmethod
    def from_environment(cls) -> Scale:
        return cls.quick() if os.environ.get("BENCH_QUICK", "") not in ("", "0") else cls.full()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def requests_for(ids: int) -> int:
    return math.ceil(ids / BATCH)


def ideal_seconds(requests: int, per_window: int = HIDDEN_PER_WINDOW, window_s: float = HIDDEN_WINDOW_S,
                  latency_s: float = LATENCY_S) -> float:
    """The fastest any client can finish ``requests`` under the window: full windows, then one answer."""
    return (math.ceil(requests / per_window) - 1) * window_s + latency_s


class ServerProcess:
    """A sandbox in a process of its own (:mod:`benchmarks.server_child`): its CPU and GIL are not the
    client's, as a real server's are not. ``ids`` are its contacts; ``bulk_delete_log`` is read once it
    has stopped. Holds the API key: pass it to clients, never print it."""

    def __init__(self, seed_contacts: int, workdir: Path, *, hidden: bool = False,
                 fault_seed: int | None = None) -> None:
        self._ids_file, self._log_file = workdir / "ids.csv", workdir / "log.json"
        command = [sys.executable, "-m", "benchmarks.server_child", "--seed-contacts", str(seed_contacts),
                   "--ids-file", str(self._ids_file), "--log-file", str(self._log_file)]
        command += ["--hidden"] if hidden else []
        command += [] if fault_seed is None else ["--fault-seed", str(fault_seed)]
        self._process = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        found: dict[str, str] = {}
        while len(found) < 2:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"the sandbox process ended before serving (exit {self._process.wait()})")
            name, _, value = line.strip().partition("=")
            found[name] = value
        self.env = found  # LEADLEX_BASE_URL and LEADLEX_API_KEY
        self.base_url, self.api_key = found["LEADLEX_BASE_URL"], found["LEADLEX_API_KEY"]

    @property
    def ids_file(self) -> Path:
        return self._ids_file

    def ids(self) -> list[str]:
        ids: list[str] = pd.read_csv(self._ids_file, dtype={"contact_id": "str"})["contact_id"].tolist()
        return ids

    def clear_log(self) -> None:
        """Empty the server's execution log, which keeps every request's IDs and slows its answers
        as it grows: each client measured then faces the same server."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write("clear\n")
        self._process.stdin.flush()
        if self._process.stdout.readline().strip() != "cleared":
            raise RuntimeError("the sandbox process did not clear its log")

    def stop(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        if not self._process.stdin.closed:
            self._process.stdin.close()  # the sandbox process serves until its stdin closes
            self._process.wait(timeout=60)
            self._process.stdout.close()

    def bulk_delete_log(self) -> list[dict[str, Any]]:
        """The server's bulk-delete requests, in arrival order (after :meth:`stop`)."""
        entries: list[dict[str, Any]] = json.loads(self._log_file.read_text())
        return entries

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a benchmark's child process: this checkout importable, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def count_429(entries: Iterable[dict[str, Any]]) -> int:
    return sum(1 for e in entries if e["status"] == 429)


@contextmanager
def fresh_journal() -> Iterator[Path]:
    """A journal path in a temporary directory that is removed afterwards (journals grow with the IDs)."""
    with tempfile.TemporaryDirectory(prefix="leadlex-bench-") as directory:
        yield Path(directory) / "journal.sqlite3"


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def _cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine() -> dict[str, Any]:
    import aiohttp
    import numpy

    return {"nproc": os.cpu_count(), "cpu_model": _cpu_model(), "platform": platform.platform(),
            "python": platform.python_version(), "pandas": pd.__version__, "numpy": numpy.__version__,
            "aiohttp": aiohttp.__version__, "load_average": [round(x, 2) for x in os.getloadavg()]}

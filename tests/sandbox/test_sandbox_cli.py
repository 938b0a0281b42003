"""The sandbox command: prints its URL and key, serves them, exits 0 on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

STARTUP_SECONDS = 60  # importing the package (pandas) can be slow on a cold machine


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_env(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip() for _ in range(2)]
    assert all("=" in line for line in lines), (lines, proc.stderr.read() if proc.poll() is not None else "")
    return dict(line.split("=", 1) for line in lines)  # type: ignore[misc]


@pytest.fixture
def cli() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    proc = _start("-m", "leadlex_nb.sandbox", "--port", "0", "--seed-contacts", "25")
    try:
        yield proc, _read_env(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=STARTUP_SECONDS)


def test_cli_prints_exactly_the_two_lines_and_serves_them(cli: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    proc, env = cli
    assert list(env) == ["LEADLEX_BASE_URL", "LEADLEX_API_KEY"]
    assert env["LEADLEX_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["LEADLEX_API_KEY"].startswith("wbk_")
    headers = {"Authorization": f"Bearer {env['LEADLEX_API_KEY']}"}
    with requests.Session() as s:
        listed = s.get(env["LEADLEX_BASE_URL"] + "/v1/contacts?per_page=100", headers=headers, timeout=10).json()
        assert listed["meta"]["total"] == 25
        ids = [c["id"] for c in listed["data"]["contacts"]][:3]
        deleted = s.post(env["LEADLEX_BASE_URL"] + "/v1/contacts/bulk-delete", json={"contact_ids": ids},
                         headers=headers, timeout=10).json()
    assert deleted == {"data": {"deleted_count": 3, "not_found_count": 0, "errors": []}}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=STARTUP_SECONDS)
    assert proc.returncode == 0, err
    assert out == ""  # nothing beyond the two lines


def test_cli_exits_0_on_sigterm(cli: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    proc, _ = cli
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=STARTUP_SECONDS)
    assert proc.returncode == 0


def test_top_level_command_dispatches_to_the_sandbox() -> None:
    proc = _start("-c", "import sys; from leadlex_nb.cli import main; sys.exit(main(['sandbox', '--profile', 'pro']))")
    try:
        env = _read_env(proc)
        with requests.Session() as s:
            r = s.get(env["LEADLEX_BASE_URL"] + "/v1/contacts", timeout=10,
                      headers={"Authorization": f"Bearer {env['LEADLEX_API_KEY']}"})
        assert r.headers["X-RateLimit-Limit"] == "1000"  # the Pro daily quota
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=STARTUP_SECONDS)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

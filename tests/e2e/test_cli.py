"""The command line, as a script would use it: a real sandbox process and a CSV file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

CLI = [sys.executable, "-m", "leadlex_nb.cli"]


@pytest.fixture
def sandbox_process() -> Iterator[dict[str, str]]:
    process = subprocess.Popen(
        [*CLI, "sandbox", "--port", "0", "--seed-contacts", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        env = dict(line.strip().split("=", 1) for line in (process.stdout.readline(), process.stdout.readline()))
        yield env
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def contact_ids(env: dict[str, str]) -> list[str]:
    headers = {"Authorization": f"Bearer {env['LEADLEX_API_KEY']}"}
    answer = requests.get(
        f"{env['LEADLEX_BASE_URL']}/v1/contacts", params={"per_page": 100}, headers=headers, timeout=10
    )
    return [c["id"] for c in answer.json()["data"]["contacts"]]


def run_cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "LEADLEX_JOURNAL": str(tmp_path / "journal.sqlite3")}
    return subprocess.run(
        [*CLI, *args], env=full_env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_delete_with_yes_deletes_the_file_ids_and_writes_the_result(
    sandbox_process: dict[str, str], tmp_path: Path
) -> None:
    ids = contact_ids(sandbox_process)
    source = tmp_path / "stale.csv"
    pd.DataFrame({"contact_id": [*ids[:30], "not-an-id"]}).to_csv(source, index=False)
    out = tmp_path / "result.csv"

    done = run_cli(["delete", str(source), "--yes", "--quiet", "--out", str(out)], sandbox_process, tmp_path)

    assert done.returncode == 0, done.stderr
    result = pd.read_csv(out)
    assert result["status"].value_counts().to_dict() == {"deleted": 30, "invalid": 1}
    assert not set(ids[:30]) & set(contact_ids(sandbox_process))
    assert sandbox_process["LEADLEX_API_KEY"] not in done.stderr + done.stdout


def test_delete_without_yes_and_without_a_terminal_deletes_nothing(
    sandbox_process: dict[str, str], tmp_path: Path
) -> None:
    ids = contact_ids(sandbox_process)
    source = tmp_path / "stale.csv"
    pd.DataFrame({"contact_id": ids[:5]}).to_csv(source, index=False)

    done = run_cli(["delete", str(source), "--quiet"], sandbox_process, tmp_path)

    assert done.returncode == 6  # declined
    assert "not confirmed" in done.stderr and "--yes" in done.stderr
    assert set(ids[:5]) <= set(contact_ids(sandbox_process))


def test_dry_run_reports_without_deleting(sandbox_process: dict[str, str], tmp_path: Path) -> None:
    ids = contact_ids(sandbox_process)
    source = tmp_path / "stale.csv"
    pd.DataFrame({"id": ids[:5]}).to_csv(source, index=False)

    done = run_cli(["delete", str(source), "--column", "id", "--dry-run", "--quiet"], sandbox_process, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "would_delete" in done.stderr
    assert set(ids[:5]) <= set(contact_ids(sandbox_process))


def test_a_missing_column_is_a_usage_error(sandbox_process: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "stale.csv"
    pd.DataFrame({"x": ["a"]}).to_csv(source, index=False)
    done = run_cli(["delete", str(source), "--yes"], sandbox_process, tmp_path)
    assert done.returncode == 2 and "contact_id" in done.stderr


def test_restore_re_creates_what_delete_removed_once_and_refuses_a_wrong_file(
    sandbox_process: dict[str, str], tmp_path: Path
) -> None:
    ids = contact_ids(sandbox_process)
    source = tmp_path / "stale.csv"
    pd.DataFrame({"contact_id": ids[:20]}).to_csv(source, index=False)
    done = run_cli(["delete", str(source), "--yes", "--quiet"], sandbox_process, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "leadlex-nb restore" in done.stderr  # the summary says how to undo
    run_id = done.stderr.split("run ", 1)[1].split(":", 1)[0]

    preview = run_cli(["restore", run_id, "--dry-run", "--quiet"], sandbox_process, tmp_path)
    assert preview.returncode == 0 and "20 would_restore" in preview.stderr, preview.stderr
    asked = tmp_path / "some.csv"
    pd.DataFrame({"contact_id": [*ids[:5], ids[50]]}).to_csv(asked, index=False)
    declined = run_cli(["restore", run_id, "--ids", str(asked), "--quiet"], sandbox_process, tmp_path)
    assert declined.returncode == 6 and "nothing was created" in declined.stderr, declined.stderr

    out = tmp_path / "restored.csv"
    some = run_cli(["restore", run_id, "--ids", str(asked), "--yes", "--quiet", "--out", str(out)],
                   sandbox_process, tmp_path)
    assert some.returncode == 1, some.stderr  # the contact never deleted is refused: not everything settled
    assert "1 refused (not_deleted): run" in some.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["contact_id", "new_contact_id", "status", "error_code", "error_message",
                                   "request_id"]
    assert frame["status"].tolist() == ["restored"] * 5 + ["refused"]
    rest = run_cli(["restore", run_id, "--yes", "--quiet"], sandbox_process, tmp_path)
    assert rest.returncode == 0 and "15 restored" in rest.stderr and "5 already_restored" in rest.stderr, rest.stderr
    headers = {"Authorization": f"Bearer {sandbox_process['LEADLEX_API_KEY']}"}
    total = requests.get(f"{sandbox_process['LEADLEX_BASE_URL']}/v1/contacts", params={"per_page": 1},
                         headers=headers, timeout=10).json()["meta"]["total"]
    assert total == 120  # every deleted contact back, none twice

    wrong = run_cli(["restore", "0123456789abcdef", "--yes"], sandbox_process, tmp_path)
    assert wrong.returncode == 5 and "no run '0123456789abcdef'" in wrong.stderr
    missing = run_cli(["restore", run_id, "--ids", str(tmp_path / "nope.csv"), "--yes"], sandbox_process, tmp_path)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    junk = tmp_path / "junk.csv"
    pd.DataFrame({"contact_id": ["n/a", "x"]}).to_csv(junk, index=False)
    refused = run_cli(["restore", run_id, "--ids", str(junk), "--yes"], sandbox_process, tmp_path)
    assert refused.returncode == 2 and "no valid contact ID among 2 row(s)" in refused.stderr

"""The command line tried as a careless user would: each failure has its own exit code and one line.

Most tests call ``cli.main`` in-process against the in-process sandbox (real sockets, no process
start-up); two run the command as a subprocess, for what only a process shows: no traceback, and
Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from leadlex_nb import cli, config
from leadlex_nb.retry import RetryPolicy
from leadlex_nb.sandbox import Faults, Profile, Sandbox

CLI = [sys.executable, "-m", "leadlex_nb.cli"]
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"LEADLEX_API_KEY": sandbox.api_key, "LEADLEX_BASE_URL": sandbox.base_url,
              "LEADLEX_JOURNAL": str(tmp_path / "journal.sqlite3")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal to confirm in
    return values


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out + err


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(("error:", "stopped:", "declined:"))]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def write_ids(path: Path, ids: list[str], column: str = "contact_id") -> Path:
    pd.DataFrame({column: ids}).to_csv(path, index=False)
    return path


def test_bad_input_and_output_files_exit_2_with_one_line_before_any_request(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = sandbox.seed(3)
    good = write_ids(tmp_path / "ids.csv", ids)
    (tmp_path / "latin1.csv").write_bytes(b"contact_id\n\xe9t\xe9\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "not-parquet.parquet").write_text("contact_id\n" + ids[0])
    cases = {
        "latin1.csv": ("not UTF-8", []),
        "empty.csv": ("empty", []),
        "folder.csv": ("is a directory", []),
        "missing.csv": ("no such file", []),
        "ids.csv": ("'nope' is not in", ["--column", "nope"]),
        "ids.csv ": ("cannot write --out", ["--out", str(tmp_path / "no-such-dir" / "out.csv")]),
        " ids.csv": ("is a directory", ["--out", str(tmp_path / "folder.csv")]),
        "  ids.csv": ("would overwrite", ["--out", str(good)]),
    }
    if HAS_PYARROW:
        cases["not-parquet.parquet"] = ("as Parquet", [])
    for name, (says, extra) in cases.items():
        code, text = run(["delete", str(tmp_path / name.strip()), "--yes", "--quiet", *extra], capsys)
        assert code == cli.EXIT_USAGE, (name, text)
        assert says in one_error_line(text), (name, text)
    assert sandbox.execution_log() == []
    assert not (tmp_path / "no-such-dir").exists()
    assert pd.read_csv(good)["contact_id"].tolist() == ids  # the input was not overwritten


def test_parquet_without_pyarrow_is_a_usage_error_that_names_the_extra(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else find_spec(name, *a))
    source = write_ids(tmp_path / "ids.csv", sandbox.seed(2))
    (tmp_path / "ids.parquet").write_bytes(b"PAR1")
    for args in (["delete", str(source), "--out", str(tmp_path / "r.parquet")],
                 ["delete", str(tmp_path / "ids.parquet")]):
        code, text = run([*args, "--yes", "--quiet"], capsys)
        assert code == cli.EXIT_USAGE
        assert "leadlex-nb[parquet]" in one_error_line(text)
    assert sandbox.execution_log() == [] and not (tmp_path / "r.parquet").exists()


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow (the parquet extra) is not installed")
def test_a_parquet_uuid_column_is_deleted_and_out_parquet_writes_parquet(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = sandbox.seed(5)
    table = pa.table({"contact_id": pa.array([uuid.UUID(i).bytes for i in ids[:4]], type=pa.uuid()),
                      "name": ["a", "b", "c", "d"]})
    pq.write_table(table, tmp_path / "ids.parquet")
    out = tmp_path / "result.parquet"

    code, text = run(["delete", str(tmp_path / "ids.parquet"), "--yes", "--quiet", "--out", str(out)], capsys)

    assert code == cli.EXIT_OK, text
    assert out.read_bytes()[:4] == b"PAR1"
    result = pd.read_parquet(out)
    assert result["status"].tolist() == ["deleted"] * 4
    assert result["contact_id"].tolist() == ids[:4]
    assert sandbox.existing_ids() == {ids[4]}

    code, text = run(["delete", str(tmp_path / "ids.parquet"), "--column", "id", "--yes", "--quiet"], capsys)
    assert code == cli.EXIT_USAGE and "'id' is not in" in one_error_line(text) and "name" in text


def test_configuration_api_stops_declines_and_journal_errors_each_have_their_code(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = sandbox.seed(3)
    source = write_ids(tmp_path / "ids.csv", ids)
    delete = ["delete", str(source), "--quiet"]

    for extra, says in ((["--timeout", "nan"], "timeout"), (["--batch-size", "0"], "batch_size"),
                        (["--rate-window", "-1"], "rate_window"), (["--plan", "gold"], "pro"),
                        (["--base-url", "http://example.com"], "refusing plain http")):
        code, text = run([*delete, "--yes", *extra], capsys)
        assert code == cli.EXIT_CONFIGURATION and says in one_error_line(text), (extra, text)

    # Declined where nobody can answer: the hint is the option, not the Python keyword.
    code, text = run(delete, capsys)
    assert code == cli.EXIT_DECLINED and "declined:" in one_error_line(text)
    assert "--yes" in text and "confirm=False" not in text

    # A refused key: said once, not once as it happens and again at the end.
    monkeypatch.setenv("LEADLEX_API_KEY", "wbk_not_a_key")
    code, text = run([*delete, "--yes"], capsys)
    assert code == cli.EXIT_API_STOP and "401" in one_error_line(text)
    assert text.count("401 invalid_key") == 1, text
    monkeypatch.delenv("LEADLEX_API_KEY")
    code, text = run([*delete, "--yes"], capsys)
    assert code == cli.EXIT_CONFIGURATION and "LEADLEX_API_KEY" in one_error_line(text)
    # The daily quota cannot cover the run: the way on is named as the option.
    monkeypatch.setenv("LEADLEX_API_KEY", sandbox.api_key)
    sandbox.set_profile(Profile("tiny", per_window=50, window_seconds=1.0, daily_quota=3))
    code, text = run([*delete, "--yes", "--batch-size", "1"], capsys)
    assert code == cli.EXIT_API_STOP and "pass --ignore-quota" in one_error_line(text), text
    assert sandbox.existing_ids() == set(ids)

    # A journal that is not there is said so, and never created by looking.
    typo = tmp_path / "typo" / "path"
    for args in (["runs", "--journal", str(typo)], ["resume", "0123456789abcdef", "--journal", str(typo)]):
        code, text = run(args, capsys)
        assert code == cli.EXIT_JOURNAL and f"no journal at {typo}" in one_error_line(text)
    assert not typo.exists() and not typo.parent.exists()
    code, text = run(["resume", "0123456789abcdef", "--quiet"], capsys)
    assert code == cli.EXIT_JOURNAL and "no run '0123456789abcdef'" in one_error_line(text)


def test_run_options_match_the_api(sandbox: Sandbox, env: dict[str, str], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ids = sandbox.seed(5)
    out = tmp_path / "result.csv"
    code, text = run(["delete", str(write_ids(tmp_path / "ids.csv", ids)), "--yes", "--quiet", "--batch-size", "2",
                      "--timeout", "5", "--rate-window", "2", "--concurrency", "1", "--plan", "600",
                      "--attribution-budget", "0", "--out", str(out)], capsys)
    assert code == cli.EXIT_OK, text
    result = pd.read_csv(out)
    assert result["status"].tolist() == ["deleted"] * 5
    assert result["batch"].nunique() == 3  # batches of 2
    assert "requests {'dry_run': 3, 'snapshot': 2, 'delete': 3}" in text  # snapshot: the size, one export


def test_an_unreachable_server_is_named_on_stderr(env: dict[str, str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "RetryPolicy", lambda: RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    source = write_ids(tmp_path / "ids.csv", [str(uuid.uuid4()) for _ in range(3)])

    code, text = run(["delete", str(source), "--yes", "--quiet", "--base-url", url], capsys)

    assert code == cli.EXIT_UNSETTLED
    line = one_error_line(text)
    assert line.startswith(f"error: could not connect to {url}; 3 row(s) not sent")
    assert env["LEADLEX_API_KEY"] not in text


def test_the_sandbox_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    for port in ("99999", "-1", "http"):
        with pytest.raises(SystemExit) as caught:
            cli.main(["sandbox", "--port", port])
        assert caught.value.code == 2
        assert "--port" in capsys.readouterr().err


def test_as_a_process_a_crash_prone_input_gives_one_line_and_ctrl_c_names_the_resume_command(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process_env = {**os.environ, **env}
    (tmp_path / "latin1.csv").write_bytes(b"contact_id\n\xe9\n")
    done = subprocess.run([*CLI, "delete", str(tmp_path / "latin1.csv"), "--yes"], env=process_env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == cli.EXIT_USAGE and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr

    ids = sandbox.seed(60)
    source = write_ids(tmp_path / "ids.csv", ids)
    sandbox.set_faults(Faults(latency=0.3))
    client = subprocess.Popen([*CLI, "delete", str(source), "--yes", "--quiet", "--batch-size", "10",
                               "--concurrency", "1"], env=process_env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not any(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log()):
            assert client.poll() is None and time.monotonic() < deadline, client.communicate()
            time.sleep(0.02)
        client.send_signal(signal.SIGINT)
        _, stderr = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    assert client.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "leadlex_nb.resume(" not in stderr
    run_id = stderr.split("finish the run with: leadlex-nb resume ")[1].split()[0]
    sandbox.set_faults(None)

    code, text = run(["resume", run_id, "--yes", "--quiet", "--out", str(tmp_path / "result.csv")], capsys)
    assert code == cli.EXIT_OK, text
    assert set(pd.read_csv(tmp_path / "result.csv")["status"]) == {"deleted"}
    assert not sandbox.existing_ids() & set(ids)

"""Canary: run the flows a user runs and search everything they produce for the API key.

The sandbox picks its keys itself (``Sandbox.create_key`` takes scopes, not a value), so the
sandbox flows search for the keys it hands out; the hostile-gateway flow, which accepts any key,
uses a recognisable canary with characters that change under JSON escaping and percent-encoding.

Flows: a successful delete, a dry run, a run through faults, a 401 (key revoked mid-run), a 403
(key without ``write:contacts``), both refusals at once under ``asyncio.gather(...,
return_exceptions=True)``, a stop and its resume, the CLI (``delete --yes --out``, ``runs``,
``resume``) and a gateway that echoes the ``Authorization`` header into error texts and
``X-Request-ID``. Searched: stdout/stderr (fd level, and the CLI's output), DEBUG logs, ``repr``
and ``str`` of every object and exception the flows return, verbose tracebacks
(``traceback.format_exception`` with the chain, IPython's ``VerboseTB`` with local values),
result CSV files and the journal files' bytes. Each search asserts it had something to look at.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest
from hostile_gateway import HostileGateway, serving

import leadlex_nb
from leadlex_nb.config import resolve_settings
from leadlex_nb.redact import MASK
from leadlex_nb.sandbox import Faults, Sandbox

FAST_RETRY = leadlex_nb.RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
# For the gateway: '/', '+', '"', '=', '%' and '\' all change under JSON escaping or percent-encoding.
CANARY = 'lx_CANARY/q+r"s=t%41\\uZZ9'


def spellings(key: str) -> dict[str, str]:
    """The key as an echo or a serialiser could spell it, plus pieces of it (a truncated echo)."""
    body = key.split("_", 1)[-1]
    found = {
        "plain": key,
        "json": json.dumps(key)[1:-1],
        "json-slash": json.dumps(key)[1:-1].replace("/", "\\/"),
        "repr": repr(key)[1:-1],
        "percent": quote(key, safe=""),
        "percent-path": quote(key, safe="/"),
        "csv": key.replace('"', '""'),
        "head": key[: max(12, len(key) // 2)],
        "tail": key[-max(12, len(key) // 2):],
        "body": body[:16],
    }
    return {name: value for name, value in found.items() if len(value) >= 8}


class Evidence:
    """Everything a flow produced, searched for the keys at the end."""

    def __init__(self, *keys: str) -> None:
        self.keys = [k for k in keys if k]
        self.texts: list[tuple[str, str]] = []
        self.blobs: list[tuple[str, bytes]] = []

    def text(self, label: str, value: str) -> None:
        assert isinstance(value, str)
        self.texts.append((label, value))

    def obj(self, label: str, value: Any) -> None:
        self.text(f"repr({label})", repr(value))
        self.text(f"str({label})", str(value))

    def frame(self, label: str, frame: pd.DataFrame) -> None:
        assert len(frame), f"{label}: empty result"
        self.obj(label, frame)
        self.text(f"{label}.to_csv", frame.to_csv())
        self.text(f"{label}.to_json", frame.to_json())
        self.text(f"{label} cells", "\n".join(map(str, frame.to_numpy().ravel())))
        self.text(f"{label}.attrs", repr(frame.attrs))
        self.text(f"{label}.attrs json", json.dumps(frame.attrs, default=repr))

    def error(self, label: str, exc: BaseException) -> None:
        self.obj(label, exc)
        self.text(f"{label} args", repr(exc.args))
        self.text(f"{label} traceback", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        chain: BaseException | None = exc
        while chain is not None:
            self.obj(f"{label} chain {type(chain).__name__}", chain)
            chain = chain.__cause__ or chain.__context__
        self.text(f"{label} VerboseTB", verbose_traceback(exc))
        result = getattr(exc, "result", None)
        if result is not None:
            self.frame(f"{label}.result", result)

    def logs(self, caplog: pytest.LogCaptureFixture) -> None:
        assert caplog.records, "no log records: DEBUG logging was not captured"
        self.text("caplog", caplog.text)
        for record in caplog.records:
            self.text(f"log {record.name}", record.getMessage())
            self.text(f"log args {record.name}", repr(record.args))
            if record.exc_info and record.exc_info[1] is not None:
                self.text(f"log exc {record.name}", "".join(traceback.format_exception(*record.exc_info)))

    def output(self, label: str, out: str, err: str) -> None:
        self.text(f"{label} stdout", out)
        self.text(f"{label} stderr", err)

    def files(self, label: str, paths: Iterable[Path]) -> None:
        paths = sorted(paths)
        assert paths, f"{label}: no files"
        for path in paths:
            self.blobs.append((f"{label} {path.name}", path.read_bytes()))

    def check(self) -> None:
        assert self.keys and self.texts, "nothing to search"
        assert sum(len(t) for _, t in self.texts) > 1000, "suspiciously little text"
        leaks = []
        for key in self.keys:
            for name, spelling in spellings(key).items():
                for label, text in self.texts:
                    if spelling in text:
                        at = text.index(spelling)
                        leaks.append(f"{label}: {name} ... {text[max(0, at - 120):at + 40]!r}")
                for label, blob in self.blobs:
                    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                        if spelling.encode(encoding) in blob:
                            leaks.append(f"{label}: {name}/{encoding}")
        assert not leaks, "the API key leaked:\n" + "\n".join(leaks)


def verbose_traceback(exc: BaseException, library_only: bool = False) -> str:
    """The traceback IPython shows with ``%xmode Verbose``: frames, context and local values.

    ``library_only``: from the first frame of leadlex_nb on, leaving out the caller's frames (whose
    values are the caller's own business: a key in a local variable there is the caller's)."""
    try:
        from IPython.core import ultratb
    except ImportError:  # pragma: no cover - IPython comes with ipykernel, a dev dependency
        return ""
    try:
        formatter = ultratb.VerboseTB(theme_name="nocolor")
    except TypeError:  # IPython < 9
        formatter = ultratb.VerboseTB(color_scheme="NoColor")
    tb = exc.__traceback__
    while library_only and tb is not None and f"{os.sep}leadlex_nb{os.sep}" not in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    assert tb is not None
    text = formatter.text(type(exc), exc, tb)
    assert type(exc).__name__ in text
    return text


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="leadlex_nb")
    return caplog


def options(sandbox: Sandbox | None, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    # The key comes from $LEADLEX_API_KEY (monkeypatched), as the README recommends, so no local
    # variable of the calling frame holds it and VerboseTB's local values show only the library's.
    opts: dict[str, Any] = dict(journal=tmp_path / "journal.sqlite3", progress=True, verbose=True, retry=FAST_RETRY,
                                batch_size=20, concurrency=2)
    if sandbox is not None:
        opts["base_url"] = sandbox.base_url
    opts.update(extra)
    return opts


def use_key(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("LEADLEX_API_KEY", key)


def settle(evidence: Evidence, tmp_path: Path, capfd: pytest.CaptureFixture[str],
           caplog: pytest.LogCaptureFixture) -> None:
    captured = capfd.readouterr()
    evidence.output("process", captured.out, captured.err)
    assert captured.out or captured.err, "the run printed nothing (verbose/progress were on)"
    evidence.logs(caplog)
    evidence.files("journal", tmp_path.glob("journal.sqlite3*"))
    settings = resolve_settings(base_url="http://127.0.0.1:1", journal=tmp_path / "journal.sqlite3")
    evidence.obj("Settings", settings)
    evidence.obj("Settings.api_key", settings.api_key)
    runs = leadlex_nb.journaled_runs(tmp_path / "journal.sqlite3")
    evidence.frame("journaled_runs", runs)
    evidence.check()


# -- Python API flows -------------------------------------------------------------------------


async def test_success_dry_run_and_faults_leak_the_key_nowhere(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    key = sandbox.create_key()
    use_key(monkeypatch, key)
    evidence = Evidence(key, sandbox.api_key)
    existing = sandbox.seed(150)
    frame = pd.DataFrame({"contact_id": [*existing[:40], str(uuid.uuid4()), "junk", existing[0]]})

    preview = await frame.leadlex.abulk_delete("contact_id", dry_run=True, **options(sandbox, tmp_path))
    evidence.frame("dry run", preview)
    assert "would_delete" in set(preview["status"].astype(str))

    plans: list[leadlex_nb.PlanSummary] = []

    def confirm(plan: leadlex_nb.PlanSummary) -> bool:
        plans.append(plan)
        return True

    result = await frame.leadlex.abulk_delete("contact_id", confirm=confirm, **options(sandbox, tmp_path))
    evidence.frame("delete", result)
    assert "deleted" in set(result["status"].astype(str))
    assert plans
    evidence.obj("PlanSummary", plans[0])
    evidence.text("PlanSummary.describe", plans[0].describe())
    evidence.text("PlanSummary.dry_run_result", repr(plans[0].dry_run_result))

    sandbox.set_faults(Faults(seed=7, error_5xx=0.2, gateway_html=0.2, reset_before=0.1, drop_after_commit=0.2))
    faulty = pd.Series(existing[50:150])
    try:
        through_faults = await faulty.leadlex.abulk_delete(confirm=False, **options(sandbox, tmp_path, timeout=5))
    except leadlex_nb.LeadLexError as exc:  # pragma: no cover - the seed is chosen to finish
        evidence.error("faults error", exc)
    else:
        evidence.frame("faults", through_faults)
    sandbox.set_faults(None)
    faulted = [e for e in sandbox.execution_log() if e.get("fault")]
    assert faulted, "no fault struck"
    out = tmp_path / "result.csv"
    result.to_csv(out)
    evidence.files("result csv", [out])
    settle(evidence, tmp_path, capfd, debug_logs)


async def test_refusals_401_and_403_leak_the_key_nowhere(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    revoked = sandbox.create_key(scopes=["read:contacts", "write:contacts"])
    read_only = sandbox.create_key(scopes=["read:contacts"])
    evidence = Evidence(revoked, read_only, sandbox.api_key)
    existing = sandbox.seed(200)
    sandbox.set_faults(Faults(latency=0.05))

    def revoke_after_the_first_deletion() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any(e.get("dry_run") is False and e["status"] == 200 for e in sandbox.execution_log()):
                break
            time.sleep(0.005)
        sandbox.revoke_key(revoked)

    revoker = threading.Thread(target=revoke_after_the_first_deletion, daemon=True)
    revoker.start()
    use_key(monkeypatch, revoked)
    with pytest.raises(leadlex_nb.AuthenticationError) as refused:
        await pd.Series(existing[:120]).leadlex.abulk_delete(confirm=False, **options(sandbox, tmp_path))
    revoker.join()
    evidence.error("401", refused.value)
    assert any(e["status"] == 401 for e in sandbox.execution_log())

    use_key(monkeypatch, read_only)
    with pytest.raises(leadlex_nb.PermissionDeniedError) as denied:
        await pd.Series(existing[120:160]).leadlex.abulk_delete(confirm=False, **options(sandbox, tmp_path))
    evidence.error("403", denied.value)

    # Refusals gathered, the way a notebook runs several at once; the errors come back as values.
    gathered = await asyncio.gather(
        pd.Series(existing[160:180]).leadlex.abulk_delete(confirm=False, **options(sandbox, tmp_path)),
        pd.Series(existing[180:200]).leadlex.abulk_delete(confirm=False, **options(sandbox, tmp_path)),
        return_exceptions=True,
    )
    assert [type(g) for g in gathered] == [leadlex_nb.PermissionDeniedError] * 2
    for index, error in enumerate(gathered):
        assert isinstance(error, BaseException)
        evidence.error(f"gathered {index}", error)
        evidence.text(f"gathered {index} format_exception_only", "".join(traceback.format_exception_only(error)))
    evidence.obj("gathered", gathered)
    # A configuration error raised before any request, with the key in hand.
    with pytest.raises(leadlex_nb.ConfigurationError) as misconfigured:
        await pd.Series(existing[:2]).leadlex.abulk_delete(confirm=False, base_url="http://example.com",
                                                           **options(None, tmp_path))
    evidence.error("configuration", misconfigured.value)
    sandbox.set_faults(None)
    settle(evidence, tmp_path, capfd, debug_logs)


async def test_a_stop_and_its_resume_leak_the_key_nowhere(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    key = sandbox.create_key()
    use_key(monkeypatch, key)
    evidence = Evidence(key, sandbox.api_key)
    existing = sandbox.seed(160)
    sandbox.set_faults(Faults(latency=0.05))
    stop = leadlex_nb.StopSignal()

    def stop_after_the_first_deletion() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any(e.get("dry_run") is False for e in sandbox.execution_log()):
                break
            time.sleep(0.005)
        stop.set("stopped by the canary test")

    stopper = threading.Thread(target=stop_after_the_first_deletion, daemon=True)
    stopper.start()
    with pytest.raises(leadlex_nb.RunInterrupted) as stopped:
        await pd.Series(existing).leadlex.abulk_delete(confirm=False, stop=stop, **options(sandbox, tmp_path))
    stopper.join()
    evidence.error("stop", stopped.value)
    evidence.obj("StopSignal", stop)
    run_id = stopped.value.run_id
    assert run_id and stopped.value.result is not None
    assert "not_sent" in set(stopped.value.result["status"].astype(str))

    sandbox.set_faults(None)
    resumed = await leadlex_nb.aresume(run_id, confirm=False, **options(sandbox, tmp_path))
    evidence.frame("resume", resumed)
    assert set(resumed["status"].astype(str)) == {"deleted"}
    # Resuming with another key is refused; the refusal names neither key.
    other = sandbox.create_key()
    evidence.keys.append(other)
    use_key(monkeypatch, other)
    del other  # VerboseTB shows this frame's local values too; the key is the environment's only
    with pytest.raises(leadlex_nb.LeadLexError) as wrong_key:
        await leadlex_nb.aresume(run_id, confirm=False, **options(sandbox, tmp_path))
    evidence.error("resume with another key", wrong_key.value)
    settle(evidence, tmp_path, capfd, debug_logs)


# -- the command line ---------------------------------------------------------------------------

# The CLI with the root logger at DEBUG, so the subprocess's debug lines are searched too.
CLI = [sys.executable, "-c",
       "import logging, sys; logging.basicConfig(level=logging.DEBUG); "
       "from leadlex_nb.cli import main; sys.argv[0] = 'leadlex-nb'; raise SystemExit(main())"]


def run_cli(args: list[str], key: str, sandbox: Sandbox, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEADLEX_API_KEY": key, "LEADLEX_BASE_URL": sandbox.base_url,
           "LEADLEX_JOURNAL": str(tmp_path / "journal.sqlite3")}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_the_cli_leaks_the_key_nowhere(sandbox: Sandbox, tmp_path: Path) -> None:
    key = sandbox.create_key()
    read_only = sandbox.create_key(scopes=["read:contacts"])
    evidence = Evidence(key, read_only, sandbox.api_key)
    existing = sandbox.seed(120)
    source = tmp_path / "stale.csv"
    pd.DataFrame({"contact_id": [*existing[:30], "not-an-id"]}).to_csv(source, index=False)
    out = tmp_path / "result.csv"

    done = run_cli(["delete", str(source), "--yes", "--out", str(out), "--batch-size", "10"], key, sandbox, tmp_path)
    evidence.output("cli delete", done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr, "the subprocess did not log at DEBUG"

    runs = run_cli(["runs"], key, sandbox, tmp_path)
    evidence.output("cli runs", runs.stdout, runs.stderr)
    assert runs.returncode == 0, runs.stderr
    run_id = leadlex_nb.journaled_runs(tmp_path / "journal.sqlite3")["run_id"].iloc[0]
    assert run_id in runs.stdout
    # Resuming the finished run writes its result again without sending anything.

    resumed = run_cli(["resume", run_id, "--yes", "--out", str(tmp_path / "resumed.csv")], key, sandbox, tmp_path)
    evidence.output("cli resume", resumed.stdout, resumed.stderr)
    assert resumed.returncode == 0, resumed.stderr

    denied = run_cli(["delete", str(source), "--yes"], read_only, sandbox, tmp_path)
    evidence.output("cli 403", denied.stdout, denied.stderr)
    assert denied.returncode == 4, denied.stderr
    sandbox.revoke_key(read_only)
    refused = run_cli(["delete", str(source), "--yes"], read_only, sandbox, tmp_path)
    evidence.output("cli 401", refused.stdout, refused.stderr)
    assert refused.returncode == 4, refused.stderr

    evidence.files("result csv", tmp_path.glob("*.csv"))
    assert set(pd.read_csv(tmp_path / "resumed.csv")["status"]) == {"deleted", "invalid"}
    evidence.files("journal", tmp_path.glob("journal.sqlite3*"))
    evidence.check()


# -- a hostile gateway --------------------------------------------------------------------------


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[HostileGateway, str]]:
    hostile = HostileGateway()
    async with serving(hostile) as base_url:
        yield hostile, base_url


async def test_a_gateway_echoing_the_canary_leaks_it_nowhere(
    gateway: tuple[HostileGateway, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], debug_logs: pytest.LogCaptureFixture,
) -> None:
    hostile, base_url = gateway
    use_key(monkeypatch, CANARY)
    evidence = Evidence(CANARY)
    ids = pd.Series([str(uuid.UUID(int=i + 1)) for i in range(9)])
    retry = leadlex_nb.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)

    result = await ids.leadlex.abulk_delete(confirm=False, **options(None, tmp_path, base_url=base_url, retry=retry))
    evidence.frame("gateway 502", result)
    assert set(result["status"].astype(str)) == {"unknown"}

    hostile.mode = "refuse"
    with pytest.raises(leadlex_nb.AuthenticationError) as refused:
        await ids.leadlex.abulk_delete(confirm=False, **options(None, tmp_path, base_url=base_url, retry=retry))
    evidence.error("gateway 401", refused.value)

    # Not vacuous: the canary went out and its echoes came back, masked.
    assert set(hostile.authorizations) == {f"Bearer {CANARY}"}
    masked_texts = [t for _, t in evidence.texts if MASK in t]
    assert len(masked_texts) >= 5, "the echoes did not reach the searched texts"
    assert any(f"Bearer {MASK}" in v for v in result["request_id"].dropna())
    assert any(MASK in v for v in result["error_message"].dropna())
    assert any(MASK in t for label, t in evidence.texts if label.startswith("gateway 401"))
    settle(evidence, tmp_path, capfd, debug_logs)


async def test_an_explicit_api_key_argument_stays_out_of_verbose_tracebacks(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: a key passed as ``api_key="..."`` showed in the argument values of the library's
    frames (``**options={'api_key': 'wbk_...'}``, ``abulk_delete(api_key='wbk_...')``) in IPython's
    verbose traceback. The entry points now wrap it in ``ApiKey`` first."""
    monkeypatch.delenv("LEADLEX_API_KEY", raising=False)
    keys = {"read-only": sandbox.create_key(scopes=["read:contacts"]), "revoked": sandbox.create_key()}
    sandbox.revoke_key(keys["revoked"])
    existing = sandbox.seed(10)
    evidence = Evidence(*keys.values())
    opts = options(sandbox, tmp_path, progress=False, verbose=False)
    gathered = await asyncio.gather(
        pd.Series(existing[:5]).leadlex.abulk_delete(confirm=False, api_key=keys["read-only"], **opts),
        pd.DataFrame({"c": existing[5:]}).leadlex.abulk_delete("c", confirm=False, api_key=keys["revoked"], **opts),
        leadlex_nb.abulk_delete(pd.Series(existing[:5]), confirm=False, api_key=keys["revoked"], **opts),
        return_exceptions=True,
    )
    assert [type(g) for g in gathered] == [leadlex_nb.PermissionDeniedError, leadlex_nb.AuthenticationError,
                                           leadlex_nb.AuthenticationError]
    errors: list[BaseException] = [g for g in gathered if isinstance(g, BaseException)]
    # The sync paths too (run on a worker thread here, as the loop is running), and resume.
    for call in (lambda k: leadlex_nb.bulk_delete(pd.Series(existing[:5]), confirm=False, api_key=k, **opts),
                 lambda k: leadlex_nb.resume("0123456789abcdef", confirm=False, api_key=k, **opts)):
        try:
            await asyncio.to_thread(call, keys.pop("read-only", None) or keys.pop("revoked", None) or "wbk_x" * 4)
        except leadlex_nb.LeadLexError as exc:
            errors.append(exc)
    assert len(errors) == 5
    for index, error in enumerate(errors):
        text = verbose_traceback(error, library_only=True)
        assert "ApiKey(key_" in text, "the argument values were not shown"
        evidence.text(f"error {index} VerboseTB", text)
        evidence.text(f"error {index} traceback", "".join(traceback.format_exception(error)))
    evidence.check()
